"""Seed 000, done right: VM jobs on Celery, their progress streamed to the page.

``POST /api/vm/new`` (and ``save``, ``load``) checks its JSON (400 with what is
wrong, before any job starts), records the job, enqueues a Celery task and
answers with its id. The task runs in a worker, in the app's context: its
steps report ``progress()``, its database work commits there, and its story
ends with a final event. The page follows a job over SSE
(``/api/jobs/<id>/events``): a reload, or a second tab, replays the story so
far and goes on live; closing the tab does not stop the job. Only the person
who started a job may watch it. Every error under ``/api/`` (a bad body, an
unknown job or route, a wrong method, not signed in, a body too large, a
crash) answers ``{"error": ...}`` in JSON with its status, never an HTML page.

    tether --app examples/progress/app.py celery worker -l info     (the worker)
    tether --app examples/progress/app.py run                       (the page)

Broker, result backend and broadcast: one Redis, ``REDIS_URL`` (environment:
``TETHER_REDIS_URL``), by default ``redis://127.0.0.1:6379/0``, that is **DB 0**.
Redis rather than RabbitMQ because the page's live progress already needs it
(the broadcast's history lives there), so one service runs everything; the
jobs are short and idempotent, which is what Redis's at-least-once delivery
(with ``acks_late``) suits. DB 0 is kept on purpose: it is what a bare
``redis://host:6379`` means, and the only one Redis Cluster and many hosted
Redis offer. What keeps the example out of other apps' keys is names, not a DB
number: its broadcast keys live under ``BROADCAST_NAMESPACE``
(``progress-example``), its tasks go to a queue of its own (``progress-example``,
not Celery's shared default ``celery``, which another project's worker on the
same Redis would also take from), and results are keyed by unique task ids.
For a DB of its own: ``TETHER_REDIS_URL=redis://127.0.0.1:6379/3``.
"""

from __future__ import annotations

import os
import sys
import time
import typing as t
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

if __package__ in (None, ""):  # run as a file (tether --app examples/progress/app.py)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "examples.progress"

from sqlalchemy import create_engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import HTTPException

from tether import Tether, abort, current_app, g, redirect, render_template, request, session, url_for
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
#: Where the JSON API lives: every error under it answers in JSON.
API = "/api/"

# root_path: templates/ next to this file, however the file was imported.
app = Tether(__name__, root_path=str(Path(__file__).resolve().parent))
app.config.from_mapping(
    SECRET_KEY=os.environ.get("SECRET_KEY", "dev"),
    # Broker, result backend and broadcast. DB 0 on purpose: see the docstring.
    REDIS_URL="redis://127.0.0.1:6379/0",
    # The web processes and the Celery worker must agree on it, however each imports this file.
    BROADCAST_NAMESPACE="progress-example",
    DATABASE_URL=f"sqlite:///{Path(app.instance_path) / 'progress.db'}",
    STEP_DELAY=1.0,
    # A job's JSON is a few hundred bytes: a larger body is refused (413) unread.
    MAX_CONTENT_LENGTH=16 * 1024,
)
app.config.from_prefixed_env()
if app.config["BROADCAST_URL"] == "memory://":  # the worker's progress must reach the web processes
    app.config["BROADCAST_URL"] = app.config["REDIS_URL"]
