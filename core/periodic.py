"""`Periodic`: a farm service's background job, run every ``interval`` seconds until stopped.

The handoff re-pings, the store-backed Prometheus figures and the retention purge each run
one step on an interval. The step handles its own expected failures (a store outage is
logged and tried again next time); an unexpected exception is logged with its traceback
and counted, and the job goes on: a background task must never die silently.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from core import metrics

log = structlog.get_logger(__name__)


class Periodic:
    """Runs ``step`` every ``interval`` seconds (``first``: at once, or after one interval)."""

    def __init__(self, name: str, interval: float, step: Callable[[], Awaitable[object]], *,
                 first: str = "now") -> None:
        if first not in ("now", "after_interval"):
            raise ValueError(f"first must be 'now' or 'after_interval', not {first!r}")
        self.name = name
        self.interval = interval
        self.step = step
        self.first = first
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start the job; idempotent."""
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        """Cancel the job and wait for it (a step under way is cancelled)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        if self.first == "after_interval":
            await asyncio.sleep(self.interval)
        while True:
            try:
                await self.step()
            except Exception:
                metrics.ERRORS.labels(self.name).inc()
                log.exception("periodic.step_crashed", job=self.name)
            await asyncio.sleep(self.interval)
