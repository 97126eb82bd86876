"""uvicorn's own HTTP protocol driven in process: the whole per-request cost of
a framework under uvicorn (parsing, the ASGI calls, the response bytes), without
the socket or a load generator sharing the cores.

Each request's bytes go into uvicorn's ``HttpToolsProtocol.data_received`` as
the server's transport would deliver them, and the loop runs until the
response's last bytes are written; requests follow one another on one kept-alive
connection, as under ``wrk``. Two measures:

- CPU µs per request (``time.process_time``), medians of interleaved rounds;
- with ``--instructions``, instructions per request counted by callgrind
  (the difference between a run of N and one of 2N requests, so start-up and
  import cancel out): repeatable to a few hundred instructions whatever else the
  machine is doing, which is what a shared 2-core machine needs.

    python bench/protocol_bench.py [--rounds 7] [--requests 3000]
    python bench/protocol_bench.py --instructions [--apps "tether async" starlette]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t

from asgi_bench import BODY, build_fastapi, build_litestar, build_starlette, build_tether
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

try:
    import uvloop
except ImportError:  # asyncio's own loop then, as uvicorn would pick
    uvloop = None

APPS: dict[str, t.Callable[[], t.Any]] = {
    "tether async": lambda: build_tether(sync=False),
    "tether sync": lambda: build_tether(sync=True),
    "starlette": build_starlette,
    "fastapi": build_fastapi,
    "litestar": build_litestar,
    "no framework": lambda: raw_asgi,
}

REQUESTS = {
    "/str": b"GET /str HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "/user": b"GET /user/42?q=x HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "POST /echo": (
        b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
    ),
}


async def raw_asgi(scope: dict[str, t.Any], receive: t.Any, send: t.Any) -> None:
    """No framework: uvicorn's own cost."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
    await send({"type": "http.response.body", "body": b"Hello, World!"})


class Transport(asyncio.Transport):
    """The socket's side of the protocol: counts what is written, keeps nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += len(data)

    def get_extra_info(self, name: str, default: t.Any = None) -> t.Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        raise RuntimeError("the bench's connection was closed: a request failed")

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None: ...
    def get_write_buffer_size(self) -> int:
        return 0


class Protocol(HttpToolsProtocol):
    """uvicorn's protocol, telling the driver when a response is complete."""

    done: asyncio.Event

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self.done.set()


class Connection:
    """One kept-alive connection to an app through uvicorn's protocol."""

    def __init__(self, app: t.Any, loop: asyncio.AbstractEventLoop) -> None:
        config = Config(app, lifespan="off", log_level="warning", access_log=False, http="httptools")
        config.load()
        self.protocol = Protocol(config, ServerState(), {}, loop)
        self.transport = Transport()
        self.protocol.connection_made(self.transport)

    async def request(self, raw: bytes) -> None:
        done = self.protocol.done = asyncio.Event()
        self.protocol.data_received(raw)
        await done.wait()

    async def run(self, raw: bytes, n: int) -> None:
        for _ in range(n):
            await self.request(raw)


def new_loop() -> asyncio.AbstractEventLoop:
    return asyncio.new_event_loop() if uvloop is None else uvloop.new_event_loop()


def check(app: t.Any, raw: bytes, loop: asyncio.AbstractEventLoop) -> None:
    """One request, whose status must be 200: a bench of errors measures nothing."""
    conn = Connection(app, loop)
    seen: list[bytes] = []
    write = conn.transport.write

    def keep(data: t.Any) -> None:
        seen.append(bytes(data))
        write(data)

    conn.transport.write = keep  # type: ignore[method-assign]
    loop.run_until_complete(conn.request(raw))
    if not seen or not seen[0].startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"{raw.split(b' ')[1].decode()}: {seen[:1]!r}")


def cpu_rounds(apps: list[str], paths: list[str], rounds: int, n: int) -> dict[tuple[str, str], list[float]]:
    built = {name: APPS[name]() for name in apps}
    times: dict[tuple[str, str], list[float]] = {}
    loop = new_loop()
    conns = {name: Connection(app, loop) for name, app in built.items()}
    for name, app in built.items():
        for path in paths:
            check(app, REQUESTS[path], loop)
            loop.run_until_complete(conns[name].run(REQUESTS[path], 200))
    for _ in range(rounds):
        for path in paths:
            for name in apps:
                start = time.process_time()
                loop.run_until_complete(conns[name].run(REQUESTS[path], n))
                times.setdefault((name, path), []).append((time.process_time() - start) / n * 1e6)
    return times


def run_requests(name: str, path: str, n: int) -> None:
    """The child of ``--instructions``: n requests after a warm-up."""
    loop = new_loop()
    conn = Connection(APPS[name](), loop)
    loop.run_until_complete(conn.run(REQUESTS[path], 50))
    loop.run_until_complete(conn.run(REQUESTS[path], n))


def instructions(name: str, path: str, n: int) -> float:
    """Instructions per request: callgrind's total for 2n requests minus n's."""
    totals = []
    for count in (n, 2 * n):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "cg.out")
            cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__,
                   "--child", name, path, str(count)]
            env = dict(os.environ, PYTHONHASHSEED="0")
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
            found = re.search(r"Collected : (\d+)", proc.stderr)
            if found is None:
                raise SystemExit(proc.stderr[-2000:])
            totals.append(int(found.group(1)))
    return (totals[1] - totals[0]) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", nargs="+", default=["tether async", "tether sync", "starlette", "fastapi", "litestar", "no framework"])
    parser.add_argument("--paths", nargs="+", default=list(REQUESTS))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--instructions", action="store_true", help="count instructions with callgrind")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_requests(args.child[0], args.child[1], int(args.child[2]))
        return
    unit = "thousand instructions" if args.instructions else "CPU µs"
    print(f"uvicorn {HttpToolsProtocol.__module__}, loop {'uvloop' if uvloop else 'asyncio'}; {unit} per request")
    if args.instructions:
        n = min(args.requests, 400)
        medians = {(name, path): instructions(name, path, n) / 1000 for path in args.paths for name in args.apps}
    else:
        times = cpu_rounds(args.apps, args.paths, args.rounds, args.requests)
        medians = {key: statistics.median(v) for key, v in times.items()}
    print(f"{'app':<14}" + "".join(f"{p:>14}" for p in args.paths))
    for name in args.apps:
        row = "".join(f"{medians[name, p]:>14.1f}" for p in args.paths)
        print(f"{name:<14}{row}")
    if "starlette" in args.apps:
        for name in args.apps:
            if name != "starlette":
                ratios = "".join(f"{medians[name, p] / medians['starlette', p]:>13.2f}x" for p in args.paths)
                print(f"{name + ' / starlette':<14}{ratios}")
    print(json.dumps({f"{n} {p}": round(v, 2) for (n, p), v in medians.items()}))


if __name__ == "__main__":
    main()
