"""One round trip loop → thread → loop, as a sync view under ASGI makes it, by
each way there is to make it: tether's hop (a ``HeldThread`` for one call, as
``serve_http`` holds one per request), ``SyncPool.run``, ``loop.run_in_executor``
on a ``ThreadPoolExecutor``, anyio's ``to_thread.run_sync`` (what Starlette uses),
and three bare designs written here as the floor: a ``queue.SimpleQueue`` of
jobs completing each future with ``call_soon_threadsafe``; the same completing
futures in batches through an eventfd the loop watches; and idle workers kept
on a stack (last in, first out), each woken through its own lock. One job at a
time, 8 and 64 at once (40 threads each); rounds interleaved; medians; uvloop
when installed.

    python bench/pool_bench.py [--rounds 5] [--jobs 3200] [--only NAME ...] [--asyncio]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import queue
import statistics
import threading
import time
import typing as t
from concurrent.futures import ThreadPoolExecutor

import anyio.to_thread

from tether.serving.sync_pool import SyncPool

try:
    import uvloop
except ImportError:  # asyncio's own loop then
    uvloop = None

THREADS = 40
CONCURRENCY = (1, 8, 64)


def work() -> int:
    """A little CPU, as a short view would use."""
    return sum(range(300))


def _complete(future: asyncio.Future[t.Any], result: t.Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


def _outcome(fn: t.Callable[..., t.Any], args: tuple[t.Any, ...]) -> tuple[t.Any, BaseException | None]:
    try:
        return fn(*args), None
    except BaseException as e:
        return None, e


class QueueWorkers:
    """The plain design: one ``SimpleQueue`` of jobs, one ``call_soon_threadsafe``
    per result."""

    def __init__(self, loop: asyncio.AbstractEventLoop, threads: int) -> None:
        self.loop, self.jobs = loop, queue.SimpleQueue[t.Any]()
        self.threads = [threading.Thread(target=self.work, daemon=True) for _ in range(threads)]
        for thread in self.threads:
            thread.start()

    def run(self, fn: t.Callable[..., t.Any], *args: t.Any) -> asyncio.Future[t.Any]:
        future = self.loop.create_future()
        self.jobs.put((future, fn, args))
        return future

    def work(self) -> None:
        call_soon_threadsafe = self.loop.call_soon_threadsafe
        while (job := self.jobs.get()) is not None:
            call_soon_threadsafe(_complete, job[0], *_outcome(job[1], job[2]))

    def close(self) -> None:
        for _ in self.threads:
            self.jobs.put(None)


class EventfdWorkers(QueueWorkers):
    """Results in one deque; the first since the last drain writes the eventfd
    the loop reads, so many results cost one wake-up."""

    def __init__(self, loop: asyncio.AbstractEventLoop, threads: int) -> None:
        self.fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.results: collections.deque[t.Any] = collections.deque()
        self.lock, self.woken = threading.Lock(), False
        loop.add_reader(self.fd, self.drain)
        super().__init__(loop, threads)

    def work(self) -> None:
        results, lock, fd = self.results, self.lock, self.fd
        while (job := self.jobs.get()) is not None:
            outcome = _outcome(job[1], job[2])
            with lock:
                results.append((job[0], *outcome))
                if self.woken:
                    continue
                self.woken = True
            os.eventfd_write(fd, 1)

    def drain(self) -> None:
        try:
            os.eventfd_read(self.fd)
        except BlockingIOError:
            return
        with self.lock:
            self.woken = False
            batch = list(self.results)
            self.results.clear()
        for job in batch:
            _complete(*job)

    def close(self) -> None:
        super().close()
        self.loop.remove_reader(self.fd)
        os.close(self.fd)


class StackWorkers:
    """Idle workers on a stack, the last one idle woken first (its caches are
    warm), each through its own lock; one ``call_soon_threadsafe`` per result."""

    def __init__(self, loop: asyncio.AbstractEventLoop, threads: int) -> None:
        self.loop, self.max, self.idle = loop, threads, list[t.Any]()
        self.backlog: collections.deque[t.Any] = collections.deque()
        self.guard, self.started = threading.Lock(), 0

    def run(self, fn: t.Callable[..., t.Any], *args: t.Any) -> asyncio.Future[t.Any]:
        future = self.loop.create_future()
        job = (future, fn, args)
        with self.guard:
            if self.idle:
                slot = self.idle.pop()
                slot[1] = job
                slot[0].release()
                return future
            self.backlog.append(job)
            if self.started < self.max:
                self.started += 1
                threading.Thread(target=self.work, daemon=True).start()
        return future

    def work(self) -> None:
        wake = threading.Lock()
        wake.acquire()
        slot: list[t.Any] = [wake, None]
        call_soon_threadsafe, guard, backlog, idle = self.loop.call_soon_threadsafe, self.guard, self.backlog, self.idle
        while True:
            with guard:
                job = backlog.popleft() if backlog else None
                if job is None:
                    idle.append(slot)
            if job is None:
                wake.acquire()
                job, slot[1] = slot[1], None
                if job is None:
                    return
            call_soon_threadsafe(_complete, job[0], *_outcome(job[1], job[2]))

    def close(self) -> None:
        with self.guard:
            for slot in self.idle:
                slot[0].release()
            self.idle.clear()


class ChainedStackWorkers(StackWorkers):
    """Idle workers on a stack, as above, but one woken at a time, as a
    ``SimpleQueue`` does: a worker woken wakes the next only if jobs are left
    for it, and a busy one takes the next job without sleeping."""

    def __init__(self, loop: asyncio.AbstractEventLoop, threads: int) -> None:
        super().__init__(loop, threads)
        self.waking = False

    def run(self, fn: t.Callable[..., t.Any], *args: t.Any) -> asyncio.Future[t.Any]:
        future = self.loop.create_future()
        with self.guard:
            self.backlog.append((future, fn, args))
            if self.waking:
                return future
            if self.idle:
                self.waking = True
                wake = self.idle.pop()
            else:
                if self.started < self.max:
                    self.started += 1
                    threading.Thread(target=self.work, daemon=True).start()
                return future
        wake.release()
        return future

    def work(self) -> None:
        wake = threading.Lock()
        wake.acquire()
        call_soon_threadsafe, guard, backlog, idle = self.loop.call_soon_threadsafe, self.guard, self.backlog, self.idle
        woken = False
        while True:
            with guard:
                if woken:
                    self.waking = woken = False
                job = backlog.popleft() if backlog else None
                after = None
                if job is not None and backlog and idle and not self.waking:
                    self.waking, after = True, idle.pop()
                elif job is None:
                    idle.append(wake)
            if after is not None:
                after.release()
            if job is None:
                wake.acquire()
                if self.closed:
                    return
                woken = True
                continue
            call_soon_threadsafe(_complete, job[0], *_outcome(job[1], job[2]))

    closed = False

    def close(self) -> None:
        self.closed = True
        with self.guard:
            for wake in self.idle:
                wake.release()
            self.idle.clear()


def _no(result: object) -> bool:
    return False


async def timed(call: t.Callable[[], t.Awaitable[int]], jobs: int, concurrency: int) -> tuple[float, float]:
    """µs per job: wall time, and the CPU time of the process (every thread),
    which the other jobs of a shared machine move less."""
    async def client(n: int) -> None:
        for _ in range(n):
            await call()

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(client(jobs // concurrency) for _ in range(concurrency)))
    return (time.perf_counter() - start) / jobs * 1e6, (time.process_time() - cpu) / jobs * 1e6


async def run(rounds: int, jobs: int, only: list[str]) -> dict[tuple[str, int], list[tuple[float, float]]]:
    loop = asyncio.get_running_loop()
    executor, pool = ThreadPoolExecutor(THREADS), SyncPool(THREADS)
    plain, batched, stack = QueueWorkers(loop, THREADS), EventfdWorkers(loop, THREADS), StackWorkers(loop, THREADS)
    chained = ChainedStackWorkers(loop, THREADS)
    anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
    calls: dict[str, t.Callable[[], t.Awaitable[int]]] = {
        "tether hop": lambda: pool.hold(_no).run(loop, work),
        "SyncPool.run": lambda: pool.run(loop, work),
        "run_in_executor": lambda: loop.run_in_executor(executor, work),
        "anyio to_thread": lambda: anyio.to_thread.run_sync(work),
        "SimpleQueue worker": lambda: plain.run(work),
        "eventfd batches": lambda: batched.run(work),
        "LIFO stack": lambda: stack.run(work),
        "LIFO, one woken": lambda: chained.run(work),
    }
    calls = {name: call for name, call in calls.items() if not only or name in only}
    results: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for call in calls.values():
        await timed(call, 640, 64)
    for _ in range(rounds):
        for concurrency in CONCURRENCY:
            for name, call in calls.items():
                results.setdefault((name, concurrency), []).append(await timed(call, jobs, concurrency))
    executor.shutdown()
    pool.shutdown()
    for workers in (plain, batched, stack, chained):
        workers.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=3200)
    parser.add_argument("--only", nargs="*", default=[], help="the designs to run, by name")
    parser.add_argument("--asyncio", action="store_true", help="asyncio's own loop even if uvloop is installed")
    args = parser.parse_args()
    use_uvloop = uvloop is not None and not args.asyncio
    runner = uvloop.run if use_uvloop else asyncio.run
    results = runner(run(args.rounds, args.jobs, args.only))
    print(f"loop: {'uvloop' if use_uvloop else 'asyncio'}; µs per job, medians of {args.rounds} interleaved rounds; "
          f"load average {os.getloadavg()[0]:.1f}\n")
    names = list(dict.fromkeys(name for name, _ in results))
    for i, what in enumerate(("wall time", "CPU time, all threads")):
        print(f"{what:<20}" + "".join(f"{f'{c} at once':>12}" for c in CONCURRENCY))
        for name in names:
            print(f"{name:<20}" + "".join(f"{statistics.median(r[i] for r in results[(name, c)]):>12.1f}" for c in CONCURRENCY))
        print()


if __name__ == "__main__":
    main()
