"""``@app.periodic(seconds)``: a function run every ``seconds`` while the app
serves, in each worker (or once per interval across a cluster, through
``tether.live.cluster``), each run in a fresh app context."""

from __future__ import annotations

import asyncio
import typing as t
from urllib.parse import urlsplit

from ..contexts.ctx import within
from ..contexts.steps import Steps, call_one, run, run_async
from ..signals import periodic_run_failed
from .background import Background
from .broadcast import REDIS_SCHEMES, redacted
from .broadcast.namespace import namespace_for
from .optional import require

__all__ = ["PeriodicService"]


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

    async def _cluster_loop(self, url: str) -> None:
        # redis-py is optional, needed only by cluster services: _cluster_url checked it is installed.
        import redis

        from .cluster import ClusterTurns  # (optional: it needs redis-py)

        turns = ClusterTurns(url, namespace_for(self.app), self.name, self.interval)
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
                        self.app.logger.info("Periodic service %s reaches Redis again.", self.name)
                        reachable = True
                except redis.RedisError as e:
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():
                        # redis-py can turn a cancellation during a read into a
                        # TimeoutError: stopping must still stop the service.
                        raise asyncio.CancelledError from e
                    if reachable:
                        self.app.logger.warning(
                            "Periodic service %s cannot reach Redis to take its turn (%s); it tries every %s s.",
                            self.name, e, self.interval,
                        )
                        reachable = False
                    delay = self.interval
                if self._stopping:
                    # stop() came during a Redis call, whose client may have
                    # swallowed the cancellation: do not sleep out the slot.
                    return
                await asyncio.sleep(delay)
        finally:
            await turns.close()

    async def _renew(self, turns: t.Any) -> None:
        while True:
            await asyncio.sleep(turns.lease_ms / 3000)
            await turns.renew()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._task is None or self._task.done():
            self._stopping = False
            runner = self._loop() if self.across == "worker" else self._cluster_loop(self._cluster_url())
            self._task = loop.create_task(runner, name=f"periodic {self.name}")

    def check(self) -> None:
        """Refuse to start a cluster service that cannot take turns: checked when
        the app starts, so that a wrong setting stops the server with its fix
        instead of leaving the service silently not running."""
        if self.across == "cluster":
            self._cluster_url()

    def _cluster_url(self) -> str:
        url = self.app.config["BROADCAST_URL"]
        if not isinstance(url, str) or urlsplit(url).scheme not in REDIS_SCHEMES:
            raise ValueError(
                f"Periodic service {self.name} runs across the cluster (across=\"cluster\"), which takes its turns "
                f"through Redis, but BROADCAST_URL is {redacted(url)!r}. Set it to 'redis://host:port/db': "
                "app.config[\"BROADCAST_URL\"] = ..., or TETHER_BROADCAST_URL in the environment, read by "
                "app.config.from_prefixed_env(). Or run it in each worker: across=\"worker\"."
            )
        require("redis", "redis", f"Periodic service {self.name} (across=\"cluster\")")
        return url

    async def stop(self) -> None:
        task = self._task
        self._task = None
        self._stopping = True
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
