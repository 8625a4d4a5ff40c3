"""The clock seam: where the farm reads the time for decisions that depend on it.

Lease and claim expiry, ``remember`` and key-value TTLs, retry and dead-letter backoff,
handoff timeouts and link-code lifetimes all read the time through a `Clock` handed to
their constructor (the system clock by default), so a test moves time on with
``clock.advance(...)`` (``tests/support/clock.py``) instead of sleeping until it passes.
Durations of work (metrics, logs) keep reading ``time.perf_counter`` directly.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock"]


class Clock(Protocol):
    """Wall time and monotonic time, read by one object a test can replace."""

    def now(self) -> datetime:
        """Wall time, timezone-aware UTC."""
        ...

    def time(self) -> float:
        """Wall time as seconds since the Unix epoch (``now().timestamp()``)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for intervals (as ``time.monotonic``)."""
        ...


class SystemClock:
    """The machine's clocks: what the farm uses unless a test hands it another one."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


SYSTEM_CLOCK: Clock = SystemClock()
