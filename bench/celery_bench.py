"""Tasks per second through one Celery worker (solo pool, Redis broker), with
a plain Celery app and with one bound to tether (every execution in a fresh
app context), in interleaved rounds; reports the medians and the context's
cost per task.

    python bench/celery_bench.py [--tasks 3000] [--rounds 3]

Each round queues the tasks first, then starts the worker: the time from the
first task's start to the last one's end is the worker's alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import redis

HERE = Path(__file__).parent
URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def one_round(kind: str, tasks: int) -> float:
    queue = f"celery-bench-{uuid.uuid4().hex}"
    env = {**os.environ, "REDIS_URL": URL, "BENCH_QUEUE": queue, "PYTHONPATH": f"{HERE}{os.pathsep}{HERE.parent / 'src'}"}
    os.environ["BENCH_QUEUE"] = queue
    sys.path.insert(0, str(HERE))
    import importlib

    import celery_apps

    apps = importlib.reload(celery_apps)
    task = apps.plain_noop if kind == "plain" else apps.context_noop
    task.delay("first")
    for _ in range(tasks - 2):
        task.delay()
    task.delay("last")
    marks = redis.Redis.from_url(URL)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", f"celery_apps:{'plain' if kind == 'plain' else 'with_context'}",
         "worker", "-P", "solo", "-Q", queue, "-l", "error", "--without-gossip", "--without-mingle",
         "--without-heartbeat", "-n", f"{queue}@%h"],
        cwd=HERE, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        while not marks.exists(f"{queue}:last"):
            time.sleep(0.05)
        first, last = (float(marks.get(f"{queue}:{name}")) for name in ("first", "last"))  # type: ignore[arg-type]
        return (tasks - 1) / (last - first)
    finally:
        worker.terminate()
        worker.wait(30)
        marks.delete(f"{queue}:first", f"{queue}:last", queue)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {"plain": [], "tether": []}
    for _ in range(args.rounds):
        for kind in rates:
            rates[kind].append(one_round(kind, args.tasks))
    plain, tether = (statistics.median(rates[kind]) for kind in ("plain", "tether"))
    print(f"{args.tasks} no-op tasks through one solo worker, median of {args.rounds} interleaved rounds")
    print(f"plain Celery       {plain:>8,.0f} tasks/s")
    print(f"tether ContextTask {tether:>8,.0f} tasks/s   ({tether / plain:.2f}x; "
          f"the context costs {(1 / tether - 1 / plain) * 1e6:.0f} µs per task)")


if __name__ == "__main__":
    main()
