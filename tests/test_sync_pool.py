"""The sync views' thread pool: bounded, results back on the caller's loop
(many at a time through one wake-up), errors carried, usable as an Executor."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from tether.serving.sync_pool import SyncPool


def test_results_errors_and_the_bound() -> None:
    pool = SyncPool(3)
    running: set[str] = set()
    peak = 0
    lock = threading.Lock()

    def job(i: int) -> int:
        nonlocal peak
        with lock:
            running.add(threading.current_thread().name)
            peak = max(peak, len(running))
        time.sleep(0.01)
        with lock:
            running.discard(threading.current_thread().name)
        if i == 7:
            raise KeyError(i)
        return i * 2

    async def main() -> list[object]:
        loop = asyncio.get_running_loop()
        return await asyncio.gather(*(pool.run(loop, job, i) for i in range(20)), return_exceptions=True)

    results = asyncio.run(main())
    assert results[:7] == [i * 2 for i in range(7)] and isinstance(results[7], KeyError)
    assert results[8:] == [i * 2 for i in range(8, 20)]
    assert peak <= 3 and len(pool._threads) == 3
    assert all(thread.name.startswith("tether-sync_") for thread in pool._threads)
    pool.shutdown()
    assert not any(thread.is_alive() for thread in pool._threads)


def test_it_is_an_executor() -> None:
    pool = SyncPool(2)
    assert pool.submit(divmod, 7, 2).result(timeout=5) == (3, 1)
    assert pool.submit(int, "ff", base=16).result(timeout=5) == 255
    with pytest.raises(ZeroDivisionError):
        pool.submit(divmod, 1, 0).result(timeout=5)

    async def via_run_in_executor() -> int:
        return await asyncio.get_running_loop().run_in_executor(pool, sum, [1, 2, 3])

    assert asyncio.run(via_run_in_executor()) == 6
    pool.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(int)


def test_a_cancelled_wait_leaves_the_pool_working() -> None:
    pool = SyncPool(1)
    release = threading.Event()

    async def main() -> int:
        loop = asyncio.get_running_loop()
        blocked = pool.run(loop, release.wait, 5)
        queued = pool.run(loop, int, "5")
        blocked.cancel()
        release.set()
        return await queued

    assert asyncio.run(main()) == 5
    pool.shutdown()


def test_shutdown_can_cancel_what_has_not_started() -> None:
    pool = SyncPool(1)
    release, started = threading.Event(), threading.Event()

    def hold() -> bool:
        started.set()
        return release.wait(5)

    first = pool.submit(hold)
    assert started.wait(5)
    later = pool.submit(int, "1")
    pool.shutdown(wait=False, cancel_futures=True)
    release.set()
    assert first.result(timeout=5) is True
    assert later.cancelled()


def test_a_held_thread_runs_every_call_on_it_in_order() -> None:
    pool = SyncPool(4)
    calls: list[tuple[int, int]] = []

    def note(n: int) -> int:
        calls.append((n, threading.get_ident()))
        return n

    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        held = pool.hold()
        assert held.run(loop, pool.home) is not None
        futures = [held.run(loop, note, n) for n in range(20)]
        held.release()
        with pytest.raises(RuntimeError, match="released"):
            held.run(loop, note, 99)
        return await asyncio.gather(*futures)

    assert asyncio.run(main()) == list(range(20))
    assert [n for n, _ in calls] == list(range(20))
    assert len({thread for _, thread in calls}) == 1
    assert pool.home() is None  # not on a held thread here
    pool.shutdown()


def test_a_thread_not_kept_or_abandoned_goes_back_to_the_pool() -> None:
    """With one worker, the next job runs only if the hold gave the thread back."""
    pool = SyncPool(1)
    cleaned: list[object] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        dropped = pool.hold(keep=lambda result: result == "keep")
        assert await dropped.run(loop, lambda: "done") == "done"
        assert await asyncio.wait_for(pool.run(loop, lambda: 1), 10) == 1

        kept = pool.hold(keep=lambda result: result == "keep")
        assert await kept.run(loop, lambda: "keep") == "keep"
        kept.abandon(cleaned.append)
        assert await asyncio.wait_for(pool.run(loop, lambda: 2), 10) == 2

    asyncio.run(main())
    assert cleaned == ["keep"]
    pool.shutdown()


def test_shutdown_gives_back_threads_still_held() -> None:
    pool = SyncPool(2)

    async def main() -> None:
        held = pool.hold()
        await held.run(asyncio.get_running_loop(), lambda: None)

    asyncio.run(main())
    stopper = threading.Thread(target=pool.shutdown)
    stopper.start()
    stopper.join(10)
    assert not stopper.is_alive() and not any(thread.is_alive() for thread in pool._threads)


def test_a_hold_takes_a_worker_only_with_its_first_call() -> None:
    """With one worker, a hold no call was made through leaves it free; its
    first call then runs on a worker, and its later ones on that same one."""
    pool = SyncPool(1)

    async def main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        idle, held = pool.hold(), pool.hold()
        assert await asyncio.wait_for(pool.run(loop, lambda: 1), 10) == 1
        first = await asyncio.wait_for(held.run(loop, threading.get_ident), 10)
        second = await asyncio.wait_for(held.run(loop, threading.get_ident), 10)
        held.release()
        idle.release()
        assert await asyncio.wait_for(pool.run(loop, lambda: 2), 10) == 2
        return first, second

    first, second = asyncio.run(main())
    assert first == second
    pool.shutdown()


def test_idle_workers_are_woken_for_every_job_queued() -> None:
    """Two workers asleep, two jobs queued at once, the first waiting for the
    second: the worker woken for the first wakes the other for the second."""
    pool = SyncPool(2)
    both = threading.Barrier(2)
    assert sorted(f.result(timeout=10) for f in [pool.submit(both.wait, 10) for _ in range(2)]) == [0, 1]
    while len(pool._asleep) < 2:  # both asleep again
        time.sleep(0.001)
    second_ran = threading.Event()
    first = pool.submit(second_ran.wait, 10)
    second = pool.submit(second_ran.set)
    assert first.result(timeout=20) is True and second.result(timeout=10) is None
    assert len(pool._threads) == 2
    pool.shutdown()


def test_no_job_is_lost_with_many_submitters() -> None:
    pool = SyncPool(4)
    results: list[list[int]] = [[] for _ in range(4)]

    def submitter(n: int) -> None:
        futures = [pool.submit(pow, i, 2) for i in range(500)]
        results[n] = [f.result(timeout=30) for f in futures]

    threads = [threading.Thread(target=submitter, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == [[i * i for i in range(500)]] * 4
    pool.shutdown()
    assert not any(thread.is_alive() for thread in pool._threads)


def test_a_job_that_must_wait_for_a_thread_is_told_to_the_owner() -> None:
    full: list[int] = []
    pool = SyncPool(2, on_full=lambda: full.append(len(pool._threads)))
    release = threading.Event()
    first = [pool.submit(release.wait, 10), pool.submit(release.wait, 10)]
    assert full == []  # each job had a thread
    waiting = pool.submit(int, "7")
    assert full == [2]
    release.set()
    assert [f.result(timeout=10) for f in first] == [True, True] and waiting.result(timeout=10) == 7
    pool.submit(int, "8").result(timeout=10)  # threads free again: nothing said
    assert full == [2]
    pool.shutdown()


def test_open_streams_of_sync_views_that_fill_the_pool_are_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    """Under ASGI a sync view's streamed response holds its thread until it ends
    (one request, one thread); with every thread so held, the next sync
    request waits, and the log says why and what to change."""
    from tether import EventStream, ServerSentEvent, Tether

    app = Tether(__name__)
    app.config["SYNC_THREADS"] = 2

    @app.get("/events")
    def events() -> EventStream:
        return EventStream(app.broadcast.subscribe("news"), keepalive=600, first=[ServerSentEvent("open")])

    @app.get("/plain")
    def plain() -> str:
        return "ok"

    caplog.set_level(logging.WARNING, logger=app.logger.name)  # whatever earlier tests left on the root logger
    client = app.test_client(asgi=True)
    with client.lifespan():
        streams = [client.get("/events", buffered=False) for _ in range(2)]
        answers: list[str] = []
        waiting = threading.Thread(target=lambda: answers.append(client.get("/plain").get_data(as_text=True)))
        waiting.start()
        deadline = time.monotonic() + 10
        while "SYNC_THREADS is taken" not in caplog.text:
            assert time.monotonic() < deadline, "no warning came"
            time.sleep(0.01)
        assert "write such views as 'async def', or raise SYNC_THREADS" in caplog.text
        assert answers == []  # still waiting for a thread
        for stream in streams:
            stream.close()
        waiting.join(10)
        assert answers == ["ok"]
