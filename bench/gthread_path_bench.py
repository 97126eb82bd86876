"""gunicorn ``gthread``'s request path, in process: the bare WSGI callable, tether and Flask.

Each request goes through gunicorn's own pieces as its ``gthread`` worker uses them
(23.0: ``ThreadWorker.handle_request``): the keep-alive connection's
``RequestParser``, ``pre_request``, ``gunicorn.http.wsgi.create`` (the environ and the
``Response`` whose ``start_response`` the app calls), the body written chunk by chunk
through ``Response.write``, ``Response.close``, the access log call, the body's
``close()``, ``post_request``. The socket is a stand-in whose ``recv`` gives the next
request as wrk sends it and whose ``sendall`` drops the bytes: what is left out is the
worker's poller and thread pool, the same for every app.

    python bench/gthread_path_bench.py [--rounds 5] [--requests 20000]   # µs per request
    python bench/gthread_path_bench.py --instructions [--requests 2000]  # callgrind
    python bench/gthread_path_bench.py --opcodes       # bytecodes per request, by package
    python bench/gthread_path_bench.py --profile tether /user           # cProfile

``--instructions`` runs each app under ``valgrind --tool=callgrind`` (PYTHONHASHSEED=0)
twice, with N and 2N requests after the same warm-up, and gives the difference over N:
the instructions of the request loop alone, start-up and imports cancelling out.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import gc
import os
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t
from datetime import datetime
from pathlib import Path

from gunicorn.config import Config
from gunicorn.glogging import Logger
from gunicorn.http import RequestParser, wsgi

HERE = Path(__file__).resolve().parent
PATHS = {"/": "/", "/user": "/user/42?q=x"}
APPS = ("bare", "tether", "flask")
WARM_UP = 200


def make_app(name: str) -> t.Any:
    """The app ``bench/server_apps.py`` serves under that name."""
    from wsgi_bench import build, raw_wsgi

    if name == "bare":
        return raw_wsgi
    if name == "tether":
        import tether

        return build(tether, tether.Tether)
    import flask

    return build(flask, flask.Flask)


class KeepAlive:
    """A client's keep-alive connection, as the worker's socket: every ``recv``
    gives the next request, what the worker sends is counted and dropped."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.sent = 0

    def recv(self, size: int) -> bytes:
        return self.request

    def send(self, data: bytes) -> int:
        self.sent += len(data)
        return len(data)

    def sendall(self, data: bytes) -> None:
        self.sent += len(data)


class Worker:
    """What gunicorn's ``pre_request``/``post_request`` hooks are given."""

    def __init__(self, log: Logger) -> None:
        self.log = log