app.config.setdefault(
    "CELERY",
    {
        "broker_url": app.config["REDIS_URL"],
        "result_backend": app.config["REDIS_URL"],
        "task_acks_late": True,
        # Not Celery's default "celery", which any other project's worker on this Redis also consumes.
        "task_default_queue": "progress-example",
    },
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


def write_account(db: Session, data: dict[str, str]) -> str:
    """Create or update the job's VM account, committed; its name. Two jobs may
    race to create one account (Run clicked twice): the one that loses the
    insert updates the row the other made."""
    name = data.get("name") or f"account-{data['device_id']}"
    for attempt in range(2):
        account = db.get(Account, name) or Account(name=name)
        account.node = data.get("node", account.node)
        account.app_type = data.get("app_type", account.app_type)
        account.device_id = data.get("device_id", account.device_id)
        db.add(account)
        try:
            db.commit()
            break
        except IntegrityError:
            db.rollback()
            if attempt:
                raise
    return name


@celery.task(bind=True, name="progress.vm_job")
def vm_job(self: t.Any, action: str, data: dict[str, str]) -> str:
    """One VM job: each step reported as it happens (with its number, for the
    page's progress bar), the account written when done."""
    db = get_db()
    job = db.get(Job, self.request.id)
    if job is not None:
        job.state = "running"
        db.commit()
    steps = STEPS[action]
    for number, step in enumerate(steps, 1):
        message = f"[{time.strftime('%H:%M:%S')}] {step.format(**data)}"
        progress({"message": message, "step": number, "steps": len(steps)})
        time.sleep(current_app.config["STEP_DELAY"])
    name = write_account(db, data)
    if job is not None:
        job.state = "done"
        db.commit()
    return {"new": f"VM account {name} created", "save": f"account {name} saved", "load": f"account {name} loaded"}[
        action
    ]


@app.errorhandler(HTTPException)
def api_error(error: HTTPException) -> t.Any:
    """Under /api/ every HTTP error answers ``{"error": ...}`` in JSON, with its
    status and headers (a 405's ``Allow``); elsewhere it keeps its HTML page.

    Keyed on the path, not on a blueprint: the router's 404 and 405 are raised
    before any view, or blueprint, is chosen. A crash's 500 comes here too."""
    if not request.path.startswith(API):
        return error
    headers = [(key, value) for key, value in error.get_headers() if key.lower() != "content-type"]
    return {"error": error.description}, error.code, headers


def signed_in() -> str:
    """The person using the API, or a 401."""
    if "user" not in session:
        abort(401, description="Sign in first: POST / with a name (the page does it).")
    return t.cast(str, session["user"])


def checked(action: str) -> dict[str, str]:
    """The job's fields from the JSON body, or a 415 or 400 saying what is wrong."""
    if not request.is_json:
        abort(415, description="Send the job as JSON (Content-Type: application/json).")
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


@app.post("/api/vm/<any(new, save, load):action>")
def start_job(action: str) -> tuple[dict[str, str], int]:
    user = signed_in()
    data = checked(action)
    job_id = str(uuid.uuid4())
    db = get_db()
    db.add(Job(id=job_id, owner=user, action=action))
    db.commit()
    vm_job.apply_async((action, data), task_id=job_id)
    return {"id": job_id}, 202


def own_job(job_id: str) -> Job:
    user = signed_in()
    job = get_db().get(Job, job_id)
    if job is None or job.owner != user:
        abort(404, description="You have no job with this id.")
    return job


@app.get("/api/jobs")
def jobs() -> dict[str, list[dict[str, t.Any]]]:
    """The signed-in person's jobs, oldest first."""
    found = get_db().scalars(select(Job).where(Job.owner == signed_in()).order_by(Job.created, Job.id))
    return {"jobs": [{"id": j.id, "action": j.action, "state": j.state, "created": j.created} for j in found]}


@app.get("/api/jobs/<job_id>/events")
def job_events(job_id: str) -> t.Any:
    return task_events(own_job(job_id).id)


def where(url: str) -> str:
    """A service URL as the page shows it: scheme, host, port and Redis DB,
    never a user name or password."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if parts.scheme == "unix":
        return f"Redis socket {parts.path}, DB {query.get('db', ['0'])[0]}"
    place = f"{parts.scheme}://{parts.hostname or 'localhost'}" + (f":{parts.port}" if parts.port else "")
    if parts.scheme in ("redis", "rediss"):
        return f"{place}, DB {query.get('db', [parts.path.strip('/') or '0'])[0]}"
    return place


@app.route("/", methods=["GET", "POST"])
def index() -> t.Any:
    if request.method == "POST":
        name = request.form.get("user", "").strip()[:40]
        if name:
            session["user"] = name
        return redirect(url_for("index"))
    services = {
        "Broker": celery.conf.broker_url,
        "Results": celery.conf.result_backend,
        "Progress": app.config["BROADCAST_URL"],
    }
    return render_template(
        "index.html",
        fields=FIELDS,
        services={use: where(str(url)) for use, url in services.items() if url},
    )
