"""The bounded thread pool where sync views run under ASGI, with a cheaper
hand-off back to the event loop than ``loop.run_in_executor``.

``run_in_executor`` makes a ``concurrent.futures.Future``, chains an asyncio
future to it through callbacks, and wakes the loop once per finished job. Here
a job carries the loop's own future; a worker hands the outcome to the loop's
inbox, and only the first result since the loop last drained it costs a
``call_soon_threadsafe``, so under load many results cost one wake-up of the
loop. A worker done with a job takes the next without sleeping; idle ones sleep
on a stack, and the last to fall asleep is woken first (its caches are warm),
one at a time: a worker woken wakes the next only if a job is left for it. A
held thread (below) is taken by a worker only with its first call, which
travels with it: one queue and one wake-up of a thread per request.
``bench/pool_bench.py`` compares it with ``run_in_executor``, anyio's
``to_thread`` and bare designs; the figures are in docs/performance.md.

It is also a ``concurrent.futures.Executor`` (``submit``), for the code that
wants one.

Flask's rule is one request, one thread: SQLite connections, many database
drivers, ``threading.local`` caches and thread-bound sessions rely on the hooks,
the view, the body and the teardown of a request all running on one thread. A
:class:`HeldThread` keeps that rule under ASGI: one worker of the pool, held
for one request (or one sync iterable) until released, runs every call made
through it, in order. So a later call never runs beside an earlier one, and a
call made while another is running (a teardown while a chunk is produced)
waits for it.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import concurrent.futures
import functools
import queue
import threading
import typing as t
import weakref

__all__ = ["HeldThread", "SyncPool"]

T = t.TypeVar("T")

_STOP = object()

#: The :class:`HeldThread` a worker serves, on that worker's thread.
_serving = threading.local()


class SyncPool(concurrent.futures.Executor):
    """At most ``max_workers`` threads, started as jobs need them.
    ``on_full()``, if given, is called (outside the pool's lock) each time a
    job is queued with every thread busy, so that it waits: the pool's owner
    says why, and what to change."""

    def __init__(
        self, max_workers: int, thread_name_prefix: str = "tether-sync", on_full: t.Callable[[], None] | None = None
    ) -> None:
        if max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        self._max_workers = max_workers
        self._prefix = thread_name_prefix
        self._on_full = on_full
        #: Everything below, but the results, is guarded by ``_lock``.
        self._lock = threading.Lock()
        self._jobs: collections.deque[t.Any] = collections.deque()
        #: Workers done with their last job and not yet given the next one.
        self._idle = 0
        #: Workers running a job (a held thread's included): a job queued
        #: while these and the jobs ahead of it fill the pool waits.
        self._busy = 0
        #: The wake-up locks of the workers asleep, the last one to fall
        #: asleep on top: it is woken first, its caches still warm.
        self._asleep: list[threading.Lock] = []
        #: Whether a worker is being woken: the next one is woken only once it
        #: runs, and only if jobs are left for it (no herd of threads).
        self._waking = False
        self._threads: list[threading.Thread] = []
        self._shutdown = False
        #: Results for each loop, waiting for its drain; whether one is scheduled.
        self._results: dict[asyncio.AbstractEventLoop, collections.deque[t.Any]] = {}
        self._wake_pending: set[asyncio.AbstractEventLoop] = set()
        #: The held threads a worker has taken and not yet given back,
        #: released at shutdown.
        self._holds: set[HeldThread] = set()
        atexit.register(_shutdown_at_exit, weakref.ref(self))

    def run(self, loop: asyncio.AbstractEventLoop, fn: t.Callable[..., T], *args: t.Any) -> asyncio.Future[T]:
        """``fn(*args)`` in the pool; the returned future is ``loop``'s own."""
        future = loop.create_future()
        self._put((loop, future, fn, args))
        return future

    def submit(self, fn: t.Callable[..., T], /, *args: t.Any, **kwargs: t.Any) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        if kwargs:
            self._put((None, future, functools.partial(fn, *args, **kwargs), ()))
        else:
            self._put((None, future, fn, args))
        return future

    def hold(self, keep: t.Callable[[t.Any], bool] | None = None) -> HeldThread:
        """A worker of the pool held for the calls made through the result, until
        it is released; see :class:`HeldThread` for ``keep``."""
        return HeldThread(self, keep)

    def home(self) -> HeldThread | None:
        """The held thread the caller runs on, if it runs on one."""
        return getattr(_serving, "held", None)

    def _put(self, job: tuple[t.Any, ...], held: HeldThread | None = None) -> None:
        """Queue ``job``; with ``held``, it is that held thread's first call,
        unless another thread's call came first."""
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new work after shutdown")
            if held is not None:
                if held._taken:
                    held._calls.put(job)
                    return
                held._taken = True
                self._holds.add(held)
                job = (None, held, None, job)
            self._jobs.append(job)
            full = self._busy + len(self._jobs) > self._max_workers
            if self._idle:
                self._idle -= 1
            elif len(self._threads) < self._max_workers:
                thread = threading.Thread(
                    target=self._work, name=f"{self._prefix}_{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            wake = None
            if not self._waking and self._asleep:
                self._waking = True
                wake = self._asleep.pop()
        if wake is not None:
            wake.release()
        if full and self._on_full is not None:
            self._on_full()

    def _next(self, wake: threading.Lock, woken: bool, done: bool, held: t.Any = None) -> t.Any:
        """The next job for the worker whose wake-up lock is ``wake`` (``done``
        with one, perhaps a ``held`` thread given back, or just ``woken``), or
        None if it is to sleep (it is then on the stack)."""
        with self._lock:
            if done:
                self._idle += 1
                self._busy -= 1
                self._holds.discard(held)
            if woken:
                self._waking = False
            if not self._jobs:
                self._asleep.append(wake)
                return None
            job = self._jobs.popleft()
            self._busy += 1
            if not (self._jobs and self._asleep and not self._waking):
                return job
            self._waking = True
            after = self._asleep.pop()
        after.release()
        return job

    def _work(self) -> None:
        wake = threading.Lock()
        wake.acquire()
        job = self._next(wake, False, False)
        while True:
            if job is None:
                wake.acquire()
                job = self._next(wake, True, False)
                continue
            if job is _STOP:
                return
            held = job[1] if job[2] is None else None  # a held thread, with its first call
            done, outcome = held._serve(job[3]) if held is not None else (job, self._call(job))
            job = self._next(wake, False, True, held)
            # Handed over last: the loop, woken by it, would otherwise wait for
            # the GIL while this thread does its bookkeeping.
            if outcome is not None:
                self._complete(done, outcome)
            del done, outcome, held

    @staticmethod
    def _call(job: tuple[t.Any, ...]) -> tuple[t.Any, BaseException | None] | None:
        """Run one job; its outcome, or None if its future was cancelled first."""
        loop, future, fn, args = job
        if loop is None and not future.set_running_or_notify_cancel():
            return None
        try:
            return fn(*args), None
        except BaseException as e:
            return None, e

    def _complete(self, job: tuple[t.Any, ...], outcome: tuple[t.Any, BaseException | None]) -> None:
        """Hand a job's outcome to its future."""
        loop, future = job[0], job[1]
        if loop is not None:
            self._deliver(loop, future, outcome)
        elif outcome[1] is None:
            future.set_result(outcome[0])
        else:
            future.set_exception(outcome[1])

    def _deliver(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[t.Any], outcome: tuple[t.Any, t.Any]) -> None:
        with self._lock:
            pending = self._results.setdefault(loop, collections.deque())
            pending.append((future, outcome))
            if loop in self._wake_pending:
                return
            self._wake_pending.add(loop)
        try:
            loop.call_soon_threadsafe(self._drain, loop)
        except RuntimeError:  # the loop is closed: nobody waits for these results
            with self._lock:
                self._wake_pending.discard(loop)
                self._results.pop(loop, None)

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            self._wake_pending.discard(loop)
            pending = self._results.pop(loop, None)
        for future, (result, error) in pending or ():
            if future.cancelled():
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if self._shutdown:
                threads: list[threading.Thread] = []
            else:
                self._shutdown = True
                threads = list(self._threads)
            holds = list(self._holds)
            cancelled = [job for job in self._jobs if job is not _STOP] if cancel_futures else []
            if cancel_futures:
                self._jobs.clear()
        for job in cancelled:
            if job[2] is None:  # a hold no worker took: none of its calls will run
                job[1]._cancel()
                _cancel(job[3])
            else:
                _cancel(job)
        for held in holds:  # waiting for calls that will never come now
            held.release()
        with self._lock:  # one stop for each thread, which takes no job after it
            self._jobs.extend(_STOP for _ in threads)
            wake = None if self._waking or not self._asleep else self._asleep.pop()
            self._waking = self._waking or wake is not None
        if wake is not None:
            wake.release()
        if wait:
            for thread in threads:
                thread.join()


class HeldThread(concurrent.futures.Executor):
    """One worker of a :class:`SyncPool`, held until :meth:`release`: every call
    made through :meth:`run` or :meth:`submit` runs on that one thread, in the
    order the calls were made (see the module docstring for why).

    ``keep``, if given, is asked about the result of the first call, on the
    worker: when it says no, the worker goes back to the pool at once, and no
    later call may be made. A request whose response is complete so leaves
    its thread without another hand-off.
    """

    def __init__(self, pool: SyncPool, keep: t.Callable[[t.Any], bool] | None = None) -> None:
        self._pool = pool
        self._keep = keep
        self._calls: queue.SimpleQueue[t.Any] = queue.SimpleQueue()
        self._released = False
        #: Whether its first call went to the pool (with it, for a worker to take).
        self._taken = False
        #: The first call's result, once it has run.
        self._first: t.Any = None

    def run(self, loop: asyncio.AbstractEventLoop, fn: t.Callable[..., T], *args: t.Any) -> asyncio.Future[T]:
        """``fn(*args)`` on the held thread; the returned future is ``loop``'s own.
        The call runs even if the future is cancelled (a teardown must)."""
        future = loop.create_future()
        self._put((loop, future, fn, args))
        return future

    def submit(self, fn: t.Callable[..., T], /, *args: t.Any, **kwargs: t.Any) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._put((None, future, functools.partial(fn, *args, **kwargs) if kwargs else fn, args))
        return future

    def _put(self, job: tuple[t.Any, ...]) -> None:
        if self._released:
            raise RuntimeError("This thread of the pool was released; it takes no more calls.")
        if self._taken:
            self._calls.put(job)
        else:  # no worker is held until there is a call to run
            self._pool._put(job, self)

    def abandon(self, cleanup: t.Callable[[t.Any], None]) -> None:
        """The caller no longer waits for the first call's result (it was
        cancelled): if that call keeps the thread, ``cleanup(result)`` runs on
        it next, and the thread is given back."""
        try:
            self.submit(lambda: cleanup(self._first))
        except RuntimeError:  # the thread went back to the pool: nothing to clean up
            return
        self.release()

    def release(self) -> None:
        """Give the thread back to the pool once the calls made so far have run."""
        if not self._released:
            self._released = True
            self._calls.put(_STOP)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.release()

    def _cancel(self) -> None:
        self._released = True
        while True:
            try:
                job = self._calls.get_nowait()
            except queue.Empty:
                return
            if job is not _STOP:
                _cancel(job)

    def _serve(self, first: tuple[t.Any, ...]) -> tuple[tuple[t.Any, ...], t.Any]:
        """Run the first call, then the later ones, on the worker that took
        this hold, until released. A thread given back with its first call
        returns that call and its outcome, for the worker to hand over once it
        is free; one kept hands each over at once."""
        pool = self._pool
        calls, call, complete = self._calls, pool._call, pool._complete
        _serving.held = self
        try:
            outcome = call(first)
            result, error = outcome or (None, None)
            self._first = result
            if self._keep is not None and (error is not None or not self._keep(result)):
                self._released = True
                return first, outcome
            if outcome is not None:
                complete(first, outcome)
            while (job := calls.get()) is not _STOP:
                if (outcome := call(job)) is not None:
                    complete(job, outcome)
            return first, None
        finally:
            _serving.held = None


def _cancel(job: tuple[t.Any, ...]) -> None:
    """Cancel the future of a job that will not run."""
    loop, future = job[0], job[1]
    if loop is None:
        future.cancel()
    else:
        loop.call_soon_threadsafe(future.cancel)


def _shutdown_at_exit(ref: weakref.ref[SyncPool]) -> None:
    """Let running views finish at interpreter exit, as the standard pool does."""
    pool = ref()
    if pool is not None:
        pool.shutdown(wait=True)
