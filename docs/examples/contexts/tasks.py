"""Celery tasks that run in the app's context, see the request that enqueued
them (a copy), and report progress to the page over SSE."""

import os

from tether import Tether, g, request
from tether.celery import init_celery, progress, task_events

app = Tether(__name__)
app.config.from_mapping(
    CELERY={
        "broker_url": os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"),
        "result_backend": os.environ.get("CELERY_RESULT_BACKEND", "redis://127.0.0.1:6379/0"),
        "task_serializer": "json",
    },
    CELERY_CARRY_G=["user_id"],  # these g values travel with the task
)
app.config.from_prefixed_env()
celery = init_celery(app)


@celery.task(carry_request=True)
def provision(vm: str) -> str:
    progress({"step": "creating", "by": g.user_id})  # published on the channel task:<id>
    progress({"step": "starting"})
    return f"{vm} for {request.args['team']}"  # the enqueuing request's copy


@app.post("/vms/<vm>")
def create_vm(vm: str) -> tuple[dict[str, str], int]:
    g.user_id = request.headers.get("X-User", "anonymous")
    result = provision.delay(vm)
    return {"id": result.id}, 202


@app.get("/jobs/<job_id>/events")
def job_events(job_id: str):
    return task_events(job_id)  # the story so far, then live, until success/failure/revoked
