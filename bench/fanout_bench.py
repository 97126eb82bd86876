"""Fan-out: one uvicorn worker holding SSE streams and WebSockets, one message
published to all of them; tether against Starlette, interleaved rounds.

Reports, as medians over rounds and as ratios to the floor: the worker's memory
per connection (RSS with the clients connected, less RSS idle), the time from
the publish request until the last client has the message, for the first
publish after the clients connected and for the ones after it, the worker's CPU
time (user + system, from ``/proc``) from the publish request until the last
client has it, and the time until the publish request is answered. The floor
is a bare ASGI app whose publish calls each connection's ``send`` in turn ("no
framework"): the server's own cost. The load average is printed with the
figures. With ``--split``, one more round per app runs its worker under
``tracemalloc`` and prints what the connections hold per connection, by part:
the server's, the contexts and request objects, the subscriptions, tether's
serving code. With
``--gc-log``, the worker also reports every collection of the oldest
generation that took over 5 ms, and the report counts those that fell inside
a publish. With ``--freeze``, the worker calls ``gc.freeze()`` once the clients
are connected, so the collector no longer scans what they hold.

The server is pinned to core 0 and the client processes (``fanout_clients.py``,
raw sockets, no compression asked for) to core 1; each round uses its own
loopback source address per client process, so closed connections of an
earlier round never run the client ports out.

    python bench/fanout_bench.py [--sse N] [--ws N] [--rounds 3] [--publishes 4] [--gc-log] [--freeze] [--split]

By default it opens as many connections as one process may hold descriptors
(``ulimit -Hn``, to which it raises its own limit), less a margin for the
worker's others, half SSE streams and half WebSockets.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import resource
import select
import signal
import socket
import statistics
import subprocess
import sys
import time
import typing as t
from pathlib import Path

HERE = Path(__file__).resolve().parent
APPS = {"tether": "fanout_app:app", "starlette": "fanout_app:starlette_app", "no framework": "fanout_app:raw_app"}
FLOOR = "no framework"
CLIENT_PROCESSES = 2
#: Descriptors the worker needs besides its connections (listening socket, logs, the loop's own).
MARGIN = 50


def cpu_ms(pid: int) -> float:
    """The user + system CPU time of process ``pid`` so far, in ms."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def post(port: int, message: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    connection.request("POST", "/publish", body=message)
    response = connection.getresponse()
    response.read()
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"publish answered {response.status}")


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    if not select.select([proc.stdout], [], [], timeout)[0]:
        raise TimeoutError("a client process did not answer in time")
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError("a client process exited")
    return line.strip()


