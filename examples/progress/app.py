"""Seed 000's app, written the natural way: the SSE generators read ``request.json``
themselves (in Flask this fails with "Working outside of request context").

    tether --app examples/progress/app.py run
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

from tether import Response, Tether, render_template_string, request, session

app = Tether(__name__)
app.config.from_mapping(SECRET_KEY=os.environ.get("SECRET_KEY", "dev"), STEP_DELAY=0.4)
app.config.from_prefixed_env()


def event(kind: str, message: str) -> str:
    return f"data: {json.dumps({'type': kind, 'message': message})}\n\n"


def progress(steps: list[str], done: str) -> Response:
    """Stream each step of a job as a Server-Sent Event; the steps read the request lazily."""

    def generate() -> Iterator[str]:
        try:
            data = request.json or {}
            for step in steps:
                yield event("log", f"[{time.strftime('%H:%M:%S')}] {step.format(**data)}")
                time.sleep(app.config["STEP_DELAY"])
            yield event("success", done.format(**data))
        except KeyError as e:
            yield event("error", f"missing field {e}")

    session["jobs"] = session.get("jobs", 0) + 1
    return Response(generate(), mimetype="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@app.post("/api/vm/new")
def vm_new() -> Response:
    return progress(["creating VM account {name}", "configuring {app_type} on node {node}"], "VM account {name} created")


@app.post("/api/vm/save")
def vm_save() -> Response:
    return progress(["reading account name from device {device_id}"], "account on {device_id} saved")


@app.post("/api/vm/load")
def vm_load() -> Response:
    return progress(["loading account {name} onto {device_id}"], "account {name} loaded")


PAGE = """<!doctype html>
<title>tether · VM jobs</title>
<style>body{font:15px system-ui;max-width:40em;margin:2em auto}#log p{margin:.2em 0}.success{color:green}.error{color:red}</style>
<h1>VM jobs</h1>
<p>Jobs you started: <b id="jobs">{{ session.get('jobs', 0) }}</b></p>
<form id="job">
  <select name="action"><option value="new">new</option><option value="save">save</option><option value="load">load</option></select>
  <input name="name" value="Carousell_HK_003"> <input name="node" value="HK_061">
  <input name="app_type" value="Carousell"> <input name="device_id" value="72e8932c">
  <button>Run</button>
</form>
<div id="log"></div>
<script>
document.getElementById("job").onsubmit = async (e) => {
  e.preventDefault();
  const form = Object.fromEntries(new FormData(e.target));
  const log = document.getElementById("log");
  const response = await fetch(`/api/vm/${form.action}`, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(form)});
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\\n\\n")) >= 0) {
      const data = JSON.parse(buffer.slice(6, end)); buffer = buffer.slice(end + 2);
      const p = document.createElement("p"); p.className = data.type; p.textContent = data.message; log.append(p);
    }
  }
  document.getElementById("jobs").textContent = Number(document.getElementById("jobs").textContent) + 1;
};
</script>
"""


@app.route("/")
def index() -> str:
    return render_template_string(PAGE)
