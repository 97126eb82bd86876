"""An app while a server serves it, in one worker process: the thread pool that
runs sync code under ASGI, the ``before_serving``/``after_serving`` functions,
the services that run meanwhile, and the event that says shutdown has begun.

Under ASGI the lifespan protocol drives :meth:`ServingState.startup` and
:meth:`ServingState.shutdown`. WSGI has no lifespan: :meth:`start_wsgi` runs on
the first request and registers the stop for interpreter exit. Neither has an
ASGI server that sends no lifespan (daphne, ``uvicorn --lifespan off``): the
first request starts the app on the serving loop (``lifespan.start_without_lifespan``)
and :meth:`ServingState.stop_when_loop_ends` stops it when that loop ends.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import multiprocessing.util
import signal
import threading
import typing as t
import weakref
from concurrent.futures import ThreadPoolExecutor

from ..application.config import Config, warn_unapplied_environment
from ..application.json.provider import JSONProvider
from ..application.pipeline import Application
from ..contexts.ctx import within
from ..contexts.steps import Steps, call_each, run, run_async
from .origins import allowed_origins
from .sync_pool import SyncPool
from .throttled_log import warn_at_most_every_minute

__all__ = ["DRAIN_TIMEOUT", "ServedApp", "Service", "ServingState", "StartupRefused", "Stopping"]

#: How long a shutdown waits for the open streams and sockets it ended to run
#: their teardowns, in seconds.
DRAIN_TIMEOUT = 10.0


class Service(t.Protocol):
    """Something that runs while the app serves (``tether.live``'s background work)."""

    def start(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Start on the serving loop (``None`` under WSGI, which has none)."""

    async def stop(self) -> None:
        """Stop, on the serving loop (ASGI lifespan shutdown)."""

    def stop_at_exit(self) -> None:
        """Stop from synchronous code (WSGI, at interpreter exit)."""


class SourceGuard(t.Protocol):
    """The app's channel rules, as a stream applies them to its source
    (``tether.live.channels.ChannelPolicy``)."""

    #: Whether a rule is ``async def``: async code then guards with ``aguard``.
    awaits: bool

    def guard(self, source: t.Any) -> list[str]:
        """Bring ``source`` under the rules; the channels refused."""

    async def aguard(self, source: t.Any) -> list[str]:
        """``guard`` from async code, where an async rule is awaited."""


class StartupRefused(RuntimeError):
    """The app cannot serve as it is set up (a setting that cannot work, a
    package not installed): the server must not start. The message says what
    to change; the original error is its ``__cause__``."""


class Stopping(asyncio.Event):
    """Set when the server starts shutting down. Open streams and sockets wait
    on :meth:`future`, one future for them all, rather than on a task of their
    own each (``wait()``): ten thousand connections, ten thousand tasks fewer."""

    def __init__(self) -> None:
        super().__init__()
        self._future: asyncio.Future[None] | None = None

    def future(self) -> asyncio.Future[None]:
        """Done once set. Shared: await it, never cancel it."""
        if self._future is None:
            self._future = asyncio.get_running_loop().create_future()
            if self.is_set():
                self._future.set_result(None)
        return self._future

    def set(self) -> None:
        super().set()
        if self._future is not None and not self._future.done():
            self._future.set_result(None)


class ServingState:
    """What serving one app needs in this worker; see the module docstring."""

    @property
    def app(self) -> Application:
        return t.cast("Application", self._app())

    def __init__(self, app: Application) -> None:
        # A weak reference: the app owns its serving state, and an app nobody
        # refers to any more is freed at once (as in Flask), not by the collector.
        self._app = weakref.ref(app)
        #: Started after the ``before_serving`` functions, stopped before the
        #: ``after_serving`` ones.
        self.services: list[Service] = []
        #: Called with the app when it starts, before ``before_serving``: each
        #: raises, saying what to change, when a setting cannot work, and may
        #: log a warning for one that works otherwise than it seems to.
        self.checks: list[t.Callable[[Application], None]] = []
        #: What a relayed or streamed source is brought under first (the app's
        #: channel rules, set by the layer that has them).
        self.source_guard: SourceGuard | None = None
        #: Whether ``before_serving`` has run and the services are started.
        self.started = False
        #: Set when the server starts shutting down (ASGI): open streams and
        #: sockets end when it is set. ``None`` until the lifespan starts.
        self.stopping: Stopping | None = None
        #: The start on the first request, when no lifespan started the app.
        self.starting: asyncio.Task[None] | None = None
        self._end_watch: asyncio.Task[None] | None = None
        #: What to call once the shutdown started by :meth:`shutdown_soon` is done.
        self._then: t.Callable[[], None] | None = None
        #: Set when the server starts shutting down under WSGI, as far as it
        #: lets the app know (:meth:`watch_signals`): open streams end at
        #: their next chunk.
        self.wsgi_stopping = threading.Event()
        self._stopped_at_exit = False
        self._exit_watched = False
        self._watching = False
        self._environment_checked = False
        #: Streamed responses and WebSockets under way, and what is set when
        #: the last one ends during a shutdown.
        self._open = 0
        self._drained: asyncio.Event | None = None
        self._lock = threading.Lock()
        self._executor: SyncPool | None = None
        self._websocket_executor: ThreadPoolExecutor | None = None
        self._websocket_threads: threading.BoundedSemaphore | None = None

    @property
    def executor(self) -> SyncPool:
        """The bounded thread pool (``SYNC_THREADS`` workers) where sync views
        and sync event sources run under ASGI (``tether.serving.sync_pool``)."""
        pool = self._executor
        if pool is None:
            with self._lock:
                pool = self._executor
                if pool is None:
                    pool = self._executor = SyncPool(
                        self.app.config["SYNC_THREADS"], thread_name_prefix="tether-sync", on_full=self._pool_full
                    )
        return pool

    def _pool_full(self) -> None:
        """Say why a sync request waits, and what to change: most often, open
        streams of sync views, each holding its thread until it ends."""
        app = self.app
        if app is not None:
            warn_at_most_every_minute(
                app.logger,
                f"Every one of the {app.config['SYNC_THREADS']} SYNC_THREADS is taken: sync views' requests wait "
                "for one. A sync view's streamed response (an EventStream, a generator) holds its thread until "
                "the stream ends; write such views as 'async def', or raise SYNC_THREADS.",
            )

    def claim_websocket_thread(self) -> ThreadPoolExecutor | None:
        """The pool of sync WebSocket handlers (``WEBSOCKET_SYNC_THREADS``), with
        a thread of it claimed for a new connection; ``None`` when every one is
        held, so that the connection is refused rather than left waiting.

        Such a handler holds its thread for as long as its connection lives, so
        it gets a pool of its own and never takes the threads of sync views.
        :meth:`release_websocket_thread` gives the thread back."""
        with self._lock:
            if self._websocket_executor is None:
                size = self.app.config["WEBSOCKET_SYNC_THREADS"]
                self._websocket_threads = threading.BoundedSemaphore(size)
                self._websocket_executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="tether-websocket")
            pool, threads = self._websocket_executor, self._websocket_threads
        assert threads is not None
        return pool if threads.acquire(blocking=False) else None

    def release_websocket_thread(self) -> None:
        assert self._websocket_threads is not None
        self._websocket_threads.release()

    def check(self) -> None:
        """Check the settings before anything runs (:attr:`checks`, and those
        read at each WebSocket handshake): a wrong one raises
        :class:`StartupRefused` with its message, which stops the server."""
        app = self.app
        if not self._environment_checked:  # once, though a WSGI start that fails is tried again
            self._environment_checked = True
            warn_unapplied_environment(app.config, app.logger)
        try:
            allowed_origins(app.config["WEBSOCKET_ALLOWED_ORIGINS"])
            for check in self.checks:
                check(app)
        except Exception as e:
            raise StartupRefused(str(e)) from e

    async def startup(self) -> None:
        """:meth:`check`, run the ``before_serving`` functions, then start the services."""
        self.check()
        await run_async(self._serving_steps(self.app.before_serving_funcs))
        self.started = True
        loop = asyncio.get_running_loop()
        for service in self.services:
            service.start(loop)

    def opened(self) -> None:
        """A streamed response or a WebSocket began: :meth:`shutdown` waits for it."""
        self._open += 1

    def closed(self) -> None:
        """A streamed response or a WebSocket ended, its teardown run."""
        self._open -= 1
        if not self._open and self._drained is not None:
            self._drained.set()

    async def shutdown(self) -> None:
        """End the open streams and sockets and wait for their teardowns (at most
        :data:`DRAIN_TIMEOUT` seconds: a sync source blocked for good cannot be
        interrupted), then stop the services, then run ``after_serving``: its
        functions may close what the teardowns still used."""
        if self.stopping is not None:
            self.stopping.set()
        if self._open:
            self._drained = asyncio.Event()
            try:
                await asyncio.wait_for(self._drained.wait(), DRAIN_TIMEOUT)
            except TimeoutError:
                self.app.logger.warning(
                    "%d streams or WebSockets were still open %s s after the shutdown began.", self._open, DRAIN_TIMEOUT
                )
        self.started = False
        for service in self.services:
            await service.stop()
        await run_async(self._serving_steps(self.app.after_serving_funcs))

    def start_wsgi(self) -> None:
        """Under WSGI, before the first request: :meth:`startup`'s work, once;
        :meth:`shutdown`'s at interpreter exit."""
        with self._lock:
            if self.started:
                return
            self.check()
            run(self._serving_steps(self.app.before_serving_funcs))
            self.started = True
            for service in self.services:
                service.start(None)
            # atexit for a worker that exits normally; Finalize for a
            # multiprocessing child that leaves with os._exit (granian's).
            atexit.register(self._stop_at_exit)
            multiprocessing.util.Finalize(None, self._stop_at_exit, exitpriority=10)
            try:
                self.watch_signals()
            except ValueError:  # not the main thread: see watch_signals
                pass

    def watch_signals(self) -> None:
        """Under WSGI: wrap the SIGTERM, SIGINT and SIGQUIT handlers the server
        installed, so that they set :attr:`wsgi_stopping` before they run.

        Done on the first request when it runs on the main thread (gunicorn's
        sync and gevent workers). A server that answers on other threads
        (gunicorn's gthread) calls this from its main thread instead: with
        gunicorn, ``post_worker_init``. Raises ``ValueError`` elsewhere."""
        if self._watching:
            return
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            previous = signal.getsignal(signum)
            if not callable(previous) or previous is signal.default_int_handler:
                continue  # no server's handler: Python's own (a script, a test run) is left alone

            def handler(sig: int, frame: t.Any, previous: t.Callable[[int, t.Any], t.Any] = previous) -> None:
                self.wsgi_stopping.set()
                previous(sig, frame)

            signal.signal(signum, handler)
        self._watching = True

    def stop_when_loop_ends(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run :meth:`shutdown` on ``loop`` when it ends, for a server that sends no
        lifespan: a task waits there to be cancelled, which ``asyncio.run`` does
        once the server has finished its requests (uvicorn's case). A loop still
        open when the interpreter exits (daphne's) has the task cancelled then,
        before thread pools stop taking work, so that the services' stop runs
        as under a lifespan."""
        self._end_watch = loop.create_task(self._shutdown_when_cancelled(), name="tether: shutdown at loop end")
        if not self._exit_watched:  # once, however many loops start the app
            self._exit_watched = True
            # Called before concurrent.futures refuses new work at exit (in reverse order).
            register = getattr(threading, "_register_atexit", atexit.register)
            register(self._shutdown_at_exit)

    def shutdown_soon(self, then: t.Callable[[], None]) -> None:
        """Start the shutdown that :meth:`stop_when_loop_ends` waits for, from any
        thread, and call ``then`` once it is done: at SIGTERM, with the server's
        own handler as ``then``. The server is told only after the open
        streams' teardowns and ``after_serving`` ran, since without a lifespan
        it may stop the loop (daphne) or end the process (uvicorn re-raises
        the signal) as soon as it is told."""
        task = self._end_watch
        if task is None or task.done():
            then()
            return
        self._then = then
        task.get_loop().call_soon_threadsafe(task.cancel)

    async def _shutdown_when_cancelled(self) -> None:
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            try:
                if self.started and self._app() is not None:
                    await self.shutdown()
                # Startable again: a later loop (the next test's client) starts
                # the app on its first request, with a stopping event of its own.
                self.starting = self.stopping = None
            finally:
                then, self._then = self._then, None
                if then is not None:
                    then()
            raise

    def _shutdown_at_exit(self) -> None:
        task = self._end_watch
        if task is None or task.done():
            return
        loop = task.get_loop()
        if loop.is_closed():  # the services' tasks went with it: only after_serving is left
            if self.started and self._app() is not None:
                self.started = False
                run(self._serving_steps(self.app.after_serving_funcs))
        elif loop.is_running():  # in another thread (a test client's)
            try:
                asyncio.run_coroutine_threadsafe(_cancel(task), loop).result(30)
            except concurrent.futures.CancelledError:  # that loop is ending: its end runs the shutdown
                pass
        else:
            loop.run_until_complete(_cancel(task))

    def _stop_at_exit(self) -> None:
        with self._lock:
            done, self._stopped_at_exit = self._stopped_at_exit, True
        if done or self._app() is None:  # once; and a freed app has nothing left to run
            return
        for service in self.services:
            service.stop_at_exit()
        run(self._serving_steps(self.app.after_serving_funcs))

    def _serving_steps(self, funcs: list[t.Callable[[], t.Any]]) -> Steps[None]:
        """Call ``funcs`` inside an app context."""
        if funcs:
            yield from within(self.app.app_context(), call_each(funcs))


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.wait({task})


class ServedApp(t.Protocol):
    """An application with its serving state: what ``tether.Tether`` is, as the
    layer above sees it when it finds the app through ``current_app``."""

    serving: ServingState

    @property
    def config(self) -> Config: ...

    @property
    def json(self) -> JSONProvider: ...
