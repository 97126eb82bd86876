"""The apps of bench/celery_bench.py: the same no-op task on a plain Celery app
and on one bound to a tether app (each execution in a fresh app context)."""

from __future__ import annotations

import os
import time

import redis
from celery import Celery

from tether import Tether
from tether.celery import init_celery

URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
QUEUE = os.environ.get("BENCH_QUEUE", "celery-bench")
CONFIG = {"broker_url": URL, "task_ignore_result": True, "task_default_queue": QUEUE, "worker_prefetch_multiplier": 64}
marks = redis.Redis.from_url(URL)

plain = Celery("plain")
plain.config_from_object(CONFIG)

app = Tether(__name__)
app.config["CELERY"] = CONFIG
with_context = init_celery(app)


def mark(name: str) -> None:
    if name:
        marks.set(f"{QUEUE}:{name}", repr(time.time()))


@plain.task(name="bench.noop")
def plain_noop(name: str = "") -> None:
    mark(name)


@with_context.task(name="bench.noop")
def context_noop(name: str = "") -> None:
    mark(name)
