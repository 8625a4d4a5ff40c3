"""A clock tests move on by hand: expiry is reached with ``clock.advance(seconds)``, not a sleep."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class FakeClock:
    """`core.clock.Clock` that runs with the system clock, plus every `advance` so far.

    It keeps running rather than standing still so that a time read somewhere the clock is
    not threaded (a record's ``created_at``, a helper's ``utcnow()``) is never *ahead* of
    it: whatever is due by the system clock is due by this one too. Expiry tests use
    lifetimes of seconds and advance past them, so the few milliseconds a test takes to
    run never decide its outcome.
    """

    def __init__(self) -> None:
        self.offset = 0.0

    def advance(self, seconds: float) -> None:
        """Move wall and monotonic time ``seconds`` on, at once."""
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self.offset += seconds

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def time(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic() + self.offset
