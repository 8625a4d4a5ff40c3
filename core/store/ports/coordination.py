"""`LeaseStore` (named leases: owner + expiry) and `KeyValueStore` (de-duplication keys, JSON values with a TTL)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class LeaseStore(ABC):
    """Named leases: who runs a conversation's turn, which process polls a channel or sweeps."""

    @abstractmethod
    async def acquire_lease(self, name: str, owner: str, ttl_seconds: float) -> bool:
        """Take or renew a named lease; True if ``owner`` holds it until now + ttl."""

    @abstractmethod
    async def release_lease(self, name: str, owner: str) -> None: ...


class KeyValueStore(ABC):
    """Small shared state: keys remembered for a while (dedupe) and JSON values with a TTL."""

    @abstractmethod
    async def remember(self, key: str, ttl_seconds: float) -> bool:
        """Record ``key``; True the first time, False while it is remembered (dedupe)."""

    @abstractmethod
    async def kv_get(self, key: str) -> Any | None:
        """A JSON value stored with `kv_set`, or None (also when expired)."""

    @abstractmethod
    async def kv_set(self, key: str, value: Any, ttl_seconds: float | None = None) -> None: ...

    @abstractmethod
    async def kv_delete(self, key: str) -> None: ...

    @abstractmethod
    async def kv_items(self, prefix: str) -> list[tuple[str, Any]]:
        """Every unexpired (key, value) whose key starts with ``prefix`` (non-empty), in key
        order: a range scan over the keys, so a sweep over one kind of record (e.g. desk copies)
        costs what those records cost, not one read per conversation."""


def prefix_end(prefix: str) -> str:
    """The first key after every key that starts with ``prefix`` (for a range scan)."""
    if not prefix:
        raise ValueError("kv_items needs a non-empty prefix")
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)
