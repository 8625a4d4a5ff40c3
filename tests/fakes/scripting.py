"""Scripted failures for the platform fakes: "the next N calls" or "every call for S seconds"."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Generic, TypeVar

F = TypeVar("F")


@dataclass
class _Entry(Generic[F]):
    failure: F
    target: str | None  # a method or route name; None = any call
    remaining: int | None  # calls left; None = until `until`
    until: float | None
    skip: int = 0  # calls that pass before the failures start


class FailureScript(Generic[F]):
    """Failures a fake plays back; `take` answers the one that applies to a call, if any."""

    def __init__(self) -> None:
        self._entries: list[_Entry[F]] = []

    def next_calls(self, n: int, failure: F, target: str | None = None, *, after: int = 0) -> None:
        """The next ``n`` calls fail, once ``after`` calls have passed."""
        self._entries.append(_Entry(failure, target, n, None, after))

    def for_seconds(self, seconds: float, failure: F, target: str | None = None) -> None:
        self._entries.append(_Entry(failure, target, None, time.monotonic() + seconds))

    def clear(self) -> None:
        self._entries.clear()

    def take(self, target: str) -> F | None:
        now = time.monotonic()
        for entry in list(self._entries):
            if entry.target is not None and entry.target != target:
                continue
            if entry.until is not None:
                if now < entry.until:
                    return entry.failure
                self._entries.remove(entry)
                continue
            assert entry.remaining is not None
            if entry.skip > 0:
                entry.skip -= 1
                continue
            entry.remaining -= 1
            if entry.remaining <= 0:
                self._entries.remove(entry)
            return entry.failure
        return None
