"""Server-level benchmark: requests per second and p99 latency under wrk.

ASGI: tether (async views and sync views), Starlette, FastAPI, Litestar and Quart under one
uvicorn worker (uvloop and httptools when installed). WSGI: tether and Flask
under one gunicorn ``gthread`` worker. The server is pinned to core 0 and wrk
(one thread, 32 connections) to core 1; rounds are interleaved and the report
gives medians and each figure as a ratio to the anchor (Starlette, Flask):
requests per second, p99 latency, and the server process's CPU time per
request (from ``/proc``: what a loaded machine distorts least).
A bare ASGI or WSGI callable ("no framework") shows the server's own ceiling.

    python bench/server_bench.py [--rounds 3] [--seconds 5] [--connections 32] [--only asgi | --only "tether sync" starlette]

``--only`` keeps one kind of app, or the apps named (an anchor left out leaves its table out).

Needs ``wrk`` (Debian: ``apt-get install wrk``) and ``taskset``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ASGI = {
    "tether async": "server_apps:tether_async",
    "tether sync": "server_apps:tether_sync",
    "starlette": "server_apps:starlette_app",
    "fastapi": "server_apps:fastapi_app",
    "litestar": "server_apps:litestar_app",
    "quart": "server_apps:quart_app",
    "no framework": "server_apps:raw_asgi",
}
WSGI = {"tether": "server_apps:tether_wsgi", "flask": "server_apps:flask_wsgi", "no framework": "server_apps:raw_wsgi"}
ASGI_PATHS = {"/ str": "/str", "/user/<int:id>?q=x": "/user/42?q=x", "POST /echo (JSON)": "POST /echo"}
WSGI_PATHS = {"/": "/", "/user/<int:id>?q=x": "/user/42?q=x"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int, proc: subprocess.Popen[bytes], path: str) -> None:
    """Wait for the server's first answer to ``GET path``: a listening socket is not
    enough (gunicorn's arbiter listens before its worker has imported the app)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {proc.stdout.read().decode() if proc.stdout else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                conn.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
                if conn.recv(64).startswith(b"HTTP/1.1 "):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server did not answer")


def serve(kind: str, target: str, port: int) -> subprocess.Popen[bytes]:
    if kind == "asgi":
        command = [sys.executable, "-m", "uvicorn", target, "--port", str(port), "--log-level", "warning", "--no-access-log"]
    else:
        command = [
            sys.executable, "-m", "gunicorn", target, "-b", f"127.0.0.1:{port}", "-k", "gthread",
            "--threads", "8", "-w", "1", "--log-level", "warning",
        ]
    # The bench's folder first, then the caller's path (a worktree's src).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen(["taskset", "-c", "0", *command], cwd=HERE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


#: What wrk sends for a "POST <path>" case: the JSON body of the in-process benches.
POST_SCRIPT = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"name": "Carousell_HK_003", "node": "HK_061", "items": [1, 2, 3]}'
"""


def cpu_seconds(pid: int) -> float:
    """The user and system CPU time process ``pid`` and its children (a
    gunicorn worker) have used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    used = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return used + sum(cpu_seconds(int(child)) for child in children)


#: wrk's connections (``--connections``): 1 measures one request at a time.
CONNECTIONS = [32]


def load(port: int, path: str, seconds: int, pid: int) -> tuple[float, float, float]:
    """Requests per second, p99 latency in ms, and the server's CPU µs per
    request; ``path`` may be ``"POST /x"``."""
    method, _, target = path.rpartition(" ")
    url = f"http://127.0.0.1:{port}{target}"
    script = []
    if method == "POST":
        lua = Path(tempfile.gettempdir()) / "tether-bench-post.lua"
        lua.write_text(POST_SCRIPT)
        script = ["-s", str(lua)]
    wrk = ["taskset", "-c", "1", "wrk", "-t1", f"-c{CONNECTIONS[0]}", *script]
    subprocess.run([*wrk, "-d1s", url], capture_output=True, check=True)
    cpu = cpu_seconds(pid)
    out = subprocess.run([*wrk, f"-d{seconds}s", "--latency", url], capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(pid) - cpu
    if "Non-2xx" in out:
        raise RuntimeError(f"{url} answered errors:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    return rps, float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], cpu / requests * 1e6


def run(kind: str, apps: dict[str, str], paths: dict[str, str], rounds: int, seconds: int) -> dict[tuple[str, str], list[tuple[float, float, float]]]:
    results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for _ in range(rounds):
        for name, target in apps.items():
            port = free_port()
            proc = serve(kind, target, port)
            try:
                wait_for(port, proc, next(iter(paths.values())).rpartition(" ")[2])
                for case, path in paths.items():
                    results.setdefault((name, case), []).append(load(port, path, seconds, proc.pid))
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    return results


def report(title: str, anchor: str, apps: dict[str, str], paths: dict[str, str], results: dict[tuple[str, str], list[tuple[float, float, float]]]) -> None:
    print(f"\n{title} (medians; ratios to {anchor})")
    print(f"{'case':<22}{'app':<15}{'req/s':>10}{'ratio':>8}{'p99 ms':>9}{'ratio':>8}{'CPU µs/req':>12}{'ratio':>8}")
    for case in paths:
        base = [statistics.median(run[i] for run in results[(anchor, case)]) for i in range(3)]
        for name in apps:
            rps, p99, cpu = (statistics.median(run[i] for run in results[(name, case)]) for i in range(3))
            print(f"{case:<22}{name:<15}{rps:>10.0f}{rps / base[0]:>7.2f}x{p99:>9.2f}{p99 / base[1]:>7.2f}x"
                  f"{cpu:>12.1f}{cpu / base[2]:>7.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--only", nargs="*", default=[], help="'asgi', 'wsgi', or the apps to serve, by name")
    parser.add_argument("--connections", type=int, default=32, help="wrk's connections (1: one request at a time)")
    args = parser.parse_args()
    CONNECTIONS[0] = args.connections
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (Debian: apt-get install {'wrk' if tool == 'wrk' else 'util-linux'}).")

    def kept(kind: str, apps: dict[str, str]) -> dict[str, str]:
        names = set(args.only) - {"asgi", "wsgi"}
        if args.only and kind not in args.only and not names:
            return {}
        return {name: target for name, target in apps.items() if not names or name in names}

    asgi_apps, wsgi_apps = kept("asgi", ASGI), kept("wsgi", WSGI)
    asgi = run("asgi", asgi_apps, ASGI_PATHS, args.rounds, args.seconds)
    wsgi = run("wsgi", wsgi_apps, WSGI_PATHS, args.rounds, args.seconds)
    print(f"{args.rounds} interleaved rounds of {args.seconds} s; wrk -t1 -c{args.connections} on core 1, the server on core 0; "
          f"load average {os.getloadavg()[0]:.1f}")
    if "starlette" in asgi_apps:
        report("ASGI, one uvicorn worker", "starlette", asgi_apps, ASGI_PATHS, asgi)
    if "flask" in wsgi_apps:
        report("WSGI, one gunicorn gthread worker (8 threads)", "flask", wsgi_apps, WSGI_PATHS, wsgi)

if __name__ == "__main__":
    main()
