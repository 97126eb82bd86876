"""The hop of a sync view to the thread pool and back: ``loop.run_in_executor``
on a ``ThreadPoolExecutor`` against ``SyncPool.run``, one job at a time and
32 at once, on uvloop when installed. Rounds are interleaved; medians.

    python bench/pool_bench.py [--rounds 5] [--jobs 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import typing as t
from concurrent.futures import ThreadPoolExecutor

from tether.serving.sync_pool import SyncPool

try:
    import uvloop
except ImportError:  # asyncio's own loop then
    uvloop = None


def work() -> int:
    """A little CPU, as a short view would use."""
    return sum(range(300))


async def timed(call: t.Callable[[], t.Awaitable[int]], jobs: int, concurrency: int) -> float:
    """µs per job."""
    async def client(n: int) -> None:
        for _ in range(n):
            await call()

    start = time.perf_counter()
    await asyncio.gather(*(client(jobs // concurrency) for _ in range(concurrency)))
    return (time.perf_counter() - start) / jobs * 1e6


async def run(rounds: int, jobs: int) -> dict[tuple[str, int], list[float]]:
    loop = asyncio.get_running_loop()
    executor, pool = ThreadPoolExecutor(40), SyncPool(40)
    calls = {
        "run_in_executor": lambda: loop.run_in_executor(executor, work),
        "SyncPool.run": lambda: pool.run(loop, work),
    }
    results: dict[tuple[str, int], list[float]] = {}
    for call in calls.values():
        await timed(call, 300, 1)
    for _ in range(rounds):
        for concurrency in (1, 32):
            for name, call in calls.items():
                results.setdefault((name, concurrency), []).append(await timed(call, jobs, concurrency))
    executor.shutdown()
    pool.shutdown()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=3200)
    args = parser.parse_args()
    runner = uvloop.run if uvloop is not None else asyncio.run
    results = runner(run(args.rounds, args.jobs))
    print(f"loop: {'uvloop' if uvloop else 'asyncio'}; µs per job, medians of {args.rounds} interleaved rounds\n")
    for concurrency in (1, 32):
        ours = statistics.median(results[("SyncPool.run", concurrency)])
        base = statistics.median(results[("run_in_executor", concurrency)])
        print(f"{concurrency:>2} at once: run_in_executor {base:7.1f}   SyncPool.run {ours:7.1f}   ratio {ours / base:.2f}x")


if __name__ == "__main__":
    main()
