"""Work that runs outside a request: ``app.spawn(fn)``.

Each job runs in an app context of its own (its own ``g``, its teardown when
it ends), so a database session opened for it is released each time. Spawned
from a request, it also sees a snapshot of that request, readable after the
response was sent and after the request's own teardown ran. The rest of the
spawning code's Context goes along (``carried_context``): a trace continues
in the job.

Sync work runs in a bounded pool of its own (``SPAWN_THREADS``), so background
work never takes the threads that answer requests; async work runs as a task on
the serving loop (the ASGI server's, or under WSGI a loop kept in a background
thread of the worker). :class:`Background` is also the serving service that
starts and stops the app's periodic services (``tether.live.periodic``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import typing as t
import weakref
from contextvars import ContextVar

from ..application.pipeline import Application
from ..contexts.ctx import AppContext, RequestContext, _cv_request, within
from ..contexts.greenlets import isolate_greenlet_loops
from ..contexts.propagation import carried_context
from ..contexts.steps import Steps, call_one, run, run_async
from ..signals import spawned_work_failed
from .snapshot import RequestSnapshot

__all__ = ["Background", "Job", "LoopService", "current_job", "qualified_name"]


class Job:
    """A handle on spawned work: wait for it, get its result, or cancel it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._cancel_requested = threading.Event()
        self._future: concurrent.futures.Future[t.Any] = concurrent.futures.Future()

    @property
    def cancel_requested(self) -> bool:
        """Whether :meth:`cancel` was called (as at shutdown, after the grace
        period): a sync job checks it, through :func:`~tether.current_job`, to stop."""
        return self._cancel_requested.is_set()

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
        """Stop the work: work not started yet never starts, an async function
        is cancelled. A sync function already running cannot be stopped from
        outside: it is asked to (:attr:`cancel_requested` becomes true) and
        stops if it checks. Returns whether the work was cancelled outright."""
        self._cancel_requested.set()
        return self._future.cancel()

    def __repr__(self) -> str:
        state = "done" if self.done() else "running"
        return f"<Job {self.name} {state}>"


_cv_job: ContextVar[Job | None] = ContextVar("tether.job", default=None)


def current_job() -> Job | None:
    """The :class:`~tether.Job` this code runs in (``app.spawn``), or ``None``. A long
    sync job checks ``current_job().cancel_requested`` to stop when asked."""
    return _cv_job.get()


def qualified_name(fn: t.Callable[..., t.Any]) -> str:
    """``module.qualname`` of a function, for logs and registries."""
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


class LoopService(t.Protocol):
    """A service that runs on an event loop while the app serves."""

    def start(self, loop: asyncio.AbstractEventLoop) -> None: ...

    async def stop(self) -> None: ...


class Background:
    """The background side of one app: its thread pool, its loop, its jobs and
    its services (periodic ones)."""

    @property
    def app(self) -> Application:
        return t.cast("Application", self._app())

    def __init__(self, app: Application) -> None:
        self._app = weakref.ref(app)  # the app owns this: no cycle back to it
        self.jobs: set[Job] = set()
        self.services: dict[str, LoopService] = {}
        #: The ASGI server's loop while it serves the app.
        self.serving_loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._own_loop: asyncio.AbstractEventLoop | None = None

    @property
    def pool(self) -> concurrent.futures.ThreadPoolExecutor:
        """The ``SPAWN_THREADS`` pool where sync jobs and periodic runs go."""
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
                isolate_greenlet_loops()
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="tether-background-loop", daemon=True).start()
                self._own_loop = loop
            return self._own_loop

    def spawn(self, fn: t.Callable[..., t.Any], args: tuple[t.Any, ...], kwargs: dict[str, t.Any]) -> Job:
        request_ctx = _cv_request.get(None)
        ctx: AppContext | RequestContext[t.Any]
        if request_ctx is None:
            ctx = self.app.app_context()
        else:
            ctx = RequestContext(self.app, None, request=RequestSnapshot(request_ctx.request).request(self.app))
        job = Job(qualified_name(fn))
        steps = self._job_steps(job, within(ctx, call_one(fn, args, kwargs)))
        # The job runs in what the spawning code's Context carries (its trace span, say).
        carried = carried_context()
        if asyncio.iscoroutinefunction(fn):
            # The task is made in the Context current where it is scheduled: ``carried``.
            job._future = carried.run(asyncio.run_coroutine_threadsafe, run_async(steps), self.loop())
        else:
            job._future = self.pool.submit(carried.run, run, steps)
        with self._lock:
            self.jobs.add(job)
        job._future.add_done_callback(lambda _: self._forget(job))
        return job

    def _job_steps(self, job: Job, steps: Steps[t.Any]) -> Steps[t.Any]:
        token = _cv_job.set(job)
        try:
            return (yield from steps)
        except BaseException as e:
            if not isinstance(e, asyncio.CancelledError):
                self.app.logger.error("Spawned work %s failed", job.name, exc_info=e)
                if spawned_work_failed.receivers:
                    spawned_work_failed.send(self.app, function=job.name, exception=e)
            raise
        finally:
            _cv_job.reset(token)

    def _forget(self, job: Job) -> None:
        with self._lock:
            self.jobs.discard(job)

    def start(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Start the services on the serving loop, or under WSGI on this worker's own."""
        if loop is None:
            if self.services:  # else no loop thread until async work is spawned
                own = self.loop()
                for service in self.services.values():
                    own.call_soon_threadsafe(service.start, own)
            return
        self.serving_loop = loop
        for service in self.services.values():
            service.start(loop)

    async def stop(self) -> None:
        """Stop the services, then give running jobs their grace period."""
        for service in self.services.values():
            await service.stop()
        await asyncio.get_running_loop().run_in_executor(None, self.shutdown)
        self.serving_loop = None

    def stop_at_exit(self) -> None:
        """:meth:`stop` from synchronous code (WSGI, at interpreter exit)."""
        if self.services:
            loop = self.loop()
            for service in self.services.values():
                asyncio.run_coroutine_threadsafe(service.stop(), loop).result(10)
        self.shutdown()

    def shutdown(self) -> None:
        """Give running work ``SPAWN_GRACE_PERIOD`` seconds; then cancel what is
        left, and wait a second more for sync work that checks
        :attr:`Job.cancel_requested`. Work still running after that is logged,
        by name, as abandoned: its teardown runs only if it ends before the
        process exits."""
        with self._lock:
            jobs = list(self.jobs)
        grace = self.app.config["SPAWN_GRACE_PERIOD"]
        _, running = concurrent.futures.wait([job._future for job in jobs], grace)
        late = [job for job in jobs if job._future in running]
        for job in late:
            job.cancel()
        _, running = concurrent.futures.wait([job._future for job in late], min(grace, 1.0))
        for job in late:
            if job._future in running:
                self.app.logger.warning(
                    "Spawned work %s was still running %s s into shutdown and did not stop when asked "
                    "(a sync job stops by checking tether.current_job().cancel_requested). It is "
                    "abandoned: its teardown runs only if it ends before the process exits.",
                    job.name,
                    grace,
                )
            else:
                self.app.logger.warning(
                    "Spawned work %s was still running %s s into shutdown and was cancelled.", job.name, grace
                )
