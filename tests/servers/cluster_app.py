"""An app whose periodic service runs once per interval across all the
processes that serve it, for tests/test_redis_broadcast.py. Runs are written
to $EVENTS_FILE as start and end lines with the slot and the process id."""

import os
import time

from tether import Tether

EVENTS = os.environ["EVENTS_FILE"]

app = Tether(__name__)
app.config["BROADCAST_URL"] = os.environ["BROADCAST_URL"]
app.config.from_prefixed_env()  # TETHER_BROADCAST_NAMESPACE: two projects of one name


def record(line: str) -> None:
    with open(EVENTS, "a") as f:
        f.write(line + "\n")


@app.periodic(0.3, name=os.environ["SERVICE_NAME"], across="cluster")
def tick() -> None:
    slot = app.periodic_services[os.environ["SERVICE_NAME"]].slot
    record(f"start {slot} {os.getpid()}")
    time.sleep(0.1)
    record(f"end {slot} {os.getpid()}")


@app.get("/")
def index() -> str:
    return "ok"
