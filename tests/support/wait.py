"""Wait for background work by its result, never by the clock: ``await eventually(lambda: ...)``."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

POLL_SECONDS = 0.005


async def eventually(
    condition: Callable[[], T | Awaitable[T]], *, timeout: float = 5.0, message: str | Callable[[], str] = ""
) -> T:
    """The first truthy value of ``condition()`` (a plain or async callable), checked every few
    milliseconds; fails the test if none comes within ``timeout`` seconds.

    ``timeout`` bounds a broken test, it is not a wait: a passing test returns as soon as the
    condition holds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            detail = message() if callable(message) else message
            raise AssertionError(f"condition not met within {timeout:g} s" + (f": {detail}" if detail else ""))
        await asyncio.sleep(POLL_SECONDS)


async def settled(condition: Callable[[], object], *, rounds: int = 20) -> None:
    """Let the event loop run ``rounds`` times and assert ``condition()`` still holds each time.

    For "nothing more happens" checks: whatever is already runnable gets its turn, without
    waiting for the wall clock.
    """
    for _ in range(rounds):
        assert condition(), "condition stopped holding"
        await asyncio.sleep(0)
