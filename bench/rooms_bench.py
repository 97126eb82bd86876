"""Rooms: many WebSockets in many rooms on several uvicorn workers, fed through
Redis at a sustained, stepped-up publish rate; tether against python-socketio
(``AsyncRedisManager``) and Django Channels (``channels_redis``) in one run.

Each framework gets the same workers (``--workers``, uvicorn, uvloop and
httptools), the same clients and the same publishers, and a Redis database of
its own on 127.0.0.1:6379 (tether 13, python-socketio 12, Channels 11; only
this bench's keys are deleted, before and after). The server is pinned to
``--server-cpus`` and everything else this bench starts (the client processes,
``rooms_clients.py``, and the publishers, ``rooms_publishers.py``) to
``--client-cpus``; Redis runs where the system puts it.

Publishers publish into random rooms at a target rate, evenly paced, for
``--step-seconds``, then the clients report; the rate goes up by ``--factor``
after each step until a step's p99 delivery latency reaches ``--p99-ms``
(250). A message carries its publish time and its room's sequence number: a
message missing at a connection of its room ``--drain`` seconds after the step
ends is lost there, and counts as infinitely late in the p99 (a rate gets
``--tries`` attempts: one stall of a busy machine does not end it). For each
framework the bench reports the highest step under the p99 bound (messages
published per second, and deliveries per second: each message goes to every
connection of its room), the workers' memory per connection (their RSS with
the clients connected, less their RSS idle, divided by the connections), and
the messages lost. With ``--rounds``, the frameworks take turns, and the
figures are medians.

    python bench/rooms_bench.py [--quick] [--connections 20000] [--rooms 200] [--workers 4] [--start-rate 5] [--rounds 1]

``--profile DIR`` records one worker of each framework with py-spy during
each step (collapsed stacks of the thread holding the GIL,
``DIR/FRAMEWORK-rROUND-stepN.txt``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import resource
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

import redis

HERE = Path(__file__).resolve().parent
#: Framework, its display name and its Redis database.
FRAMEWORKS = {"tether": ("tether", 13), "socketio": ("python-socketio", 12), "channels": ("Django Channels", 11)}
#: This bench's keys in each framework's database: tether's broadcast streams
#: and control streams, channels_redis's core layer (the pub/sub layer and
#: python-socketio keep nothing).
KEYS = {"tether": "tether:rooms_bench:*", "socketio": None, "channels": "asgi*"}
CLOCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def cpu_seconds(pid: int) -> float:
    """User and system time of ``pid`` so far (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK


def workers_of(server: int) -> list[int]:
    """uvicorn's worker processes: its children started by multiprocessing's
    ``spawn_main`` (not its resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int((entry / "stat").read_text().rpartition(")")[2].split()[1]) == server and \
                    b"spawn_main" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return sorted(found)


def sockets_of(pid: int) -> int:
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            count += os.readlink(fd).startswith("socket:")
    return count


def redis_server_pid() -> int | None:
    """Redis's pid, to tell how busy it was (read from /proc, nothing else)."""
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "redis-server":
                return int(entry.name)
    return None


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    if not select.select([proc.stdout], [], [], timeout)[0]:
        raise TimeoutError(f"process {proc.pid} ({proc.args[-6:]}) did not answer within {timeout:.0f} s")
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"process {proc.pid} ({proc.args[-6:]}) exited ({proc.poll()})")
    return line.strip()


