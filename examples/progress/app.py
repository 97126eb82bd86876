"""Seed 000, done right: VM jobs on Celery, their progress streamed to the page.

``POST /api/vm/new`` (and ``save``, ``load``) checks its JSON (400 with what is
wrong, before any job starts), records the job, enqueues a Celery task and
answers with its id. The task runs in a worker, in the app's context: its
steps report ``progress()``, its database work commits there, and its story
ends with a final event. The page follows a job over SSE
(``/api/jobs/<id>/events``): a reload, or a second tab, replays the story so
far and goes on live; closing the tab does not stop the job. Only the person
who started a job may watch it.

    tether --app examples/progress/app.py celery worker -l info     (the worker)
    tether --app examples/progress/app.py run                       (the page)

Broker, result backend and broadcast: Redis (``TETHER_REDIS_URL``, default
``redis://127.0.0.1:6379/0``). Redis rather than RabbitMQ because the page's
live progress already needs it (the broadcast's history lives there), so one
service runs everything; the jobs are short and idempotent, which is what
Redis's at-least-once delivery (with ``acks_late``) suits.
"""

from __future__ import annotations

import os
import sys
import time
import typing as t
import uuid
from pathlib import Path

if __package__ in (None, ""):  # run as a file (tether --app examples/progress/app.py)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "examples.progress"

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, sessionmaker

from tether import Tether, abort, current_app, g, redirect, render_template_string, request, session, url_for
from tether.celery import init_celery, progress, task_events

from .models import Account, Base, Job

#: What each action needs in its JSON body.
FIELDS = {"new": ("name", "node", "app_type"), "save": ("device_id",), "load": ("name", "device_id")}
#: The steps of each action, shown to the user as they happen.
STEPS = {
    "new": ["creating VM account {name}", "configuring {app_type} on node {node}", "starting the VM"],
    "save": ["reading the account name from device {device_id}", "saving the account"],
    "load": ["loading account {name} onto {device_id}", "checking the device"],
}

app = Tether(__name__)
app.config.from_mapping(
    SECRET_KEY=os.environ.get("SECRET_KEY", "dev"),
    REDIS_URL="redis://127.0.0.1:6379/0",
    # The web processes and the Celery worker must agree on it, however each imports this file.
    BROADCAST_NAMESPACE="progress-example",
    DATABASE_URL=f"sqlite:///{Path(app.instance_path) / 'progress.db'}",
    STEP_DELAY=1.0,
)
app.config.from_prefixed_env()
if app.config["BROADCAST_URL"] == "memory://":  # the worker's progress must reach the web processes
    app.config["BROADCAST_URL"] = app.config["REDIS_URL"]
app.config.setdefault(
    "CELERY",
    {"broker_url": app.config["REDIS_URL"], "result_backend": app.config["REDIS_URL"], "task_acks_late": True},
)
celery = init_celery(app)

