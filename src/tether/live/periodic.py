"""``@app.periodic(seconds)``: a function run every ``seconds`` while the app
serves, in each worker (or once per interval across a cluster, through the
turns of the app's broadcast backend: ``tether.live.broadcast.backends.Turns``),
each run in a fresh app context."""

from __future__ import annotations

import asyncio
import typing as t

from ..contexts.ctx import within
from ..contexts.steps import Steps, call_one, run, run_async
from ..signals import periodic_run_failed
from .background import Background
from .broadcast import Broadcast, BroadcastUnavailable, Turns, TurnsUnavailable, check_url, redacted

__all__ = ["PeriodicService"]


class BroadcastingApp(t.Protocol):
    """The app as a cluster service sees it: ``tether.Tether``."""

    @property
    def broadcast(self) -> Broadcast: ...


class PeriodicService:
    """Runs ``fn`` every ``interval`` seconds while the app serves: each run in a
    fresh app context, runs never overlapping, a failing run logged (and sent
    as a signal) without stopping the service."""

    def __init__(
        self,
        background: Background,
        fn: t.Callable[[], t.Any],
        interval: float,
        name: str,
        across: str = "worker",
    ) -> None:
        self.background = background
        self.app = background.app
        self.fn = fn
        self.interval = interval
        self.name = name
        self.runs = 0
        self.failures = 0
        #: ``"worker"`` (a run per worker) or ``"cluster"`` (one across all).
        self.across = across
        #: The cluster slot of this worker's last run (``across="cluster"``).
        self.slot: int | None = None
        self._task: asyncio.Task[None] | None = None
        #: Set by stop(): the loops end at their next turn even if a library
        #: swallowed the cancellation (redis-py's reads under asyncio.timeout
        #: can, on Python 3.11).
        self._stopping = False

    def run_once(self) -> t.Any:
        """Run the function once, now, in a fresh app context (for tests)."""
        return run(self._steps())

    def _steps(self) -> Steps[t.Any]:
        return within(self.app.app_context(), call_one(self.fn))

    async def _run(self) -> None:
        self.runs += 1
        try:
            if asyncio.iscoroutinefunction(self.fn):
                await run_async(self._steps())
            else:
                try:
                    running = asyncio.get_running_loop().run_in_executor(self.background.pool, run, self._steps())
                except RuntimeError:  # the pool is shut down: the interpreter is exiting, and so does the service
                    self._stopping = True
                    return
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

    async def _loop(self) -> None:
        while not self._stopping:
            await self._run()
            await asyncio.sleep(self.interval)

    async def _cluster_loop(self, turns: Turns) -> None:
        reachable = True
        try:
            while not self._stopping:
                try:
                    if await turns.take():
                        self.slot = turns.slot
                        renewing = asyncio.ensure_future(self._renew(turns))
                        try:
                            await self._run()
                        finally:
                            renewing.cancel()
                            await turns.release()
                    delay = await turns.until_next_slot()
                    if not reachable:
                        self.app.logger.info("Periodic service %s reaches its broadcast backend again.", self.name)
                        reachable = True
                except Exception as e:
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():
                        # A client library can turn a cancellation during a read
                        # into a timeout: stopping must still stop the service.
                        raise asyncio.CancelledError from e
                    if not isinstance(e, BroadcastUnavailable):
                        raise
                    if reachable:
                        self.app.logger.warning(
                            "Periodic service %s cannot reach its broadcast backend to take its turn (%s); "
                            "it tries every %s s.",
                            self.name, e, self.interval,
                        )
                        reachable = False
                    delay = self.interval
                if self._stopping:
                    # stop() came during a call to the backend, whose client may
                    # have swallowed the cancellation: do not sleep out the slot.
                    return
                await asyncio.sleep(delay)
        finally:
            await turns.close()

    async def _renew(self, turns: Turns) -> None:
        while True:
            await asyncio.sleep(turns.lease_ms / 3000)
            await turns.renew()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._task is None or self._task.done():
            self._stopping = False
            runner = self._loop() if self.across == "worker" else self._cluster_loop(self._turns())
            self._task = loop.create_task(runner, name=f"periodic {self.name}")

    def check(self) -> None:
        """Refuse to start a cluster service that cannot take turns: checked when
        the app starts, so that a wrong setting stops the server with its fix
        instead of leaving the service silently not running."""
        if self.across == "cluster":
            self._turns()

    def _turns(self) -> Turns:
        """This service's turns, from the app's broadcast backend (made without I/O)."""
        url = self.app.config["BROADCAST_URL"]
        try:
            check_url(url, f"Periodic service {self.name} (across=\"cluster\")")
            backend = t.cast(BroadcastingApp, self.app).broadcast.backend
        except ValueError as e:
            raise self._refused(f"with BROADCAST_URL {redacted(url)!r} it cannot: {e}") from None
        try:
            return backend.turns(self.name, self.interval)
        except TurnsUnavailable as e:
            raise self._refused(f"{type(backend).__name__}, the backend of {redacted(url)!r}, cannot: {e}") from None

    def _refused(self, why: str) -> ValueError:
        return ValueError(
            f"Periodic service {self.name} runs across the cluster (across=\"cluster\"), which takes its turns "
            f"through the broadcast backend, but {why.rstrip('.')}. Set BROADCAST_URL to one that can, such as "
            "'redis://host:port/db': app.config[\"BROADCAST_URL\"] = ..., or TETHER_BROADCAST_URL in the "
            "environment, read by app.config.from_prefixed_env(). Or run it in each worker: across=\"worker\"."
        )

    async def stop(self) -> None:
        task = self._task
        self._task = None
        self._stopping = True
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
