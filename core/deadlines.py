"""Coarse timeouts for many concurrent operations (turns, sends) on one shared timer.

``asyncio.timeout`` schedules and cancels a timer per use (several microseconds, twice per
message on the hot path). `Deadlines` keeps the running scopes in a set and checks them a
few times a second from one task: entering and leaving a scope is a set insert and removal.
A scope that overruns is cancelled and raises `TimeoutError` (within ``resolution`` seconds
of its deadline), like ``asyncio.timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType


class Deadlines:
    def __init__(self, resolution: float = 0.25) -> None:
        self.resolution = resolution
        self._scopes: set[_Scope] = set()
        self._watchdog: asyncio.Task[None] | None = None

    def within(self, seconds: float) -> _Scope:
        """``with deadlines.within(30): ...`` (in a task; or ``async with``) raises `TimeoutError`
        after about 30 s."""
        if self._watchdog is None:  # started on first use, until `close`
            self._watchdog = asyncio.get_running_loop().create_task(self._watch(), name="deadlines")
        return _Scope(self._scopes, seconds)

    async def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.resolution)
            now = loop.time()
            for scope in list(self._scopes):
                if scope.deadline <= now and not scope.expired:
                    scope.expired = True
                    scope.task.cancel()


class _Scope:
    __slots__ = ("deadline", "expired", "scopes", "seconds", "task")

    def __init__(self, scopes: set[_Scope], seconds: float) -> None:
        self.scopes = scopes
        self.seconds = seconds
        self.expired = False

    def __enter__(self) -> None:
        task = asyncio.current_task()
        assert task is not None, "Deadlines.within needs a task"
        self.task = task
        self.deadline = task.get_loop().time() + self.seconds
        self.scopes.add(self)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.scopes.discard(self)
        if self.expired and self.task.uncancel() == 0 and exc_type is asyncio.CancelledError:
            raise TimeoutError(f"took longer than {self.seconds:g} s") from exc

    # ``async with`` works too (like ``asyncio.timeout``); the hot path uses plain ``with``,
    # which spares two coroutines per scope.
    async def __aenter__(self) -> None:
        self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)
