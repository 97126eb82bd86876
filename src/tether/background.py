"""Work that runs outside a request: ``app.spawn`` and ``@app.periodic``.

Each unit of work runs in an app context of its own (its own ``g``, its teardown
when it ends), so a database session opened for it is released each time.
Spawned from a request, it also sees a snapshot of that request, readable after
the response was sent and after the request's own teardown ran.

Sync work runs in a bounded pool of its own (``SPAWN_THREADS``), so background
work never takes the threads that answer requests; async work runs as a task on
the serving loop (the ASGI server's, or under WSGI a loop kept in a background
thread of the worker).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import typing as t

from .ctx import AppContext, RequestContext
from .globals import _cv_request
from .propagation import RequestSnapshot
from .signals import periodic_run_failed, spawned_work_failed
from .steps import run_coroutine

if t.TYPE_CHECKING:
    from .application import Application

__all__ = ["Job", "PeriodicService"]


class Job:
    """A handle on spawned work: wait for it, get its result, or cancel it."""

    def __init__(self, name: str, future: concurrent.futures.Future[t.Any]) -> None:
        self.name = name
        self._future = future

    def done(self) -> bool:
        return self._future.done()

    def result(self, timeout: float | None = None) -> t.Any:
        """The work's return value (waiting up to ``timeout``); its exception if it raised."""
        return self._future.result(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the work ends; ``False`` if ``timeout`` passed first."""
        done, _ = concurrent.futures.wait([self._future], timeout)
        return bool(done)

    def cancel(self) -> bool:
        """Cancel the work: pending work never starts, an async task is cancelled.
        A sync function already running cannot be stopped from outside."""
        return self._future.cancel()

    def __repr__(self) -> str:
        state = "done" if self.done() else "running"
        return f"<Job {self.name} {state}>"


def _name(fn: t.Callable[..., t.Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


class Background:
    """The background side of one app: its thread pool, its loop, its jobs and
    periodic services."""

    def __init__(self, app: Application) -> None:
        self.app = app
        self.jobs: set[Job] = set()
        self._lock = threading.Lock()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._own_loop: asyncio.AbstractEventLoop | None = None
        self.serving_loop: asyncio.AbstractEventLoop | None = None
        self.services: dict[str, PeriodicService] = {}

    @property
    def pool(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    max_workers=self.app.config["SPAWN_THREADS"], thread_name_prefix="tether-spawn"
                )
            return self._pool

    def loop(self) -> asyncio.AbstractEventLoop:
        """The serving loop under ASGI; else a loop of this worker's own."""
        if self.serving_loop is not None and not self.serving_loop.is_closed():
            return self.serving_loop
        with self._lock:
            if self._own_loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="tether-background-loop", daemon=True).start()
                self._own_loop = loop
            return self._own_loop

    def spawn(self, fn: t.Callable[..., t.Any], args: tuple[t.Any, ...], kwargs: dict[str, t.Any]) -> Job:
        request_ctx = _cv_request.get(None)
        snapshot = RequestSnapshot(request_ctx.request) if request_ctx is not None else None
        name = _name(fn)
        if asyncio.iscoroutinefunction(fn):
            future = asyncio.run_coroutine_threadsafe(self._run_async(fn, name, snapshot, args, kwargs), self.loop())
        else:
            future = self.pool.submit(self._run_sync, fn, name, snapshot, args, kwargs)
        job = Job(name, future)
        with self._lock:
            self.jobs.add(job)
        future.add_done_callback(lambda _: self._forget(job))
        return job

    def _forget(self, job: Job) -> None:
        with self._lock:
            self.jobs.discard(job)

    def _context(self, snapshot: RequestSnapshot | None) -> AppContext | RequestContext:
        if snapshot is None:
            return self.app.app_context()
        return RequestContext(self.app, request=snapshot.request(self.app))

    def _failed(self, name: str, error: BaseException) -> None:
        self.app.logger.error("Spawned work %s failed", name, exc_info=error)
        if spawned_work_failed.receivers:
            spawned_work_failed.send(self.app, function=name, exception=error)

    def _run_sync(
        self, fn: t.Callable[..., t.Any], name: str, snapshot: RequestSnapshot | None, args: t.Any, kwargs: t.Any
    ) -> t.Any:
        try:
            with self._context(snapshot):
                return fn(*args, **kwargs)
        except BaseException as e:
            self._failed(name, e)
            raise

    async def _run_async(
        self, fn: t.Callable[..., t.Any], name: str, snapshot: RequestSnapshot | None, args: t.Any, kwargs: t.Any
    ) -> t.Any:
        ctx = self._context(snapshot)
        ctx.push()
        error: BaseException | None = None
        try:
            return await fn(*args, **kwargs)
        except BaseException as e:
            error = e
            if not isinstance(e, asyncio.CancelledError):
                self._failed(name, e)
            raise
        finally:
            await ctx.pop_async(error)

    def shutdown(self) -> None:
        """Give running work ``SPAWN_GRACE_PERIOD`` seconds, then cancel the rest."""
        with self._lock:
            jobs = list(self.jobs)
        if not jobs:
            return
        grace = self.app.config["SPAWN_GRACE_PERIOD"]
        _, pending = concurrent.futures.wait([job._future for job in jobs], grace)
        for job in jobs:
            if job._future in pending:
                job.cancel()
                self.app.logger.warning(
                    "Spawned work %s was still running %s s into shutdown and was cancelled.", job.name, grace
                )


class PeriodicService:
    """Runs ``fn`` every ``interval`` seconds while the app serves: each run in a
    fresh app context, runs never overlapping, a failing run logged (and sent
    as a signal) without stopping the service."""

    def __init__(self, app: Application, fn: t.Callable[[], t.Any], interval: float, name: str) -> None:
        self.app = app
        self.fn = fn
        self.interval = interval
        self.name = name
        self.runs = 0
        self.failures = 0
        self._task: asyncio.Task[None] | None = None

    def run_once(self) -> t.Any:
        """Run the function once, now, in a fresh app context (for tests)."""
        with self.app.app_context():
            result = self.fn()
            return run_coroutine(result) if asyncio.iscoroutine(result) else result

    async def _run(self) -> None:
        self.runs += 1
        try:
            if asyncio.iscoroutinefunction(self.fn):
                ctx = self.app.app_context()
                ctx.push()
                error: BaseException | None = None
                try:
                    await self.fn()
                except BaseException as e:
                    error = e
                    raise
                finally:
                    await ctx.pop_async(error)
            else:
                running = asyncio.get_running_loop().run_in_executor(self.app.background.pool, self._run_sync)
                try:
                    await asyncio.shield(running)
                except asyncio.CancelledError:
                    await asyncio.wait({running})  # stopping waits for the run in progress
                    raise
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.failures += 1
            self.app.logger.error("Periodic service %s failed; it runs again in %s s", self.name, self.interval, exc_info=e)
            if periodic_run_failed.receivers:
                periodic_run_failed.send(self.app, service=self.name, exception=e)

    def _run_sync(self) -> None:
        with self.app.app_context():
            self.fn()

    async def _loop(self) -> None:
        while True:
            await self._run()
            await asyncio.sleep(self.interval)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._loop(), name=f"periodic {self.name}")

    async def stop(self) -> None:
        task = self._task
        self._task = None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