def tell(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def delete_keys(framework: str) -> None:
    """Delete this bench's keys in the framework's database (never a flush)."""
    pattern = KEYS[framework]
    if pattern is None:
        return
    client = redis.Redis(host="127.0.0.1", port=6379, db=FRAMEWORKS[framework][1])
    try:
        keys = list(client.scan_iter(match=pattern, count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i:i + 500])
    finally:
        client.close()


def percentile(late: dict[int, int], lost: int, share: float) -> float:
    """The ``share`` percentile of the delivery latencies (ms), a lost delivery
    counting as infinitely late."""
    total = sum(late.values()) + lost
    rank = math.ceil(share * total)
    seen = 0
    for ms in sorted(late):
        seen += late[ms]
        if seen >= rank:
            return float(ms)
    return math.inf


class Run:
    """One framework's server, clients and publishers for one round."""

    def __init__(self, framework: str, args: argparse.Namespace, hosts: str, round_number: int) -> None:
        self.framework = framework
        self.args = args
        self.hosts = hosts
        self.round = round_number
        self.port = free_port()
        path = [str(HERE), str(HERE.parent / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(path),
                    "ROOMS_URL": f"redis://127.0.0.1:6379/{FRAMEWORKS[framework][1]}",
                    "ROOMS_CHANNELS_LAYER": args.channels_layer}
        self.server: subprocess.Popen[str] | None = None
        self.clients: list[subprocess.Popen[str]] = []
        self.publishers: list[subprocess.Popen[str]] = []
        self.workers: list[int] = []
        self.redis_pid = redis_server_pid()
        #: The server's stderr (a teardown that cancels thousands of tasks says so at length).
        self.server_log = tempfile.NamedTemporaryFile("w", prefix=f"rooms-{framework}-", suffix=".log", delete=False)

    def spawn(self, cpus: str, *command: str, stderr: t.Any = None, new_session: bool = False) -> subprocess.Popen[str]:
        pin = ["taskset", "-c", cpus] if cpus else []
        return subprocess.Popen([*pin, sys.executable, *command], cwd=HERE, env=self.env, text=True, stderr=stderr,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=new_session)

    def start_server(self) -> None:
        self.server = self.spawn(
            self.args.server_cpus, "-m", "uvicorn", f"rooms_apps:{self.framework}", "--port", str(self.port),
            "--workers", str(self.args.workers), "--log-level", "warning", "--backlog", "4096",
            "--loop", "uvloop", "--http", "httptools", "--timeout-graceful-shutdown", "5",
            "--timeout-worker-healthcheck", "120", stderr=self.server_log, new_session=True,
        )
        deadline = time.monotonic() + 60
        while len(self.workers) < self.args.workers or not self.accepts():
            if time.monotonic() > deadline or self.server.poll() is not None:
                raise RuntimeError(f"{self.framework}: the server did not start ({self.server.poll()})")
            time.sleep(0.2)
            self.workers = workers_of(self.server.pid)
        time.sleep(3)  # every worker imported its app and listens

    def accepts(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def workers_rss(self) -> int:
        return sum(rss_kib(pid) for pid in self.workers)

    def open_clients(self, count: int, tag: int) -> list[subprocess.Popen[str]]:
        """``count`` connections, spread over ``--clients`` processes, each from
        a loopback address of its own; returns once all are connected."""
        n = self.args.clients if count > 100 else 1
        shares = [count // n + (i < count % n) for i in range(n)]
        procs, first = [], 0
        for i, share in enumerate(shares):
            procs.append(self.spawn(self.args.client_cpus, str(HERE / "rooms_clients.py"), self.framework,
                                    str(self.port), f"{self.hosts}.{tag * 16 + i + 1}", str(first), str(share),
                                    str(self.args.rooms)))
            first += share
        for proc in procs:
            if read_line(proc, 120 + count / 50) != "ready":
                raise RuntimeError(f"{self.framework}: a client process failed to connect")
        return procs

    def warm_up(self) -> None:
        """Connect until every worker has served a connection (so each has
        imported what a connection needs before its idle RSS is taken)."""
        before = [sockets_of(pid) for pid in self.workers]
        warm: list[subprocess.Popen[str]] = []
        try:
            for tag in range(8):
                warm += self.open_clients(8 * self.args.workers, tag=tag + 2)
                if all(sockets_of(pid) > n for pid, n in zip(self.workers, before, strict=True)):
                    return
            print(f"  {self.framework}: a worker took no warm-up connection", flush=True)
        finally:
            self.stop(warm)

    def start_publishers(self) -> None:
        for i in range(self.args.publishers):
            self.publishers.append(self.spawn(
                self.args.client_cpus, str(HERE / "rooms_publishers.py"), self.framework, str(i),
                str(self.args.publishers), str(self.args.rooms), str(self.args.pad),
            ))
        for proc in self.publishers:
            if read_line(proc, 60) != "ready":
                raise RuntimeError(f"{self.framework}: a publisher failed to start")

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of the workers, clients, publishers and Redis."""
        groups = {"workers": self.workers, "clients": [p.pid for p in self.clients],
                  "publishers": [p.pid for p in self.publishers], "redis": [self.redis_pid] if self.redis_pid else []}
        return {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in groups.items()}

    def profile(self, number: int, seconds: float) -> subprocess.Popen[bytes] | None:
        """py-spy on the busiest worker for the step (``--profile``)."""
        if not self.args.profile:
            return None
        worker = max(self.workers, key=sockets_of)
        output = Path(self.args.profile) / f"{self.framework}-r{self.round}-step{number}.txt"
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(worker), "--duration",
             str(max(int(seconds), 1)), "--rate", "200", "--nonblocking", "--gil", "--format", "raw", "--output", str(output)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def step(self, number: int, rate: float, seconds: float) -> dict[str, t.Any]:
        """Publish at ``rate`` for ``seconds``, then gather what the clients got."""
        profiler = self.profile(number, seconds) if number else None
        before, started = self.cpu(), time.monotonic()
        for proc in self.publishers:
            tell(proc, f"step {number} {rate / len(self.publishers)} {seconds}")
        sent = [json.loads(read_line(proc, seconds * 4 + 60)) for proc in self.publishers]
        elapsed = time.monotonic() - started
        if self.server is not None and workers_of(self.server.pid) != self.workers:
            raise RuntimeError(f"{self.framework}: a worker died or was restarted during step {number}")
        cpu = {name: (value - before[name]) / elapsed for name, value in self.cpu().items()}
        finals = {room: seq for result in sent for room, seq in result["finals"].items()}
        encoded = json.dumps(finals, separators=(",", ":"))
        for proc in self.clients:
            tell(proc, f"report {number} {encoded} {self.args.drain}")
        reports = [json.loads(read_line(proc, self.args.drain + 60)) for proc in self.clients]
        if profiler is not None:
            try:
                profiler.wait(30)
            except subprocess.TimeoutExpired:
                profiler.kill()
        late: dict[int, int] = {}
        for report in reports:
            for ms, count in report["late"].items():
                late[int(ms)] = late.get(int(ms), 0) + count
        members = [self.args.connections // self.args.rooms + (room < self.args.connections % self.args.rooms)
                   for room in range(self.args.rooms)]
        published = sum(result["sent"] for result in sent)
        took = max(result["seconds"] for result in sent)
        lost = sum(report["lost"] for report in reports)
        received = sum(report["received"] for report in reports)
        p99 = percentile(late, lost, 0.99)
        return {
            "rate": rate, "published_per_s": published / took, "deliveries_per_s": received / took,
            "expected": sum(seq * members[int(room)] for room, seq in finals.items()), "received": received,
            "lost": lost, "disorder": sum(report["disorder"] for report in reports),
            "p50_ms": percentile(late, lost, 0.5), "p99_ms": p99, "max_ms": max(late, default=math.inf),
            "cpu": cpu, "worker_us_per_delivery": cpu["workers"] / max(received / took, 1) * 1e6,
            "publishers_behind": published / took < 0.95 * rate,
            "ok": p99 < self.args.p99_ms and published / took >= 0.95 * rate,
        }

    def ladder(self) -> list[dict[str, t.Any]]:
        """Steps from ``--start-rate`` up by ``--factor`` until a rate misses the
        p99 bound ``--tries`` times in a row (one stall on this shared machine
        does not end the ladder), or the publishers fall behind, or ``--max-rate``."""
        warm = self.step(0, self.args.start_rate, self.args.warmup_seconds)
        if warm["lost"]:
            print(f"  {self.framework}: {warm['lost']} lost in the warm-up step", flush=True)
        steps: list[dict[str, t.Any]] = []
        rate, number = self.args.start_rate, 1
        while True:
            for _ in range(self.args.tries):
                time.sleep(1)
                result = self.step(number, rate, self.args.step_seconds)
                steps.append(result)
                number += 1
                print(step_line(FRAMEWORKS[self.framework][0], result), flush=True)
                if result["ok"] or result["publishers_behind"]:
                    break
            if not result["ok"] or rate * self.args.factor > self.args.max_rate:
                return steps
            rate *= self.args.factor

    def measure(self) -> dict[str, t.Any]:
        delete_keys(self.framework)
        self.start_server()
        self.warm_up()
        time.sleep(2)
        idle = self.workers_rss()
        self.clients = self.open_clients(self.args.connections, tag=1)
        time.sleep(3)
        connected = self.workers_rss()
        spread = [sockets_of(pid) for pid in self.workers]
        print(f"  {FRAMEWORKS[self.framework][0]}: workers {idle / 1024:.0f} MiB idle, {connected / 1024:.0f} MiB with "
              f"{self.args.connections} connections; sockets per worker {spread}", flush=True)
        self.start_publishers()
        steps = self.ladder()
        passed = [s for s in steps if s["ok"]]
        best = max(passed, key=lambda s: s["published_per_s"]) if passed else None
        return {"per_connection_kib": (connected - idle) / self.args.connections, "idle_kib": idle,
                "connected_kib": connected, "spread": spread, "steps": steps, "best": best,
                "lost_passed": sum(s["lost"] for s in passed), "lost_all": sum(s["lost"] for s in steps)}

    @staticmethod
    def stop(procs: list[subprocess.Popen[str]]) -> None:
        for proc in procs:
            with contextlib.suppress(OSError, ValueError):
                tell(proc, "quit")
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def close(self) -> None:
        logged = os.path.getsize(self.server_log.name)  # what the server said before its teardown
        self.stop(self.publishers)
        self.stop(self.clients)
        if self.server is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.server.pid, signal.SIGTERM)
            try:
                self.server.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.server.pid, signal.SIGKILL)
                self.server.wait()
            with contextlib.suppress(ProcessLookupError):  # a worker outliving its server
                os.killpg(self.server.pid, signal.SIGKILL)
        self.server_log.close()
        with open(self.server_log.name, errors="replace") as f:
            errors = [line for line in f.read(logged).splitlines() if line.startswith(("ERROR", "WARNING", "CRITICAL"))]
        if errors:
            print(f"  {self.framework}: the server logged {len(errors)} errors, the first: {errors[0]} "
                  f"(all in {self.server_log.name})", flush=True)
        else:
            os.unlink(self.server_log.name)
        delete_keys(self.framework)


def step_line(name: str, s: dict[str, t.Any]) -> str:
    cpu = " ".join(f"{k} {v:.2f}" for k, v in s["cpu"].items())
    flags = ("" if s["ok"] else "  (over)") + ("  publishers behind" if s["publishers_behind"] else "")
    return (f"  {name:<16} target {s['rate']:>6.0f}/s  published {s['published_per_s']:>6.0f}/s  delivered "
            f"{s['deliveries_per_s']:>7.0f}/s  p50 {s['p50_ms']:>6.0f} ms  p99 {s['p99_ms']:>6.0f} ms  "
            f"lost {s['lost']:>6}  workers {s['worker_us_per_delivery']:>4.0f} us/delivery  cpu: {cpu}{flags}")


def summary(args: argparse.Namespace, results: dict[str, list[dict[str, t.Any]]]) -> None:
    """Medians over the rounds, and tether's ratios to each anchor."""
    rows: dict[str, dict[str, float]] = {}
    for framework, all_runs in results.items():
        runs = [r for r in all_runs if "error" not in r]
        if not runs:
            continue
        bests = [r["best"] for r in runs]
        rows[framework] = {
            "published": statistics.median(b["published_per_s"] if b else 0.0 for b in bests),
            "delivered": statistics.median(b["deliveries_per_s"] if b else 0.0 for b in bests),
            "p99": statistics.median(b["p99_ms"] if b else math.inf for b in bests),
            "kib": statistics.median(r["per_connection_kib"] for r in runs),
            "us": statistics.median(b["worker_us_per_delivery"] if b else math.inf for b in bests),
            "lost_passed": sum(r["lost_passed"] for r in runs), "lost_all": sum(r["lost_all"] for r in runs),
        }
    print(f"\n{args.connections} connections in {args.rooms} rooms, {args.workers} uvicorn workers "
          f"(cpus {args.server_cpus or 'any'}), {args.clients} client and {args.publishers} publisher processes "
          f"(cpus {args.client_cpus or 'any'}); steps of {args.step_seconds:g} s, x{args.factor:g}; "
          f"medians of {args.rounds} round(s); Channels on the {args.channels_layer} layer")
    print(f"{'framework':<18}{'msgs/s':>9}{'deliveries/s':>14}{'p99 ms':>8}{'KiB/conn':>10}{'us/delivery':>13}"
          f"{'lost (passed steps / all)':>28}")
    for framework, row in rows.items():
        print(f"{FRAMEWORKS[framework][0]:<18}{row['published']:>9.0f}{row['delivered']:>14.0f}{row['p99']:>8.0f}"
              f"{row['kib']:>10.1f}{row['us']:>13.0f}{row['lost_passed']:>15} / {row['lost_all']}")
    for framework, all_runs in results.items():
        failed = sum("error" in r for r in all_runs)
        if failed:
            print(f"{FRAMEWORKS[framework][0]}: {failed} of {len(all_runs)} round(s) failed (above)")
    if "tether" in rows:
        for framework, row in rows.items():
            if framework != "tether" and row["published"] and row["kib"]:
                print(f"tether / {FRAMEWORKS[framework][0]}: {rows['tether']['published'] / row['published']:.2f}x "
                      f"the sustained rate, {rows['tether']['kib'] / row['kib']:.2f}x the memory per connection")


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 connections in 20 rooms, 5 s steps")
    parser.add_argument("--connections", type=int)
    parser.add_argument("--rooms", type=int)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--publishers", type=int, default=2, help="publisher processes")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--step-seconds", type=float)
    parser.add_argument("--warmup-seconds", type=float, default=2.0)
    parser.add_argument("--start-rate", type=float, default=5.0, help="messages published per second, first step")
    parser.add_argument("--factor", type=float, default=1.41, help="each step's rate over the last one's")
    parser.add_argument("--max-rate", type=float, default=20_000.0)
    parser.add_argument("--p99-ms", type=float, default=250.0)
    parser.add_argument("--tries", type=int, default=2, help="attempts at a rate before the ladder ends")
    parser.add_argument("--drain", type=float, default=5.0, help="seconds a message may take after its step ends")
    parser.add_argument("--pad", type=int, default=32, help="characters of padding in each message")
    parser.add_argument("--only", action="append", choices=list(FRAMEWORKS))
    parser.add_argument("--channels-layer", choices=["pubsub", "core"], default="pubsub")
    parser.add_argument("--server-cpus", default="0" if (os.cpu_count() or 1) > 1 else "")
    parser.add_argument("--client-cpus", default="1" if (os.cpu_count() or 1) > 1 else "")
    parser.add_argument("--profile", metavar="DIR", help="py-spy one worker during each step, into DIR")
    parser.add_argument("--json", metavar="FILE", help="write every figure to FILE")
    args = parser.parse_args()
    args.connections = args.connections or (2000 if args.quick else 20_000)
    args.rooms = args.rooms or (20 if args.quick else 200)
    args.step_seconds = args.step_seconds or (5.0 if args.quick else 10.0)
    return args


def main() -> None:
    args = options()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the children inherit it
    if math.ceil(args.connections / args.clients) > hard - 64 or args.connections / args.workers > hard - 256:
        sys.exit(f"{args.connections} connections need more descriptors than one process may hold here ({hard}): "
                 "use more --clients or --workers, or fewer --connections.")
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # tear down in the finally blocks
    print(f"{os.cpu_count()} cpus, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB; "
          f"descriptors per process {hard}; Python {sys.version.split()[0]}", flush=True)
    results: dict[str, list[dict[str, t.Any]]] = {name: [] for name in args.only or FRAMEWORKS}
    run_id = random.randrange(1, 255)  # an earlier run's closed connections may still hold its addresses' ports
    for r in range(args.rounds):
        for k, framework in enumerate(results):
            run = Run(framework, args, f"127.{run_id}.{r * len(results) + k + 1}", r + 1)
            try:
                results[framework].append(run.measure())
            except (RuntimeError, TimeoutError) as e:  # the other frameworks still run
                print(f"  {FRAMEWORKS[framework][0]}: round {r + 1} failed: {e}", flush=True)
                results[framework].append({"error": str(e)})
            finally:
                run.close()
            time.sleep(2)
    summary(args, results)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=1, default=str))


if __name__ == "__main__":
    main()