def one_round(app: str, host: str, args: argparse.Namespace, env: dict[str, str], split: bool = False) -> dict[str, object]:
    port = free_port()
    if split:
        env = {**env, "FANOUT_SPLIT": "1"}
    server = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, "-m", "uvicorn", app, "--port", str(port), "--log-level", "warning",
         "--backlog", "4096"],
        cwd=HERE, env=env, stderr=subprocess.PIPE, text=True,
    )
    clients: list[subprocess.Popen[str]] = []
    try:
        for _ in range(300):
            try:
                post(port, "warm-up")
                break
            except OSError:
                time.sleep(0.1)
        idle = rss_kib(server.pid)
        if split:
            server.send_signal(signal.SIGWINCH)
        if args.gc_log:
            server.send_signal(signal.SIGUSR1)
        share = [(args.sse // CLIENT_PROCESSES, args.ws // CLIENT_PROCESSES) for _ in range(CLIENT_PROCESSES)]
        share[0] = (args.sse - share[0][0] * (CLIENT_PROCESSES - 1), args.ws - share[0][1] * (CLIENT_PROCESSES - 1))
        for i, (n_sse, n_ws) in enumerate(share):
            clients.append(subprocess.Popen(
                ["taskset", "-c", "1", sys.executable, str(HERE / "fanout_clients.py"), str(port), f"{host}.{i + 1}",
                 str(n_sse), str(n_ws)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            ))
        for client in clients:
            if read_line(client, 300) != "ready":
                raise RuntimeError("a client process failed to connect")
        time.sleep(1)
        connected = rss_kib(server.pid)
        if args.gc_log:
            server.send_signal(signal.SIGUSR1)
        if args.freeze:
            server.send_signal(signal.SIGUSR2)
            time.sleep(0.5)
        if split:
            server.send_signal(signal.SIGWINCH)
            time.sleep(2)
        latencies: list[float] = []
        cpu: list[float] = []
        windows: list[tuple[float, float]] = []
        posted: list[float] = []
        for i in range(args.publishes):
            message = f"m{i}"
            cpu_before = cpu_ms(server.pid)
            start = time.perf_counter()
            post(port, message)
            posted.append((time.perf_counter() - start) * 1000)
            arrivals = [read_line(client, 120).split() for client in clients]
            if any(a[:2] != ["got", message] for a in arrivals):
                raise RuntimeError(f"unexpected client report {arrivals}")
            cpu.append(cpu_ms(server.pid) - cpu_before)
            end = max(float(a[2]) for a in arrivals)
            latencies.append((end - start) * 1000)
            windows.append((start, end))
            time.sleep(0.5)
        for client in clients:
            assert client.stdin is not None
            client.stdin.write("quit\n")
            client.stdin.flush()
    finally:
        for client in clients:
            try:
                client.wait(30)
            except subprocess.TimeoutExpired:
                client.kill()
        server.terminate()
        _, errors = server.communicate(timeout=60)
    pauses = [tuple(map(float, line.split()[1:])) for line in errors.splitlines() if line.startswith("gc2 ")]
    splits = [dict((k, int(v)) for k, v in (part.split("=") for part in line.split()[1:]))
              for line in errors.splitlines() if line.startswith("split ")]
    if errors and not args.gc_log and not split:
        print(errors, file=sys.stderr)
    objects = [int(line.split()[1]) for line in errors.splitlines() if line.startswith("objects ")]
    in_publish = sum(1 for at, _ in pauses if any(start <= at <= end for start, end in windows))
    return {
        "per_connection": (connected - idle) / (args.sse + args.ws),
        "first": latencies[0],
        "later": statistics.median(latencies[1:]) if len(latencies) > 1 else latencies[0],
        "posted": statistics.median(posted),
        "cpu": statistics.median(cpu[1:]) if len(cpu) > 1 else cpu[0],
        "split": {name: (splits[1].get(name, 0) - splits[0].get(name, 0)) / 1024 / (args.sse + args.ws)
                  for name in splits[1]} if len(splits) == 2 else {},
        "objects": (objects[-1] - objects[0]) / (args.sse + args.ws) if len(objects) == 2 else 0.0,
        "pauses": len(pauses),
        "pauses_in_publish": in_publish,
        "longest_pause": max((ms for _, ms in pauses), default=0.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sse", type=int, default=None, help="SSE streams (default: half of what the descriptors allow)")
    parser.add_argument("--ws", type=int, default=None, help="WebSockets (default: the other half)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--publishes", type=int, default=4)
    parser.add_argument("--gc-log", action="store_true", help="report the oldest generation's collections over 5 ms")
    parser.add_argument("--freeze", action="store_true", help="the worker calls gc.freeze() once the clients are connected")
    parser.add_argument("--split", action="store_true", help="one more round per app under tracemalloc: memory per connection by part")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    allowed = hard - MARGIN
    if args.sse is None:
        args.sse = allowed // 2 if args.ws is None else allowed - args.ws
    if args.ws is None:
        args.ws = allowed - args.sse
    if args.sse + args.ws > allowed:
        sys.exit(f"{args.sse + args.ws} connections need more descriptors than this machine allows one process ({hard}).")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent / "src")])}
    if args.gc_log:
        env["FANOUT_GC_LOG"] = "1"
    results: dict[str, list[dict[str, object]]] = {name: [] for name in APPS}
    run = random.randrange(1, 255)  # an earlier run's closed connections may still hold its addresses' ports
    for r in range(args.rounds):
        for k, (name, app) in enumerate(APPS.items()):
            results[name].append(one_round(app, f"127.{run}.{r * len(APPS) + k + 1}", args, env))
    if args.rounds == 0:  # --rounds 0 --split: the split alone
        print_split(args, env, run)
        return
    load = open("/proc/loadavg").read().split()[:3]
    print(f"{args.sse} SSE + {args.ws} WebSocket clients on one uvicorn worker (core 0), "
          f"clients on core 1; medians of {args.rounds} interleaved rounds, ratios to the floor ({FLOOR}); "
          f"load average {' '.join(load)}")
    columns = [("per_connection", "KiB/conn", "{:.1f}"), ("first", "first ms", "{:.0f}"), ("later", "later ms", "{:.0f}"),
               ("cpu", "CPU ms", "{:.0f}"), ("posted", "answer ms", "{:.0f}")]
    print(f"{'app':<14}" + "".join(f"{title:>10}{'ratio':>8}" for _, title, _ in columns)
          + ("  GC-tracked objects per connection; gen-2 pauses (in a publish, longest ms)" if args.gc_log else ""))
    base = {key: statistics.median(float(r[key]) for r in results[FLOOR]) for key, _, _ in columns}  # type: ignore[arg-type]
    for name in APPS:
        line = f"{name:<14}"
        for key, _, fmt in columns:
            value = statistics.median(float(r[key]) for r in results[name])  # type: ignore[arg-type]
            line += f"{fmt.format(value):>10}{value / base[key]:>7.2f}x"
        if args.gc_log:
            objects = statistics.median(float(r["objects"]) for r in results[name])  # type: ignore[arg-type]
            line += f"  {objects:.0f} objects/conn; " + ", ".join(f"{r['pauses']} ({r['pauses_in_publish']}, {float(r['longest_pause']):.0f})" for r in results[name])  # type: ignore[arg-type]
        print(line)
    if args.split:
        print_split(args, env, run)


def print_split(args: argparse.Namespace, env: dict[str, str], run: int) -> None:
    """One round per app under tracemalloc: KiB per connection by part (traced
    Python allocations only; RSS also holds the allocator's slack and C buffers)."""
    print("traced KiB per connection, by part (one round under tracemalloc):")
    for k, (name, app) in enumerate(APPS.items()):
        split = t.cast(dict[str, float], one_round(app, f"127.{run}.{250 - k}", args, env, split=True)["split"])
        print(f"{name:<14}" + "  ".join(f"{part} {kib:.1f}" for part, kib in sorted(split.items()))
              + f"  (total {sum(split.values()):.1f})")


if __name__ == "__main__":
    main()
