"""The embedded default store: one SQLite file in WAL mode.

`SQLiteStore` is a thin facade: it owns the `SQLiteEngine` (``engine.py``: connection,
group commit, savepoints, worker thread, checkpoints, the file's OS lock) and composes
one store per concern, each in its own module with its SQL (``contacts.py``,
``conversations.py``, ``inbox.py``, ``transcript.py``, ``outbox.py``, ``receipts.py``,
``coordination.py``, ``privacy.py``, ``analytics.py``) and the hot path's units of work (``hotpath.py``).

A farm on SQLite is one process (use MongoDB to scale out). The store that holds
the file's OS lock is that process: it keeps the named leases (turns, pollers) in
memory, so taking and releasing a turn writes nothing, and a second farm on the
file refuses to start (`serve_check`). Other openers (``switchboard export``,
``forget``) use the leases table and wait ``busy_timeout`` for the write lock.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import structlog

from core.clock import SYSTEM_CLOCK, Clock
from core.errors import StoreUnavailable
from core.store.composed import ComposedStore
from core.store.migrations import MIGRATIONS
from core.store.sqlite.analytics import SQLiteAnalyticsStore
from core.store.sqlite.contacts import SQLiteContactStore
from core.store.sqlite.conversations import SQLiteConversationStore
from core.store.sqlite.coordination import (
    MemoryLeases,
    SQLiteKeyValueStore,
    SQLiteLeaseStore,
    clear_stale_leases,
)
from core.store.sqlite.engine import SQLiteEngine
from core.store.sqlite.hotpath import SQLiteTurnUnitOfWork
from core.store.sqlite.inbox import SQLiteInboxStore
from core.store.sqlite.outbox import SQLiteOutboxStore
from core.store.sqlite.privacy import SQLiteAuditStore, SQLitePrivacyStore
from core.store.sqlite.receipts import SQLiteReceiptStore
from core.store.sqlite.review import SQLiteReviewStore
from core.store.sqlite.transcript import SQLiteTranscriptStore

__all__ = ["SQLiteStore"]

log = structlog.get_logger(__name__)


class SQLiteStore(ComposedStore):
    """`Store` on one SQLite file (``path``; ``:memory:`` works for throwaway use)."""

    leases: SQLiteLeaseStore
    turns: SQLiteTurnUnitOfWork

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout: float = 5.0,
        checkpoint_interval: float = 0.1,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.path = str(path)
        self.clock = clock  # leases, claims, TTLs and timestamps read the time from it
        self._engine = SQLiteEngine(
            self.path, busy_timeout=busy_timeout, checkpoint_interval=checkpoint_interval, clock=clock
        )
        engine = self._engine
        leases = SQLiteLeaseStore(engine)
        super().__init__(
            contacts=SQLiteContactStore(engine),
            conversations=SQLiteConversationStore(engine),
            inbox=SQLiteInboxStore(engine),
            transcripts=SQLiteTranscriptStore(engine),
            outbox=SQLiteOutboxStore(engine),
            receipts=SQLiteReceiptStore(engine),
            leases=leases,
            kv=SQLiteKeyValueStore(engine),
            privacy=SQLitePrivacyStore(engine),
            audits=SQLiteAuditStore(engine),
            analytics=SQLiteAnalyticsStore(engine),
            turns=SQLiteTurnUnitOfWork(engine, leases),
            review=SQLiteReviewStore(engine),
        )

    # -- lifecycle -----------------------------------------------------------------
    @property
    def _db(self) -> sqlite3.Connection | None:
        """The engine's connection while open (tests reach the file through it)."""
        return self._engine.db

    async def open(self) -> None:
        if self._engine.is_open:
            return
        version = await self._engine.open(MIGRATIONS)
        owns_file = self._engine.owns_file
        if owns_file:
            cleared = await self._engine.direct(clear_stale_leases)
            if cleared:
                log.info("store.stale_leases_cleared", count=cleared)
        if owns_file or self.path == ":memory:":
            self.leases.memory = MemoryLeases(self.clock)
        log.info("store.opened", kind="sqlite", path=self.path, schema_version=version)

    async def close(self) -> None:
        await self._engine.close()
        self.leases.memory = None

    def serve_check(self) -> None:
        """A farm serves from this file only if no other process does (see `Store.serve_check`).

        The process that holds the file's OS lock is its only farm: its leases (turns,
        pollers, sweeps) then live in memory, saving two writes per message, and end with
        the process. Another farm on the same file would not see them, so it refuses.
        """
        if not self._engine.is_open:
            raise StoreUnavailable("store is not open")
        if self.leases.memory is None:
            raise StoreUnavailable(
                f"{self.path} is already served by another farm process (it holds {self.path}.lock); "
                "a farm on SQLite is one process: stop the other one, or use MongoDB to run several"
            )

    async def ping(self) -> None:
        # Ready means able to take writes: an empty write transaction, which waits for
        # (and fails on) a write lock another process holds, as an ingest would.
        await self._engine.tx(lambda db: None)
