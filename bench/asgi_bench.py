"""In-process ASGI benchmark: tether against Starlette, FastAPI, Litestar and
Quart on the same endpoints, in the same run, driven as a real server drives
an app.

- The receive callable gives the request body, then blocks until the response
  is complete and says ``http.disconnect`` (uvicorn's behaviour), so a
  framework that listens for a disconnect pays for it as it would in production.
- The loop is uvloop's when uvloop is installed.
- tether's views use every return form Flask users write: ``str``,
  ``(str, headers)``, ``(str, status)``, ``dict``, ``Response``; each as an
  ``async def`` view and as a plain (sync) view, which runs in the thread pool.

Rounds are interleaved; the report gives medians in µs per request and
tether's time as a multiple of Starlette's, FastAPI's, Litestar's and Quart's.

    python bench/asgi_bench.py [--rounds 9] [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import time
import typing as t

from fastapi import FastAPI
from litestar import Litestar, MediaType, get, post
from litestar import Request as LitestarRequest
from litestar import Response as LitestarResponse
from quart import Quart
from quart import request as quart_request
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

import tether

try:
    import uvloop
except ImportError:  # the bench runs on asyncio's own loop then, and says so
    uvloop = None

TEXT = "Hello, World!"
TEXT_HEADERS = {"Content-Type": "text/plain; charset=utf-8"}

#: case -> (method, path, query string, request headers)
CASES: dict[str, tuple[str, str, bytes, list[tuple[bytes, bytes]]]] = {
    "/ str": ("GET", "/str", b"", []),
    "/ (str, headers)": ("GET", "/str-headers", b"", []),
    "/ (str, status)": ("GET", "/str-status", b"", []),
    "/ dict": ("GET", "/dict", b"", []),
    "/ Response": ("GET", "/response", b"", []),
    "/user/<int:id>?q=x": ("GET", "/user/42", b"q=x", []),
    "POST /echo (JSON)": ("POST", "/echo", b"", [(b"content-type", b"application/json")]),
}
BODY = json.dumps({"name": "Carousell_HK_003", "node": "HK_061", "items": [1, 2, 3]}).encode()


def build_starlette() -> t.Any:
    async def text(request: StarletteRequest) -> PlainTextResponse:
        return PlainTextResponse(TEXT)

    async def created(request: StarletteRequest) -> PlainTextResponse:
        return PlainTextResponse(TEXT, status_code=201)

    async def data(request: StarletteRequest) -> JSONResponse:
        return JSONResponse({"message": TEXT})

    async def user(request: StarletteRequest) -> JSONResponse:
        return JSONResponse({"id": request.path_params["id"], "q": request.query_params.get("q")})

    async def echo(request: StarletteRequest) -> JSONResponse:
        return JSONResponse(await request.json())

    return Starlette(routes=[
        Route("/str", text), Route("/str-headers", text), Route("/str-status", created), Route("/dict", data),
        Route("/response", text), Route("/user/{id:int}", user), Route("/echo", echo, methods=["POST"]),
    ])


def build_fastapi() -> t.Any:
    app = FastAPI()

    @app.get("/str", response_class=PlainTextResponse)
    async def text() -> str:
        return TEXT

    @app.get("/str-headers")
    async def text_headers() -> PlainTextResponse:
        return PlainTextResponse(TEXT, headers=TEXT_HEADERS)

    @app.get("/str-status", response_class=PlainTextResponse, status_code=201)
    async def created() -> str:
        return TEXT

    @app.get("/dict")
    async def data() -> dict[str, str]:
        return {"message": TEXT}

    @app.get("/response")
    async def response() -> PlainTextResponse:
        return PlainTextResponse(TEXT)

    @app.get("/user/{id}")
    async def user(id: int, q: str | None = None) -> dict[str, t.Any]:
        return {"id": id, "q": q}

    @app.post("/echo")
    async def echo(request: StarletteRequest) -> t.Any:
        return await request.json()

    return app


def build_litestar() -> t.Any:
    @get("/str", media_type=MediaType.TEXT)
    async def text() -> str:
        return TEXT

    @get("/str-headers", media_type=MediaType.TEXT)
    async def text_headers() -> LitestarResponse[str]:
        return LitestarResponse(TEXT, headers=TEXT_HEADERS, media_type=MediaType.TEXT)

    @get("/str-status", media_type=MediaType.TEXT, status_code=201)
    async def created() -> str:
        return TEXT

    @get("/dict")
    async def data() -> dict[str, str]:
        return {"message": TEXT}

    @get("/response", media_type=MediaType.TEXT)
    async def response() -> LitestarResponse[str]:
        return LitestarResponse(TEXT, media_type=MediaType.TEXT)

    @get("/user/{id:int}")
    async def user(id: int, q: str | None = None) -> dict[str, t.Any]:
        return {"id": id, "q": q}

    @post("/echo", status_code=200)
    async def echo(request: LitestarRequest[t.Any, t.Any, t.Any]) -> t.Any:
        return await request.json()

    return Litestar([text, text_headers, created, data, response, user, echo])


def build_quart() -> t.Any:
    app = Quart("bench")

    @app.route("/str")
    async def text() -> t.Any:
        return TEXT

    @app.route("/str-headers")
    async def text_headers() -> t.Any:
        return TEXT, TEXT_HEADERS

    @app.route("/str-status")
    async def created() -> t.Any:
        return TEXT, 201

    @app.route("/dict")
    async def data() -> t.Any:
        return {"message": TEXT}

    @app.route("/response")
    async def response() -> t.Any:
        return app.response_class(TEXT, mimetype="text/plain")

    @app.route("/user/<int:id>")
    async def user(id: int) -> t.Any:
        return {"id": id, "q": quart_request.args.get("q")}

    @app.post("/echo")
    async def echo() -> t.Any:
        return await quart_request.get_json()

    return app


def build_tether(sync: bool) -> t.Any:
    """The same views as Flask users write them, ``async def`` or not."""
    app = tether.Tether("bench")
    request = tether.request
    views: dict[str, tuple[str, t.Callable[..., t.Any], list[str]]] = {
        "/str": ("text", lambda: TEXT, ["GET"]),
        "/str-headers": ("text_headers", lambda: (TEXT, TEXT_HEADERS), ["GET"]),
        "/str-status": ("created", lambda: (TEXT, 201), ["GET"]),
        "/dict": ("data", lambda: {"message": TEXT}, ["GET"]),
        "/response": ("response", lambda: tether.Response(TEXT, mimetype="text/plain"), ["GET"]),
        "/user/<int:id>": ("user", lambda id: {"id": id, "q": request.args.get("q")}, ["GET"]),
        "/echo": ("echo", lambda: request.json, ["POST"]),
    }
    for rule, (endpoint, body, methods) in views.items():
        if sync:
            view = body
        else:
            async def view(*args: t.Any, _body: t.Callable[..., t.Any] = body, **kwargs: t.Any) -> t.Any:
                return _body(*args, **kwargs)
        app.add_url_rule(rule, endpoint, view, methods=methods)
    return app


async def time_requests(app: t.Any, case: str, n: int) -> float:
    method, path, query, headers = CASES[case]
    body = BODY if method == "POST" else b""
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "", "query_string": query,
        "headers": [(b"host", b"localhost"), (b"content-length", str(len(body)).encode()), *headers],
        "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000),
    }
    statuses: list[int] = []

    async def one() -> None:
        done = asyncio.Event()
        sent_body = False

        async def receive() -> dict[str, t.Any]:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()  # as uvicorn: nothing more until the response is complete
            return {"type": "http.disconnect"}

        async def send(message: dict[str, t.Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])
            elif not message.get("more_body", False):
                done.set()

        await app(dict(scope), receive, send)

    await one()  # warm-up, and a check that the case works
    if statuses[0] >= 400:
        raise RuntimeError(f"{case} answered {statuses[0]} on {type(app).__name__}")
    gc.collect()
    start = time.perf_counter()
    for _ in range(n):
        await one()
    return (time.perf_counter() - start) / n * 1e6


async def run_rounds(rounds: int, n: int) -> dict[tuple[str, str], list[float]]:
    apps = {
        "tether": build_tether(sync=False),
        "tether sync": build_tether(sync=True),
        "starlette": build_starlette(),
        "fastapi": build_fastapi(),
        "litestar": build_litestar(),
        "quart": build_quart(),
    }
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for case in CASES:
            for name, app in apps.items():
                results.setdefault((name, case), []).append(await time_requests(app, case, n))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    if uvloop is not None:
        results = uvloop.run(run_rounds(args.rounds, args.requests))
    else:
        results = asyncio.run(run_rounds(args.rounds, args.requests))
    print(f"loop: {'uvloop' if uvloop else 'asyncio'}; medians of {args.rounds} interleaved rounds, "
          f"{args.requests} requests each; µs per request\n")
    anchors = ("starlette", "fastapi", "litestar", "quart")
    print(f"{'case':<22}{'tether':>8}{'sync view':>10}" + "".join(f"{name:>10}" for name in anchors)
          + "".join(f"{'t/' + name[:6]:>10}" for name in anchors) + f"{'sync/star':>10}")
    for case in CASES:
        ours, sync, *others = (statistics.median(results[(name, case)]) for name in ("tether", "tether sync", *anchors))
        print(f"{case:<22}{ours:>8.2f}{sync:>10.2f}" + "".join(f"{other:>10.2f}" for other in others)
              + "".join(f"{ours / other:>9.2f}x" for other in others) + f"{sync / others[0]:>9.2f}x")


if __name__ == "__main__":
    main()
