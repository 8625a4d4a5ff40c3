"""Wait for background work by its result, never by the clock: ``await eventually(lambda: ...)``."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

POLL_SECONDS = 0.01


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
        result = condition()
        value: T = await result if inspect.isawaitable(result) else result
        if value:
            return value
        if time.monotonic() > deadline:
            detail = message() if callable(message) else message
            raise AssertionError(f"condition not met within {timeout:g} s" + (f": {detail}" if detail else ""))
        await asyncio.sleep(POLL_SECONDS)


def eventually_sync(
    condition: Callable[[], T], *, timeout: float = 5.0, interval: float = 0.05, message: str | Callable[[], str] = ""
) -> T:
    """`eventually` outside the event loop (e.g. a subprocess answering its health check)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = message() if callable(message) else message
            raise AssertionError(f"condition not met within {timeout:g} s" + (f": {detail}" if detail else ""))
        time.sleep(interval)