class Driver:
    """Serves requests to one app the way a ``gthread`` worker does."""

    def __init__(self, app: t.Any, target: str) -> None:
        self.app = app
        self.cfg = Config()
        self.log = Logger(self.cfg)
        self.worker = Worker(self.log)
        self.sock = KeepAlive(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n".encode())
        self.parser = RequestParser(self.cfg, self.sock, ("127.0.0.1", 50000))

    def serve(self, n: int) -> None:
        cfg, log, worker, sock, app = self.cfg, self.log, self.worker, self.sock, self.app
        for _ in range(n):
            req = next(self.parser)
            cfg.pre_request(worker, req)
            began = datetime.now()
            resp, environ = wsgi.create(req, sock, ("127.0.0.1", 50000), ("127.0.0.1", 8000), cfg)
            environ["wsgi.multithread"] = True
            body = app(environ, resp.start_response)
            try:
                if isinstance(body, environ["wsgi.file_wrapper"]):
                    resp.write_file(body)
                else:
                    for chunk in body:
                        resp.write(chunk)
                resp.close()
            finally:
                log.access(resp, req, environ, datetime.now() - began)
                if hasattr(body, "close"):
                    body.close()
            cfg.post_request(worker, req, environ, resp)
            if resp.status_code != 200:
                raise RuntimeError(f"{resp.status} from {type(app)}")


def timed(apps: dict[str, t.Any], rounds: int, n: int) -> None:
    results: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
    for _ in range(rounds):
        for path, target in PATHS.items():
            for name, app in apps.items():
                driver = Driver(app, target)
                driver.serve(WARM_UP)
                gc.collect()
                start = time.perf_counter()
                driver.serve(n)
                results[(name, path)].append((time.perf_counter() - start) / n * 1e6)
    print(f"µs per request, medians of {rounds} interleaved rounds of {n}; load {os.getloadavg()[0]:.1f}")
    table({key: statistics.median(values) for key, values in results.items()}, "{:.2f}")


def table(figures: dict[tuple[str, str], float], form: str) -> None:
    names = [name for name in APPS if any(key[0] == name for key in figures)]
    compared = names[1:] if names[0] == "bare" else []
    print(f"{'path':<8}" + "".join(f"{name:>12}" for name in names) + "".join(f"{'bare/' + n:>14}" for n in compared))
    for path in PATHS:
        row = [figures[(name, path)] for name in names]
        ratios = [row[0] / value for value in row[1:]] if compared else []
        print(f"{path:<8}" + "".join(f"{form.format(v):>12}" for v in row) + "".join(f"{r:>13.3f}x" for r in ratios))


def callgrind_total(name: str, path: str, n: int) -> int:
    """Instructions of a whole run serving ``n`` requests after the warm-up."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "callgrind.out"
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        subprocess.run(
            [
                "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no",
                sys.executable, __file__, "--serve", name, path, str(n),
            ],
            env=env, check=True, capture_output=True,
        )
        match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
        if match is None:
            raise RuntimeError(f"no total in {out}")
        return int(match.group(1))


def instructions(names: list[str], n: int) -> None:
    figures = {}
    for path in PATHS:
        for name in names:
            figures[(name, path)] = (callgrind_total(name, path, 2 * n) - callgrind_total(name, path, n)) / n
    print(f"callgrind instructions per request ((2N - N) / N, N = {n}); load {os.getloadavg()[0]:.1f}")
    table(figures, "{:,.0f}")
    for path in PATHS if "bare" in names else ():
        bare = figures[("bare", path)]
        for name in names[1:]:
            print(f"{path}: {name}'s own share {figures[(name, path)] - bare:,.0f}; 0.9x would need at most {bare / 0.9 - bare:,.0f}")


def package(filename: str) -> str:
    for part in ("tether", "flask", "werkzeug", "gunicorn", "jinja2", "markupsafe", "blinker", "itsdangerous"):
        if f"/{part}/" in filename:
            return part
    if "/bench/" in filename:
        return "the bench"
    return "the standard library"


def count_opcodes(driver: Driver, n: int) -> collections.Counter[str]:
    driver.serve(WARM_UP)
    counts: collections.Counter[str] = collections.Counter()

    def trace(frame: t.Any, event: str, arg: t.Any) -> t.Any:
        frame.f_trace_opcodes = True
        if event == "opcode":
            counts[package(frame.f_code.co_filename)] += 1
        return trace

    sys.settrace(trace)
    try:
        driver.serve(n)
    finally:
        sys.settrace(None)
    return counts


def opcodes(apps: dict[str, t.Any], n: int) -> None:
    """Bytecodes executed per request, by the package their code is in."""
    for path, target in PATHS.items():
        for name, app in apps.items():
            counts = count_opcodes(Driver(app, target), n)
            total = sum(counts.values()) / n
            parts = ", ".join(f"{where} {count / n:.0f}" for where, count in counts.most_common())
            print(f"{name:<7} {path:<6} {total:6.0f} bytecodes per request: {parts}")


def profile(name: str, path: str, n: int) -> None:
    driver = Driver(make_app(name), PATHS[path])
    driver.serve(WARM_UP)
    profiler = cProfile.Profile()
    profiler.runcall(driver.serve, n)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=None, help="per round (20,000), or N of --instructions (2,000)")
    parser.add_argument("--only", nargs="*", default=list(APPS), choices=APPS)
    parser.add_argument("--instructions", action="store_true", help="callgrind instructions per request")
    parser.add_argument("--opcodes", action="store_true", help="bytecodes per request, by package")
    parser.add_argument("--profile", nargs=2, metavar=("APP", "PATH"), help="cProfile one app on one path")
    parser.add_argument("--serve", nargs=3, metavar=("APP", "PATH", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    names = [name for name in APPS if name in args.only]
    if args.serve:
        name, path, n = args.serve
        driver = Driver(make_app(name), PATHS[path])
        driver.serve(WARM_UP)
        driver.serve(int(n))
    elif args.instructions:
        instructions(names, args.requests or 2000)
    elif args.profile:
        profile(args.profile[0], args.profile[1], args.requests or 20000)
    elif args.opcodes:
        opcodes({name: make_app(name) for name in names}, args.requests or 2000)
    else:
        timed({name: make_app(name) for name in names}, args.rounds, args.requests or 20000)


if __name__ == "__main__":
    main()