if app.config["DATABASE_URL"].startswith("sqlite:///"):
    Path(app.config["DATABASE_URL"][len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
_engine = create_engine(app.config["DATABASE_URL"])
Base.metadata.create_all(_engine)
app.extensions["progress.sessions"] = sessionmaker(_engine, expire_on_commit=False)


def get_db() -> Session:
    """The database session of the current app context: a request's, or one
    execution of a task's, closed at its teardown."""
    if "db" not in g:
        g.db = current_app.extensions["progress.sessions"]()
    return t.cast(Session, g.db)


@app.teardown_appcontext
def close_db(exc: BaseException | None) -> None:
    db = g.pop("db", None)
    if db is not None:
        if exc is not None:
            db.rollback()
        db.close()


@celery.task(bind=True, name="progress.vm_job")
def vm_job(self: t.Any, action: str, data: dict[str, str]) -> str:
    """One VM job: each step reported as it happens, the account written when done."""
    db = get_db()
    job = db.get(Job, self.request.id)
    if job is not None:
        job.state = "running"
        db.commit()
    for step in STEPS[action]:
        progress({"message": f"[{time.strftime('%H:%M:%S')}] {step.format(**data)}"})
        time.sleep(current_app.config["STEP_DELAY"])
    name = data.get("name") or f"account-{data['device_id']}"
    account = db.get(Account, name) or Account(name=name)
    account.node = data.get("node", account.node)
    account.app_type = data.get("app_type", account.app_type)
    account.device_id = data.get("device_id", account.device_id)
    db.add(account)
    if job is not None:
        job.state = "done"
    db.commit()
    return {"new": f"VM account {name} created", "save": f"account {name} saved", "load": f"account {name} loaded"}[
        action
    ]


def checked(action: str) -> dict[str, str]:
    """The job's fields from the JSON body, or a 400 saying what is wrong."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, description="The body must be a JSON object.")
    missing = [field for field in FIELDS[action] if not isinstance(body.get(field), str) or not body[field].strip()]
    if missing:
        abort(400, description=f"Missing or empty: {', '.join(missing)}.")
    too_long = [field for field in FIELDS[action] if len(body[field]) > 60]
    if too_long:
        abort(400, description=f"Longer than 60 characters: {', '.join(too_long)}.")
    return {field: body[field].strip() for field in FIELDS[action]}


@app.errorhandler(400)
def bad_request(error: t.Any) -> tuple[dict[str, str], int]:
    return {"error": error.description}, 400


@app.post("/api/vm/<any(new, save, load):action>")
def start_job(action: str) -> tuple[dict[str, str], int]:
    if "user" not in session:
        abort(401)
    data = checked(action)
    job_id = str(uuid.uuid4())
    db = get_db()
    db.add(Job(id=job_id, owner=session["user"], action=action))
    db.commit()
    vm_job.apply_async((action, data), task_id=job_id)
    return {"id": job_id}, 202


def own_job(job_id: str) -> Job:
    job = get_db().get(Job, job_id)
    if job is None or job.owner != session.get("user"):
        abort(404)
    return job


@app.get("/api/jobs")
def jobs() -> dict[str, list[dict[str, str]]]:
    if "user" not in session:
        abort(401)
    found = get_db().scalars(select(Job).where(Job.owner == session["user"]).order_by(Job.id))
    return {"jobs": [{"id": j.id, "action": j.action, "state": j.state} for j in found]}


@app.get("/api/jobs/<job_id>/events")
def job_events(job_id: str) -> t.Any:
    return task_events(own_job(job_id).id)


@app.route("/", methods=["GET", "POST"])
def index() -> t.Any:
    if request.method == "POST":
        name = request.form.get("user", "").strip()[:40]
        if name:
            session["user"] = name
        return redirect(url_for("index"))
    return render_template_string(PAGE)


PAGE = """<!doctype html>
<title>tether · VM jobs</title>
<link rel="icon" href="data:,">
<style>
body{font:15px system-ui;max-width:46em;margin:2em auto;color:#222}
input,select,button{font:inherit;padding:.25em .4em}
.job{border:1px solid #ddd;border-radius:6px;padding:.5em .8em;margin:.8em 0}
.job h3{margin:0 0 .3em;font-size:1em}.job p{margin:.15em 0;font-family:ui-monospace,monospace;font-size:13px}
.success{color:#087f23}.failure,.revoked,.error{color:#c62828}#problem{color:#c62828}
</style>
<h1>VM jobs</h1>
{% if not session.user %}
<form method="post"><label>Your name <input name="user" required></label> <button>Start</button></form>
{% else %}
<p>Signed in as <b>{{ session.user }}</b>. Jobs go on when you close the tab; reload to follow them again.</p>
<form id="job">
  <select name="action"><option value="new">new</option><option value="save">save</option><option value="load">load</option></select>
  <input name="name" value="Carousell_HK_003" aria-label="name"> <input name="node" value="HK_061" aria-label="node">
  <input name="app_type" value="Carousell" aria-label="app type"> <input name="device_id" value="72e8932c" aria-label="device">
  <button>Run</button>
</form>
<p id="problem"></p>
<div id="jobs"></div>
<script>
const box = document.getElementById("jobs");
function follow(job) {
  const div = document.createElement("div");
  div.className = "job"; div.id = "job-" + job.id; div.dataset.state = job.state;
  div.innerHTML = "<h3></h3>"; div.querySelector("h3").textContent = `${job.action} · ${job.id.slice(0, 8)}`;
  box.prepend(div);
  const source = new EventSource(`/api/jobs/${job.id}/events`);
  const line = (text, kind) => { const p = document.createElement("p"); p.className = kind; p.textContent = text; div.append(p); };
  source.addEventListener("progress", e => line(JSON.parse(e.data).message, "progress"));
  source.addEventListener("success", e => { line(JSON.parse(e.data), "success"); div.dataset.state = "done"; source.close(); });
  source.addEventListener("failure", e => { line(JSON.parse(e.data).message, "failure"); div.dataset.state = "failed"; source.close(); });
  source.addEventListener("revoked", () => { line("The job was cancelled.", "revoked"); div.dataset.state = "revoked"; source.close(); });
}
fetch("/api/jobs").then(r => r.json()).then(data => data.jobs.forEach(follow));
document.getElementById("job").onsubmit = async (e) => {
  e.preventDefault();
  const form = Object.fromEntries(new FormData(e.target));
  const response = await fetch(`/api/vm/${form.action}`, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(form)});
  const answer = await response.json();
  document.getElementById("problem").textContent = response.ok ? "" : answer.error;
  if (response.ok) follow({id: answer.id, action: form.action, state: "queued"});
};
</script>
{% endif %}
"""
