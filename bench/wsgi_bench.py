"""In-process WSGI benchmark: tether against Flask on the same endpoints, same run.

Each round times every framework on every endpoint in turn (interleaved), so
drift on a shared machine hits both alike; the report is the median over rounds.

    python bench/wsgi_bench.py [--rounds 7] [--requests 20000]
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import statistics
import time
import typing as t

import flask
from werkzeug.test import EnvironBuilder

import tether


def build(module: t.Any, cls: t.Any) -> t.Any:
    app = cls("bench")
    request, g = module.request, module.g

    @app.route("/")
    def index() -> str:
        return "Hello, World!"

    @app.route("/user/<int:id>")
    def user(id: int) -> dict[str, t.Any]:
        return {"id": id, "q": request.args.get("q")}

    @app.route("/ctx")
    def ctx() -> str:
        total = 0
        for _ in range(10):
            total += len(request.path)
            total += g.get("missing", 1)
        return str(total)

    @app.post("/echo")
    def echo() -> t.Any:
        return request.get_json()

    return app


def raw_wsgi(environ: dict, start_response: object) -> list[bytes]:
    """No framework: the ceiling gunicorn itself allows."""
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "13")])  # type: ignore[operator]
    return [b"Hello, World!"]


#: case -> (path, query string, JSON body for a POST)
ENDPOINTS: dict[str, tuple[str, str, bytes | None]] = {
    "/": ("/", "", None),
    "/user/<int:id>?q=x": ("/user/42", "q=x", None),
    "/ctx": ("/ctx", "", None),
    "POST /echo (JSON)": ("/echo", "", json.dumps({"name": "Carousell_HK_003", "node": "HK_061", "items": [1, 2, 3]}).encode()),
}


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: t.Any = None) -> None:
    pass


def time_requests(app: t.Any, path: str, query: str, body: bytes | None, n: int) -> float:
    """Microseconds per request, through the whole WSGI call and body."""
    if body is None:
        environ = EnvironBuilder(path=path, query_string=query).get_environ()
    else:
        environ = EnvironBuilder(path=path, query_string=query, method="POST", data=body, content_type="application/json").get_environ()
    gc.collect()
    timer = time.perf_counter
    start = timer()
    for _ in range(n):
        request_environ = environ.copy()
        if body is not None:
            request_environ["wsgi.input"] = io.BytesIO(body)
        rv = app(request_environ, _start_response)
        for _chunk in rv:
            pass
        close = getattr(rv, "close", None)
        if close is not None:
            close()
    return (timer() - start) / n * 1e6


def time_contexts(app: t.Any, n: int) -> dict[str, float]:
    """Microseconds for app context create+push+pop, request context push+pop
    (contexts built beforehand, outside the timing) and create+push+pop."""
    environ = EnvironBuilder(path="/user/42", query_string="q=x").get_environ()
    timer = time.perf_counter
    gc.collect()
    start = timer()
    for _ in range(n):
        ctx = app.app_context()
        ctx.push()
        ctx.pop()
    app_ctx = (timer() - start) / n * 1e6
    contexts = [app.request_context(environ.copy()) for _ in range(n)]
    gc.collect()
    start = timer()
    for ctx in contexts:
        ctx.push()
        ctx.pop()
    push_pop = (timer() - start) / n * 1e6
    del contexts
    gc.collect()
    start = timer()
    for _ in range(n):
        ctx = app.request_context(environ.copy())
        ctx.push()
        ctx.pop()
    return {
        "app context push+pop": app_ctx,
        "request context push+pop": push_pop,
        "request ctx create+push+pop": (timer() - start) / n * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=20000)
    args = parser.parse_args()
    apps = {"tether": build(tether, tether.Tether), "flask": build(flask, flask.Flask)}
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for name, (path, query, body) in ENDPOINTS.items():
            for fw, app in apps.items():
                results.setdefault((fw, name), []).append(time_requests(app, path, query, body, args.requests))
        for fw, app in apps.items():
            for case, value in time_contexts(app, args.requests).items():
                results.setdefault((fw, case), []).append(value)
    print(f"tether {tether.__version__} vs Flask {flask.__version__ if hasattr(flask, '__version__') else ''}".strip())
    print(f"medians of {args.rounds} interleaved rounds, {args.requests} iterations each\n")
    print(f"{'case':<28}{'tether µs':>11}{'flask µs':>11}{'speedup':>10}")
    for name in [*ENDPOINTS, "app context push+pop", "request context push+pop", "request ctx create+push+pop"]:
        ours = statistics.median(results[("tether", name)])
        theirs = statistics.median(results[("flask", name)])
        print(f"{name:<28}{ours:>11.2f}{theirs:>11.2f}{theirs / ours:>9.2f}x")


if __name__ == "__main__":
    main()
