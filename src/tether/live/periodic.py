"""``@app.periodic(seconds)``: a function run every ``seconds`` while the app
serves, in each worker, each run in a fresh app context."""

from __future__ import annotations

import asyncio
import typing as t

from ..contexts.ctx import within
from ..contexts.steps import Steps, call_one, run, run_async
from ..signals import periodic_run_failed
from .background import Background

__all__ = ["PeriodicService"]


class PeriodicService:
    """Runs ``fn`` every ``interval`` seconds while the app serves: each run in a
    fresh app context, runs never overlapping, a failing run logged (and sent
    as a signal) without stopping the service."""

    def __init__(
        self, background: Background, fn: t.Callable[[], t.Any], interval: float, name: str
    ) -> None:
        self.background = background
        self.app = background.app
        self.fn = fn
        self.interval = interval
        self.name = name
        self.runs = 0
        self.failures = 0
        self._task: asyncio.Task[None] | None = None

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
                running = asyncio.get_running_loop().run_in_executor(self.background.pool, run, self._steps())
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
