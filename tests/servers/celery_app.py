"""A tether app with a Celery app bound to it, for tests/test_celery.py: its
tasks record, in a Redis list, what they saw of the app's contexts. Broker,
result backend and broadcast: the Redis database in $REDIS_URL."""

import os
import time

import redis
from celery import shared_task, signals

from tether import Tether, current_app, g, request
from tether.celery import init_celery, progress

URL = os.environ["REDIS_URL"]
LOG = os.environ.get("LOG_KEY", "celery-test:log")

app = Tether(__name__)
app.config.update(
    BROADCAST_URL=URL,
    CELERY={"broker_url": URL, "result_backend": URL, "task_default_queue": os.environ.get("QUEUE", "celery")},
    CELERY_CARRY_G=["user_id", "request_id"],
)
app.config["CELERY_CARRY_HEADERS"] = [*app.config["CELERY_CARRY_HEADERS"], "X-Test"]
celery = init_celery(app)
log = redis.Redis.from_url(URL)


def record(event: str) -> None:
    """Where ``event`` happened: inside an app context of this app, or not."""
    try:
        where = "app" if current_app.name == app.name else "other"
    except RuntimeError:
        where = "none"
    log.rpush(LOG, f"{event}:{where}")


@app.teardown_appcontext
def torn_down(exc: BaseException | None) -> None:
    log.rpush(LOG, "teardown")


class Recording(celery.Task):  # type: ignore[name-defined,misc]
    def on_success(self, *args: object) -> None:
        record("on_success")

    def on_failure(self, *args: object) -> None:
        record("on_failure")

    def on_retry(self, *args: object) -> None:
        record("on_retry")

    def after_return(self, *args: object) -> None:
        record("after_return")


for name in ("task_prerun", "task_postrun", "task_failure"):
    getattr(signals, name).connect(lambda sender=None, _n=name, **kw: record(_n), weak=False)


@celery.task(base=Recording, bind=True, max_retries=1, default_retry_delay=0)
def hooks(self: object, fail: bool = False, retry: bool = False) -> str:
    record("run")
    if retry and self.request.retries == 0:  # type: ignore[attr-defined]
        raise self.retry()  # type: ignore[attr-defined]
    if fail:
        raise ValueError("a secret detail")
    return "done"


@celery.task(carry_request=True)
def carried() -> dict[str, object]:
    return {
        "method": request.method,
        "path": request.path,
        "args": request.args.to_dict(),
        "json": request.get_json(silent=True),
        "form": request.form.to_dict(),
        "header": request.headers.get("X-Test"),
        "headers": {k.lower(): v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")},
        "g": {"user_id": g.get("user_id"), "request_id": g.get("request_id")},
    }


@shared_task
def shared() -> str:
    return current_app.name


@celery.task
def reports(steps: int) -> int:
    for n in range(steps):
        progress({"step": n + 1, "of": steps})
    return steps * 10


@celery.task
def sleeps(seconds: float) -> None:
    time.sleep(seconds)


@app.post("/enqueue/<kind>")
def enqueue(kind: str) -> dict[str, str]:
    g.user_id = "u-42"
    g.request_id = "r-7"
    g.secret = "not carried"
    task = {"carried": carried, "shared": shared}[kind]
    return {"id": task.delay().id}


@app.get("/tasks/<task_id>/events")
def events(task_id: str) -> object:
    from tether.celery import task_events

    return task_events(task_id)
