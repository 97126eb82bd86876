"""An app for tests/test_startup_checks.py, set up from the environment as a
user would get it wrong: $APP_BROADCAST_URL (applied when set), a cluster
periodic service with $CLUSTER, a per-worker one with $PERIODIC, and
``app.config.from_prefixed_env()`` only with $FROM_PREFIXED_ENV.
``before_serving`` and each run of a service are written to $EVENTS_FILE."""

import os

from tether import Tether

EVENTS = os.environ["EVENTS_FILE"]

app = Tether(__name__)
if "APP_BROADCAST_URL" in os.environ:
    app.config["BROADCAST_URL"] = os.environ["APP_BROADCAST_URL"]
if os.environ.get("FROM_PREFIXED_ENV"):
    app.config.from_prefixed_env()


def record(line: str) -> None:
    with open(EVENTS, "a") as f:
        f.write(f"{os.getpid()} {line}\n")


@app.before_serving
def before_serving() -> None:
    record("before_serving")


if os.environ.get("CLUSTER"):

    @app.periodic(0.2, name="cleanup", across="cluster")
    def cleanup() -> None:
        record("cleanup")


if os.environ.get("PERIODIC"):

    @app.periodic(0.2, name="market")
    def market() -> None:
        record("market")
        app.broadcast.publish("prices", 1)


@app.get("/")
def index() -> str:
    return "ok"


@app.post("/publish")
def publish() -> str:
    return app.broadcast.publish("prices", 1)


if __name__ == "__main__":  # `python startup_app.py PORT`: Flask's app.run()
    import sys

    app.run(port=int(sys.argv[1]))
