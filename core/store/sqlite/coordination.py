"""Named leases and key-value on SQLite: `SQLiteLeaseStore` (in memory for the file's one farm), `SQLiteKeyValueStore`."""

from __future__ import annotations

import json
import sqlite3
import threading
from typing import Any

from core.clock import Clock
from core.errors import StoreUnavailable
from core.store.ports import KeyValueStore, LeaseStore
from core.store.ports.coordination import prefix_end
from core.store.sqlite.engine import SQLiteEngine


def remember(db: sqlite3.Connection, key: str, ttl_seconds: float, *, at: float) -> bool:
    """Record ``key`` at ``at``; True the first time, False while it is remembered."""
    return db.execute(
        "INSERT INTO seen (key, expires_at) VALUES (?,?)"
        " ON CONFLICT(key) DO UPDATE SET expires_at=excluded.expires_at WHERE seen.expires_at<=?",
        (key, at + ttl_seconds, at),
    ).rowcount == 1


def _acquire_row(db: sqlite3.Connection, name: str, owner: str, ttl_seconds: float, *, at: float) -> bool:
    cursor = db.execute(
        "INSERT INTO leases (name, owner, expires_at) VALUES (?,?,?)"
        " ON CONFLICT(name) DO UPDATE SET owner=excluded.owner, expires_at=excluded.expires_at"
        " WHERE leases.owner=excluded.owner OR leases.expires_at<=?",
        (name, owner, at + ttl_seconds, at),
    )
    return cursor.rowcount == 1


def clear_stale_leases(db: sqlite3.Connection) -> int:
    """Drop every lease in the file (turns, pollers, outbox claims): for the process that
    just took the file's OS lock, they all belong to a process that is gone. Its pending
    claimed replies are counted in doubt (`OutboxItem.in_doubt`): it may have sent them."""
    db.execute("BEGIN IMMEDIATE")
    try:
        leases = db.execute("DELETE FROM leases").rowcount
        outbox = db.execute(
            "UPDATE outbox SET in_doubt=in_doubt+(state='pending' AND lease_token IS NOT NULL),"
            " lease_owner=NULL, lease_until=NULL, lease_token=NULL WHERE lease_owner IS NOT NULL"
        ).rowcount
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return int(leases + outbox)


class MemoryLeases:
    """Named leases (owner + expiry) with the leases table's semantics, in memory.

    Used by the one farm process of a file; guarded by a lock because a batch may run
    on the store's worker thread while the loop takes a lease.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._held: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._prune_at = 1024

    def acquire(self, name: str, owner: str, ttl_seconds: float) -> bool:
        at = self._clock.time()
        with self._lock:
            held = self._held.get(name)
            if held is not None and held[0] != owner and held[1] > at:
                return False
            self._held[name] = (owner, at + ttl_seconds)
            if len(self._held) >= self._prune_at:  # leases of turns that never ended (cancelled)
                self._held = {k: v for k, v in self._held.items() if v[1] > at}
                self._prune_at = max(1024, 2 * len(self._held))
            return True

    def release(self, name: str, owner: str) -> None:
        with self._lock:
            held = self._held.get(name)
            if held is not None and held[0] == owner:
                del self._held[name]


class SQLiteLeaseStore(LeaseStore):
    """`LeaseStore` on the engine's file: in `memory` while set (the file's one farm process,
    see `SQLiteStore.serve_check`), else in the leases table shared with other openers."""

    def __init__(self, engine: SQLiteEngine) -> None:
        self._engine = engine
        self.memory: MemoryLeases | None = None

    def take(self, db: sqlite3.Connection, name: str, owner: str, ttl_seconds: float) -> bool:
        """`acquire_lease` inside a unit of work."""
        if self.memory is not None:
            return self.memory.acquire(name, owner, ttl_seconds)
        return _acquire_row(db, name, owner, ttl_seconds, at=self._engine.clock.time())

    def drop(self, db: sqlite3.Connection, name: str, owner: str) -> None:
        """`release_lease` inside a unit of work."""
        if self.memory is not None:
            self.memory.release(name, owner)
        else:
            db.execute("DELETE FROM leases WHERE name=? AND owner=?", (name, owner))

    async def acquire_lease(self, name: str, owner: str, ttl_seconds: float) -> bool:
        if self.memory is not None:
            if not self._engine.is_open:
                raise StoreUnavailable("store is not open")
            return self.memory.acquire(name, owner, ttl_seconds)
        return await self._engine.tx(lambda db: _acquire_row(db, name, owner, ttl_seconds, at=self._engine.clock.time()))

    async def release_lease(self, name: str, owner: str) -> None:
        if self.memory is not None:
            if not self._engine.is_open:
                raise StoreUnavailable("store is not open")
            self.memory.release(name, owner)
            return
        await self._engine.tx(lambda db: self.drop(db, name, owner))


class SQLiteKeyValueStore(KeyValueStore):
    """`KeyValueStore` on the engine's file."""

    def __init__(self, engine: SQLiteEngine) -> None:
        self._engine = engine

    async def remember(self, key: str, ttl_seconds: float) -> bool:
        return await self._engine.tx(lambda db: remember(db, key, ttl_seconds, at=self._engine.clock.time()))

    async def kv_get(self, key: str) -> Any | None:
        def unit(db: sqlite3.Connection) -> Any | None:
            row = db.execute(
                "SELECT value FROM kv WHERE key=? AND (expires_at IS NULL OR expires_at>?)", (key, self._engine.clock.time())
            ).fetchone()
            return json.loads(row[0]) if row else None

        return await self._engine.run(unit)

    async def kv_set(self, key: str, value: Any, ttl_seconds: float | None = None) -> None:
        expires = self._engine.clock.time() + ttl_seconds if ttl_seconds is not None else None
        encoded = json.dumps(value)
        await self._engine.tx(lambda db: db.execute(
            "INSERT INTO kv (key, value, expires_at) VALUES (?,?,?)"
            " ON CONFLICT(key) DO UPDATE SET value=excluded.value, expires_at=excluded.expires_at",
            (key, encoded, expires),
        ))

    async def kv_delete(self, key: str) -> None:
        await self._engine.tx(lambda db: db.execute("DELETE FROM kv WHERE key=?", (key,)))

    async def kv_items(self, prefix: str) -> list[tuple[str, Any]]:
        end = prefix_end(prefix)

        def unit(db: sqlite3.Connection) -> list[tuple[str, Any]]:
            rows = db.execute(
                "SELECT key, value FROM kv WHERE key>=? AND key<? AND (expires_at IS NULL OR expires_at>?) ORDER BY key",
                (prefix, end, self._engine.clock.time()),
            )
            return [(str(row[0]), json.loads(row[1])) for row in rows]

        return await self._engine.run(unit, bulk=True)  # off the loop: the prefix may hold many keys
