"""In-process ASGI benchmark: tether against Starlette on the same endpoints, same run.

Both apps use async endpoints (Starlette's usual form); tether's sync views,
which run in its thread pool, are reported beside them. Rounds are interleaved
and the report gives medians and tether's time as a multiple of Starlette's.

    python bench/asgi_bench.py [--rounds 15] [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import time
import typing as t

from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

import tether


def build_starlette() -> t.Any:
    async def index(request: StarletteRequest) -> PlainTextResponse:
        return PlainTextResponse("Hello, World!")

    async def user(request: StarletteRequest) -> JSONResponse:
        return JSONResponse({"id": request.path_params["id"], "q": request.query_params.get("q")})

    async def echo(request: StarletteRequest) -> JSONResponse:
        return JSONResponse(await request.json())

    return Starlette(
        routes=[Route("/", index), Route("/user/{id:int}", user), Route("/echo", echo, methods=["POST"])]
    )


def build_tether(sync: bool) -> t.Any:
    app = tether.Tether("bench")
    request = tether.request

    if sync:
        app.add_url_rule("/", "index", lambda: "Hello, World!")
        app.add_url_rule("/user/<int:id>", "user", lambda id: {"id": id, "q": request.args.get("q")})
        app.add_url_rule("/echo", "echo", lambda: request.json, methods=["POST"])
        return app

    @app.route("/")
    async def index() -> str:
        return "Hello, World!"

    @app.route("/user/<int:id>")
    async def user(id: int) -> dict[str, t.Any]:
        return {"id": id, "q": request.args.get("q")}

    @app.post("/echo")
    async def echo() -> t.Any:
        return request.json

    return app


BODY = json.dumps({"name": "Carousell_HK_003", "node": "HK_061", "items": [1, 2, 3]}).encode()
CASES = {
    "/": ("GET", "/", b"", []),
    "/user/<int:id>?q=x": ("GET", "/user/42", b"q=x", []),
    "POST /echo (JSON)": ("POST", "/echo", b"", [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]),
}


async def time_requests(app: t.Any, method: str, path: str, query: bytes, headers: list[tuple[bytes, bytes]], n: int) -> float:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "root_path": "", "query_string": query,
        "headers": [(b"host", b"localhost"), *headers], "server": ("localhost", 80), "client": ("127.0.0.1", 5000),
    }
    body = BODY if method == "POST" else b""
    request_message = {"type": "http.request", "body": body, "more_body": False}

    async def receive() -> dict[str, t.Any]:
        return request_message

    async def send(message: dict[str, t.Any]) -> None:
        pass

    gc.collect()
    start = time.perf_counter()
    for _ in range(n):
        await app(dict(scope), receive, send)
    return (time.perf_counter() - start) / n * 1e6


async def run_rounds(rounds: int, n: int) -> dict[tuple[str, str], list[float]]:
    apps = {"tether": build_tether(sync=False), "starlette": build_starlette(), "tether (sync views)": build_tether(sync=True)}
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for case, (method, path, query, headers) in CASES.items():
            for name, app in apps.items():
                results.setdefault((name, case), []).append(await time_requests(app, method, path, query, headers, n))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    results = asyncio.run(run_rounds(args.rounds, args.requests))
    print(f"medians of {args.rounds} interleaved rounds, {args.requests} requests each (µs per request)\n")
    print(f"{'case':<22}{'tether':>9}{'starlette':>11}{'tether/starlette':>18}{'tether sync views':>19}")
    for case in CASES:
        ours = statistics.median(results[("tether", case)])
        theirs = statistics.median(results[("starlette", case)])
        sync = statistics.median(results[("tether (sync views)", case)])
        print(f"{case:<22}{ours:>9.2f}{theirs:>11.2f}{ours / theirs:>17.2f}x{sync:>19.2f}")


if __name__ == "__main__":
    main()
