"""An app served by real servers in tests/test_servers.py; it records events in $EVENTS_FILE."""

import os
import time

from tether import Tether, g, request
from tether.contexts.ctx import _cv_app, _cv_request

app = Tether(__name__)
EVENTS = os.environ["EVENTS_FILE"]


def record(line: str) -> None:
    with open(EVENTS, "a") as f:
        f.write(line + "\n")


@app.teardown_request
def teardown(exc: BaseException | None) -> None:
    record(f"teardown {request.path}")


@app.route("/")
def index() -> str:
    return "hello"


@app.route("/stream")
def stream():
    g.token = request.args.get("token", "none")

    def generate():
        try:
            n = 0
            while True:
                n += 1
                yield f"{n} {request.path} {g.token}\n" + "x" * 2048 + "\n"
                time.sleep(0.01)
        finally:
            record(f"finally {request.path} {g.token}")

    return generate()


class CheckNoLeftoverContext:
    """Records a request that arrives on a thread where a tether context is still current."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        if _cv_app.get(None) is not None or _cv_request.get(None) is not None:
            record("leftover context")
        return self.wsgi_app(environ, start_response)


app.wsgi_app = CheckNoLeftoverContext(app.wsgi_app)
