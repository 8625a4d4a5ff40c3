"""The embedded default store: one SQLite file in WAL mode.

Every unit of work is one plain function of a `sqlite3.Connection`; units never
interleave, so each is atomic without an asyncio lock. Units submitted within two
event-loop iterations, or while a batch runs, go together (group commit): one
``BEGIN IMMEDIATE ... COMMIT`` for the batch, a savepoint per writing unit, and
results handed out only after the COMMIT.

Where a batch runs:

- **On the event loop**, the hot path (ingest, turns, outbox). These units are
  indexed look-ups and small writes; in WAL mode with ``synchronous=NORMAL`` a COMMIT
  does not wait for the disk, so a batch takes tens of microseconds, less than
  handing it to a thread and back. Running them inline also spares the GIL
  hand-offs between the loop and a worker thread that stretched every store call
  under load (``bench/``: p50 at half of peak 9.5 ms -> 1.7 ms).
- **On the store's worker thread**: bulk units (export, forget, purge, merges,
  counts over whole tables), set-up, and any batch that finds the write lock taken
  by another process (``switchboard forget`` from a shell): there it waits up to
  ``busy_timeout`` while the loop keeps serving. Inline batches never wait for a lock.
- **Checkpoints** (the only ``fsync`` in WAL mode) run on a second connection in a
  background thread every ``checkpoint_interval`` seconds, never inside a commit.

A farm on SQLite is one process (use MongoDB to scale out). The store that holds
the file's OS lock is that process: it keeps the named leases (turns, pollers) in
memory, so taking and releasing a turn writes nothing, and a second farm on the
file refuses to start (`serve_check`). Other openers (``switchboard export``,
``forget``) use the leases table and wait ``busy_timeout`` for the write lock.
"""

from __future__ import annotations

import asyncio
import enum
import fcntl
import functools
import itertools
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, TypeVar

import orjson
import structlog

from core.errors import ConcurrencyConflict, NotFound, StoreUnavailable
from core.model import (
    Contact,
    Conversation,
    ConversationStatus,
    DeliveryReceipt,
    Event,
    Identity,
    Inbound,
    Outbound,
    new_id,
    utcnow,
)
from core.store import codec
from core.store.base import (
    RECEIPT_TTL_SECONDS,
    Accepted,
    AuditEntry,
    DeadLetter,
    InboxItem,
    OutboxItem,
    OutboxState,
    ReceiptOutcome,
    Store,
    TurnCommit,
    TurnState,
    receipt_event,
    receipt_key,
)
from core.store.migrations import MIGRATIONS

log = structlog.get_logger(__name__)
T = TypeVar("T")


def _dumps(value: Any) -> str:
    """JSON text for the hot columns (orjson: several times faster than json for events)."""
    return orjson.dumps(value).decode()


_INBOX_COLUMNS = "id, conversation_id, payload, received_at, attempts, not_before, last_error, replays"


# Lease tokens: unique per claim and per process without a system call per claim.
_TOKEN_PREFIX = uuid.uuid4().hex[:16]
_TOKENS = itertools.count(1)


def _lease_token() -> str:
    return f"{_TOKEN_PREFIX}:{next(_TOKENS)}"


def _now() -> float:
    return time.time()


def _ts(value: datetime) -> float:
    return value.timestamp()


def _from_ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


class SQLiteStore(Store):
    """`Store` on one SQLite file (``path``; ``:memory:`` works for throwaway use)."""

    def __init__(self, path: str | Path, *, busy_timeout: float = 5.0, checkpoint_interval: float = 0.1) -> None:
        self.path = str(path)
        self.busy_timeout = busy_timeout  # seconds to wait for another process's write lock
        # Seconds between WAL checkpoints (skipped when nothing was written). Short, so each
        # one is small: a checkpoint of a second's writes under load stalled commits for
        # ~25 ms (its fsync), one of 0.1 s's is unnoticeable (bench: p99 27 ms -> 5 ms).
        self.checkpoint_interval = checkpoint_interval
        self._db: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None  # one thread: bulk units and lock waits
        # Group commit: units submitted while a batch is being run wait here and then
        # run together in one transaction (see `_submit`).
        self._queue: list[_Unit] = []
        self._busy = False
        self._in_thread: asyncio.Future[Any] | None = None  # the batch on the worker thread
        self._commits = 0  # write batches since the last checkpoint
        self._checkpointer: asyncio.Task[None] | None = None
        self._checkpoint_db: sqlite3.Connection | None = None
        self._checkpointing: asyncio.Future[None] | None = None
        self._checkpoint_lock = asyncio.Lock()
        self._lock_file: IO[bytes] | None = None
        # The named leases, in memory when this store is its file's only farm process
        # (`serve_check`); None: in the leases table, shared with whoever else opened it.
        self._leases: _MemoryLeases | None = None

    # -- plumbing ------------------------------------------------------------------
    async def open(self) -> None:
        if self._db is not None:
            return
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        loop = asyncio.get_running_loop()
        try:
            # Used from the loop and from the worker thread, never from both at once
            # (`_busy`), hence check_same_thread=False.
            db = await loop.run_in_executor(thread, functools.partial(
                sqlite3.connect, self.path, isolation_level=None, check_same_thread=False))
            db.row_factory = sqlite3.Row
            await loop.run_in_executor(thread, self._configure, db)
            version = await loop.run_in_executor(thread, self._migrate, db)
        except sqlite3.Error as exc:
            thread.shutdown(wait=False)
            raise StoreUnavailable(f"cannot open {self.path}: {exc}") from exc
        self._db, self._thread = db, thread
        owns_file = self._take_process_lock()
        if owns_file:
            cleared = await self._direct(self._clear_stale_leases)
            if cleared:
                log.info("store.stale_leases_cleared", count=cleared)
        if owns_file or self.path == ":memory:":
            self._leases = _MemoryLeases()
        if self.path != ":memory:" and self.checkpoint_interval > 0:
            self._checkpoint_db = await loop.run_in_executor(thread, functools.partial(
                sqlite3.connect, self.path, isolation_level=None, check_same_thread=False))
            self._checkpointer = loop.create_task(self._checkpoints(self._checkpoint_db))
        log.info("store.opened", kind="sqlite", path=self.path, schema_version=version)

    def _take_process_lock(self) -> bool:
        """True if no other process has this file open as a store (an OS lock; freed when a process dies).

        A farm on SQLite is one process. The process that holds the lock knows that every
        lease in the file (turns, outbox, pollers) belongs to a process that is gone, e.g.
        one killed with SIGKILL, so it can take the work over at once instead of waiting
        for the leases to expire. A second opener (``switchboard export``) does not clear.
        """
        if self.path == ":memory:" or self.path.startswith("file:"):
            return False
        try:
            handle = open(f"{self.path}.lock", "wb")  # noqa: SIM115 - held until close()
        except OSError:
            return False
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._lock_file = handle
        return True

    @staticmethod
    def _clear_stale_leases(db: sqlite3.Connection) -> int:
        db.execute("BEGIN IMMEDIATE")
        try:
            leases = db.execute("DELETE FROM leases").rowcount
            outbox = db.execute(
                "UPDATE outbox SET lease_owner=NULL, lease_until=NULL, lease_token=NULL WHERE lease_owner IS NOT NULL"
            ).rowcount
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return int(leases + outbox)

    @staticmethod
    def _configure(db: sqlite3.Connection) -> None:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        # Inline batches never wait for a lock (a batch that finds it taken moves to the
        # worker thread, which waits busy_timeout); checkpoints are the checkpointer's job.
        db.execute("PRAGMA busy_timeout=0")
        db.execute("PRAGMA wal_autocheckpoint=0")
        # Erased personal data is overwritten on disk, not just unlinked (GDPR forget).
        db.execute("PRAGMA secure_delete=ON")

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> int:
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
        current = row[0] or 0
        for version, script in MIGRATIONS:
            if version <= current:
                continue
            db.execute("BEGIN IMMEDIATE")
            try:
                for statement in script:
                    db.execute(statement)
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            current = version
        return int(current)

    async def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            await asyncio.gather(self._checkpointer, return_exceptions=True)
            self._checkpointer = None
        if self._checkpointing is not None:  # the thread may still be using the connection
            await asyncio.gather(self._checkpointing, return_exceptions=True)
            self._checkpointing = None
        if self._db is not None:
            db, self._db = self._db, None
            queued, self._queue = self._queue, []
            for unit in queued:
                if not unit.future.done():
                    unit.future.set_exception(StoreUnavailable("store closed"))
            if self._in_thread is not None:  # let the batch on the worker thread finish
                await asyncio.gather(self._in_thread, return_exceptions=True)
            thread, self._thread = self._thread, None
            assert thread is not None
            loop = asyncio.get_running_loop()
            if self._checkpoint_db is not None:
                await loop.run_in_executor(thread, self._checkpoint_db.close)
                self._checkpoint_db = None
            await loop.run_in_executor(thread, db.close)
            thread.shutdown(wait=True)
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None
        self._leases = None

    def serve_check(self) -> None:
        """A farm serves from this file only if no other process does (see `Store.serve_check`).

        The process that holds the file's OS lock is its only farm: its leases (turns,
        pollers, sweeps) then live in memory, saving two writes per message, and end with
        the process. Another farm on the same file would not see them, so it refuses.
        """
        if self._db is None:
            raise StoreUnavailable("store is not open")
        if self._leases is None:
            raise StoreUnavailable(
                f"{self.path} is already served by another farm process (it holds {self.path}.lock); "
                "a farm on SQLite is one process: stop the other one, or use MongoDB to run several"
            )

    async def ping(self) -> None:
        # Ready means able to take writes: an empty write transaction, which waits for
        # (and fails on) a write lock another process holds, as an ingest would.
        await self._tx(lambda db: None)

    async def _checkpoints(self, conn: sqlite3.Connection) -> None:
        """Copy the WAL into the database file now and then, on a second connection.

        ``PASSIVE`` never blocks the writer; it is the only step that waits for the disk
        (fsync), so it runs on the worker thread, off the event loop and out of every
        commit. ``conn`` is the store's; `close` closes it once no checkpoint runs.
        """
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.checkpoint_interval)
            if not self._commits or self._thread is None:
                continue
            self._commits = 0
            async with self._checkpoint_lock:
                self._checkpointing = loop.run_in_executor(self._thread, _checkpoint, conn)
                try:
                    await asyncio.shield(self._checkpointing)  # a cancelled task leaves it to close()
                except sqlite3.Error as exc:
                    log.warning("store.checkpoint_failed", error=str(exc))

    async def _direct(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` alone on the worker thread, outside any batch transaction (it manages its own)."""
        result: T = await self._submit(fn, write=False, where=_Where.DIRECT)
        return result

    async def _run(self, fn: Callable[[sqlite3.Connection], T], *, bulk: bool = False) -> T:
        """Run read-only ``fn`` (batched with whatever else is queued); ``bulk``: on the worker thread."""
        result: T = await self._submit(fn, write=False, where=_Where.THREAD if bulk else _Where.LOOP)
        return result

    async def _tx(self, fn: Callable[[sqlite3.Connection], T], *, bulk: bool = False) -> T:
        """Run ``fn`` atomically: all of it is committed before this returns, or none of it."""
        result: T = await self._submit(fn, write=True, where=_Where.THREAD if bulk else _Where.LOOP)
        return result

    def _submit(self, fn: Callable[[sqlite3.Connection], Any], *, write: bool, where: _Where) -> asyncio.Future[Any]:
        """Queue a unit; units queued together run as one batch, in submission order.

        A batch is, if any unit writes, one ``BEGIN IMMEDIATE ... COMMIT`` with a savepoint
        per writing unit: a unit that raises is rolled back alone, and every unit's result
        is handed out only after the COMMIT, so an acknowledged write is durable.
        """
        if self._db is None:
            raise StoreUnavailable("store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append(_Unit(fn, write, future, where))
        if not self._busy:
            self._busy = True
            # Run the batch in the loop iteration after next: units submitted by this
            # iteration's callbacks and by the next one's join it, so under load more
            # units share a COMMIT (bench: about 3% more messages/s, p99 unchanged).
            loop.call_soon(loop.call_soon, self._dispatch)
        return future

    def _dispatch(self) -> None:
        db = self._db
        if not self._queue or db is None:
            self._busy = False
            queued, self._queue = self._queue, []
            for unit in queued:
                if not unit.future.done():
                    unit.future.set_exception(StoreUnavailable("store is not open"))
            return
        head = self._queue[0]
        if head.where is _Where.LOOP:
            # The leading run of hot units, at most MAX_INLINE_BATCH: the loop is not held longer.
            count = 1
            while count < min(len(self._queue), MAX_INLINE_BATCH) and self._queue[count].where is _Where.LOOP:
                count += 1
            batch, self._queue = self._queue[:count], self._queue[count:]
            try:
                outcomes = _run_batch(db, batch, inline=True)
            except _LockTaken:
                self._on_thread(db, batch)  # wait for the other process's lock off the loop
                return
            except BaseException as exc:  # noqa: BLE001 - handed to every caller
                self._complete(batch, exc)
                return
            self._complete(batch, outcomes)
            return
        self._queue.pop(0)
        self._on_thread(db, [head])

    def _on_thread(self, db: sqlite3.Connection, batch: list[_Unit]) -> None:
        busy_ms = int(self.busy_timeout * 1000)
        direct = batch[0].where is _Where.DIRECT

        def work() -> list[tuple[bool, Any]] | BaseException:
            try:
                db.execute(f"PRAGMA busy_timeout={busy_ms}")
                try:
                    if direct:
                        try:
                            return [(True, batch[0].fn(db))]
                        except Exception as exc:  # noqa: BLE001 - handed to the caller
                            return [(False, _error(exc))]
                    return _run_batch(db, batch, inline=False)
                finally:
                    db.execute("PRAGMA busy_timeout=0")
            except BaseException as exc:  # noqa: BLE001 - handed to every caller
                return exc

        assert self._thread is not None
        self._in_thread = asyncio.get_running_loop().run_in_executor(self._thread, work)

        def done(future: asyncio.Future[list[tuple[bool, Any]] | BaseException]) -> None:
            self._in_thread = None
            self._complete(batch, future.exception() or future.result())

        self._in_thread.add_done_callback(done)

    def _complete(self, batch: list[_Unit], outcomes: list[tuple[bool, Any]] | BaseException) -> None:
        if isinstance(outcomes, BaseException):
            error = outcomes if isinstance(outcomes, StoreUnavailable) else StoreUnavailable(
                f"{type(outcomes).__name__}: {outcomes}")
            outcomes = [(False, error)] * len(batch)
        if any(unit.write for unit in batch):
            self._commits += 1
        for unit, (ok, value) in zip(batch, outcomes, strict=True):
            if unit.future.done():  # the caller was cancelled; the unit ran anyway
                continue
            if ok:
                unit.future.set_result(value)
            else:
                unit.future.set_exception(value)
        # The next batch: what queued meanwhile, after the callbacks just scheduled have run
        # (they often submit the next unit, which then joins it), or idle.
        if self._queue:
            asyncio.get_running_loop().call_soon(self._dispatch)
        else:
            self._busy = False

    # -- row mapping -----------------------------------------------------------------
    @staticmethod
    def _contact(db: sqlite3.Connection, row: sqlite3.Row) -> Contact:
        ids = db.execute(
            "SELECT channel, channel_user_id, chat_id FROM identities WHERE contact_id=? ORDER BY rowid",
            (row["id"],),
        ).fetchall()
        return Contact(
            id=row["id"],
            bot=row["bot"],
            identities=tuple(Identity(i["channel"], i["channel_user_id"], i["chat_id"]) for i in ids),
            display_name=row["display_name"],
            phone=row["phone"],
            last_agent=row["last_agent"],
            last_channel=row["last_channel"],
            consent=bool(row["consent"]),
            deleted=bool(row["deleted"]),
            created_at=_from_ts(row["created_at"]),
        )

    @staticmethod
    def _conversation(row: sqlite3.Row) -> Conversation:
        return Conversation(
            id=row["id"],
            bot=row["bot"],
            contact_id=row["contact_id"],
            status=ConversationStatus(row["status"]),
            assigned_agent=row["assigned_agent"],
            desk_thread=row["desk_thread"],
            language=row["language"],
            slots=orjson.loads(row["slots"]),
            active_form=row["active_form"],
            handoff_reason=row["handoff_reason"],
            version=row["version"],
            created_at=_from_ts(row["created_at"]),
            updated_at=_from_ts(row["updated_at"]),
        )

    @staticmethod
    def _event(row: sqlite3.Row) -> Event:
        return Event(
            type=row["type"],
            data=orjson.loads(row["data"]),
            channel=row["channel"],
            timestamp=_from_ts(row["ts"]),
            seq=row["seq"],
        )

    @staticmethod
    def _outbox(row: sqlite3.Row, token: str | None = None, lease_until: datetime | None = None) -> OutboxItem:
        """The item as stored, or as just claimed with ``token`` until ``lease_until``."""
        if token is None:
            token = row["lease_token"]
            lease_until = _from_ts(row["lease_until"]) if row["lease_until"] else None
        return OutboxItem(
            outbound=codec.outbound_from_dict(orjson.loads(row["payload"])),
            state=OutboxState(row["state"]),
            attempts=row["attempts"],
            not_before=_from_ts(row["not_before"]) if row["not_before"] else None,
            last_error=row["last_error"],
            platform_message_id=row["platform_message_id"],
            lease_token=token,
            lease_until=lease_until,
        )

    # -- contacts ------------------------------------------------------------------
    @staticmethod
    def _resolve_contact(db: sqlite3.Connection, bot: str, identity: Identity, display_name: str | None) -> str:
        row = db.execute(
            "SELECT contact_id, chat_id FROM identities WHERE bot=? AND channel=? AND channel_user_id=?",
            (bot, identity.channel, identity.channel_user_id),
        ).fetchone()
        if row is None:
            contact_id = new_id("ct")
            db.execute(
                "INSERT INTO contacts (id, bot, display_name, last_channel, created_at) VALUES (?,?,?,?,?)",
                (contact_id, bot, display_name, identity.channel, _now()),
            )
            db.execute(
                "INSERT INTO identities (bot, channel, channel_user_id, chat_id, contact_id) VALUES (?,?,?,?,?)",
                (bot, identity.channel, identity.channel_user_id, identity.chat_id, contact_id),
            )
            return contact_id
        contact_id = str(row["contact_id"])
        if row["chat_id"] != identity.chat_id:
            db.execute(
                "UPDATE identities SET chat_id=? WHERE bot=? AND channel=? AND channel_user_id=?",
                (identity.chat_id, bot, identity.channel, identity.channel_user_id),
            )
        db.execute(  # only when something changes: most messages come where the last one did
            "UPDATE contacts SET last_channel=?, display_name=COALESCE(display_name, ?)"
            " WHERE id=? AND (last_channel IS NOT ? OR (display_name IS NULL AND ? IS NOT NULL))",
            (identity.channel, display_name, contact_id, identity.channel, display_name),
        )
        return contact_id

    async def resolve_contact(
        self, bot: str, identity: Identity, *, display_name: str | None = None
    ) -> Contact:
        def unit(db: sqlite3.Connection) -> Contact:
            contact_id = self._resolve_contact(db, bot, identity, display_name)
            return self._contact(db, db.execute("SELECT * FROM contacts WHERE id=?", (contact_id,)).fetchone())

        return await self._tx(unit)

    async def get_contact(self, contact_id: str) -> Contact | None:
        def unit(db: sqlite3.Connection) -> Contact | None:
            row = db.execute("SELECT * FROM contacts WHERE id=?", (contact_id,)).fetchone()
            return self._contact(db, row) if row else None

        return await self._run(unit)

    async def save_contact(self, contact: Contact) -> None:
        def unit(db: sqlite3.Connection) -> None:
            updated = db.execute(
                "UPDATE contacts SET display_name=?, phone=?, last_agent=?, last_channel=?, consent=?, deleted=?"
                " WHERE id=? AND bot=?",
                (contact.display_name, contact.phone, contact.last_agent, contact.last_channel,
                 int(contact.consent), int(contact.deleted), contact.id, contact.bot),
            ).rowcount
            if not updated:
                db.execute(
                    "INSERT INTO contacts (id, bot, display_name, phone, last_agent, last_channel, consent,"
                    " deleted, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                    (contact.id, contact.bot, contact.display_name, contact.phone, contact.last_agent,
                     contact.last_channel, int(contact.consent), int(contact.deleted), _ts(contact.created_at)),
                )
            db.execute("DELETE FROM identities WHERE contact_id=?", (contact.id,))
            db.executemany(
                "INSERT INTO identities (bot, channel, channel_user_id, chat_id, contact_id) VALUES (?,?,?,?,?)",
                [(contact.bot, i.channel, i.channel_user_id, i.chat_id, contact.id) for i in contact.identities],
            )

        await self._tx(unit)

    async def find_contacts(
        self, bot: str, *, phone: str | None = None, identity: Identity | None = None
    ) -> list[Contact]:
        def unit(db: sqlite3.Connection) -> list[Contact]:
            ids: list[str] = []
            if phone is not None:
                ids += [r[0] for r in db.execute(
                    "SELECT id FROM contacts WHERE bot=? AND phone=? AND deleted=0 ORDER BY created_at", (bot, phone)
                )]
            if identity is not None:
                ids += [r[0] for r in db.execute(
                    "SELECT contact_id FROM identities WHERE bot=? AND channel=? AND channel_user_id=?",
                    (bot, identity.channel, identity.channel_user_id),
                )]
            unique = list(dict.fromkeys(ids))
            return [
                self._contact(db, db.execute("SELECT * FROM contacts WHERE id=?", (i,)).fetchone()) for i in unique
            ]

        return await self._run(unit)

    async def merge_contacts(self, keep_id: str, drop_id: str) -> Contact:
        def unit(db: sqlite3.Connection) -> Contact:
            keep = db.execute("SELECT * FROM contacts WHERE id=?", (keep_id,)).fetchone()
            drop = db.execute("SELECT * FROM contacts WHERE id=?", (drop_id,)).fetchone()
            if keep is None or drop is None or keep["bot"] != drop["bot"]:
                raise NotFound(f"cannot merge {drop_id} into {keep_id}")
            if keep_id == drop_id:
                return self._contact(db, keep)
            bot = keep["bot"]
            db.execute("UPDATE identities SET contact_id=? WHERE contact_id=?", (keep_id, drop_id))
            db.execute(
                "UPDATE contacts SET phone=COALESCE(phone, ?), display_name=COALESCE(display_name, ?),"
                " last_agent=COALESCE(last_agent, ?) WHERE id=?",
                (drop["phone"], drop["display_name"], drop["last_agent"], keep_id),
            )
            dropped_conv = db.execute(
                "SELECT * FROM conversations WHERE bot=? AND contact_id=?", (bot, drop_id)
            ).fetchone()
            if dropped_conv is not None:
                kept_conv = self._conversation_for(db, bot, keep_id)
                self._merge_transcripts(db, kept_conv.id, dropped_conv["id"])
                db.execute("UPDATE inbox SET conversation_id=? WHERE conversation_id=?", (kept_conv.id, dropped_conv["id"]))
                db.execute(
                    "UPDATE outbox SET conversation_id=?, payload=json_set(payload, '$.conversation_id', ?)"
                    " WHERE conversation_id=?",
                    (kept_conv.id, kept_conv.id, dropped_conv["id"]),
                )
                db.execute("DELETE FROM conversations WHERE id=?", (dropped_conv["id"],))
            db.execute("DELETE FROM contacts WHERE id=?", (drop_id,))
            return self._contact(db, db.execute("SELECT * FROM contacts WHERE id=?", (keep_id,)).fetchone())

        return await self._tx(unit, bulk=True)

    @staticmethod
    def _merge_transcripts(db: sqlite3.Connection, keep_conv: str, drop_conv: str) -> None:
        rows = db.execute(
            "SELECT type, channel, ts, data, conversation_id, seq FROM events WHERE conversation_id IN (?,?)"
            " ORDER BY ts, conversation_id=? DESC, seq",
            (keep_conv, drop_conv, keep_conv),
        ).fetchall()
        db.execute("DELETE FROM events WHERE conversation_id IN (?,?)", (keep_conv, drop_conv))
        db.executemany(
            "INSERT INTO events (conversation_id, seq, type, channel, ts, data) VALUES (?,?,?,?,?,?)",
            [(keep_conv, i, r["type"], r["channel"], r["ts"], r["data"]) for i, r in enumerate(rows, start=1)],
        )
        # The transcript was renumbered: the version bump tells cached readers to reload it.
        db.execute("UPDATE conversations SET last_seq=?, version=version+1 WHERE id=?", (len(rows), keep_conv))

    # -- conversations -------------------------------------------------------------
    def _conversation_for(self, db: sqlite3.Connection, bot: str, contact_id: str) -> Conversation:
        conversation_id = self._conversation_id_for(db, bot, contact_id)
        return self._conversation(db.execute("SELECT * FROM conversations WHERE id=?", (conversation_id,)).fetchone())

    @staticmethod
    def _conversation_id_for(db: sqlite3.Connection, bot: str, contact_id: str) -> str:
        row = db.execute("SELECT id FROM conversations WHERE bot=? AND contact_id=?", (bot, contact_id)).fetchone()
        if row is not None:
            return str(row[0])
        now = _now()
        db.execute(
            "INSERT OR IGNORE INTO conversations (id, bot, contact_id, status, slots, version, created_at, updated_at)"
            " VALUES (?,?,?,?,?,0,?,?)",
            (new_id("conv"), bot, contact_id, ConversationStatus.BOT.value, "{}", now, now),
        )
        row = db.execute("SELECT id FROM conversations WHERE bot=? AND contact_id=?", (bot, contact_id)).fetchone()
        return str(row[0])

    async def conversation_for(self, bot: str, contact_id: str) -> Conversation:
        def unit(db: sqlite3.Connection) -> Conversation:
            return self._conversation_for(db, bot, contact_id)

        return await self._tx(unit)

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        def unit(db: sqlite3.Connection) -> Conversation | None:
            row = db.execute("SELECT * FROM conversations WHERE id=?", (conversation_id,)).fetchone()
            return self._conversation(row) if row else None

        return await self._run(unit)

    async def find_conversation_by_thread(self, bot: str, desk_thread: str) -> Conversation | None:
        def unit(db: sqlite3.Connection) -> Conversation | None:
            row = db.execute(
                "SELECT * FROM conversations WHERE bot=? AND desk_thread=?", (bot, desk_thread)
            ).fetchone()
            return self._conversation(row) if row else None

        return await self._run(unit)

    async def list_conversations(
        self,
        bot: str | None = None,
        statuses: Sequence[ConversationStatus] | None = None,
        limit: int = 100,
    ) -> list[Conversation]:
        def unit(db: sqlite3.Connection) -> list[Conversation]:
            sql = "SELECT * FROM conversations WHERE 1=1"
            args: list[str | int] = []
            if bot is not None:
                sql += " AND bot=?"
                args.append(bot)
            if statuses:
                sql += f" AND status IN ({','.join('?' * len(statuses))})"
                args += [s.value for s in statuses]
            sql += " ORDER BY updated_at DESC LIMIT ?"
            args.append(limit)
            return [self._conversation(r) for r in db.execute(sql, args)]

        return await self._run(unit)

    @staticmethod
    def _save_conversation(db: sqlite3.Connection, c: Conversation, appended: int = 0) -> tuple[Conversation, int]:
        """Write ``c`` if it is still the stored version, reserving ``appended`` event seqs;
        the saved conversation and its last seq."""
        now = _now()
        row = db.execute(
            "UPDATE conversations SET status=?, assigned_agent=?, desk_thread=?, language=?, slots=?,"
            " active_form=?, handoff_reason=?, version=version+1, last_seq=last_seq+?, updated_at=?"
            " WHERE id=? AND version=? RETURNING last_seq",
            (c.status.value, c.assigned_agent, c.desk_thread, c.language, _dumps(c.slots),
             c.active_form, c.handoff_reason, appended, now, c.id, c.version),
        ).fetchone()
        if row is None:
            raise ConcurrencyConflict(f"conversation {c.id} changed since version {c.version}")
        return c.evolve(version=c.version + 1, updated_at=_from_ts(now)), int(row[0])

    async def save_conversation(self, conversation: Conversation) -> Conversation:
        return await self._tx(lambda db: self._save_conversation(db, conversation)[0])

    # -- inbox -----------------------------------------------------------------------
    @staticmethod
    def _ingest(db: sqlite3.Connection, conversation_id: str, inbound: Inbound, payload: str) -> bool:
        cursor = db.execute(
            "INSERT OR IGNORE INTO inbox (conversation_id, bot, channel, platform_message_id, payload, received_at)"
            " VALUES (?,?,?,?,?,?)",
            (conversation_id, inbound.bot, inbound.channel, inbound.platform_message_id, payload, _now()),
        )
        return cursor.rowcount == 1

    async def ingest(self, conversation_id: str, inbound: Inbound) -> bool:
        payload = _dumps(codec.inbound_to_dict(inbound))
        return await self._tx(lambda db: self._ingest(db, conversation_id, inbound, payload))

    async def accept_inbound(self, inbound: Inbound, *, phone: str | None = None) -> Accepted | None:
        payload = _dumps(codec.inbound_to_dict(inbound))
        identity = Identity(inbound.channel, inbound.channel_user_id, inbound.chat_id)

        def unit(db: sqlite3.Connection) -> Accepted | None:
            contact_id = self._resolve_contact(db, inbound.bot, identity, inbound.display_name)
            if phone is not None and db.execute(
                "SELECT phone FROM contacts WHERE id=?", (contact_id,)
            ).fetchone()[0] != phone:
                return None
            conversation_id = self._conversation_id_for(db, inbound.bot, contact_id)
            return Accepted(conversation_id, self._ingest(db, conversation_id, inbound, payload))

        return await self._tx(unit)

    @staticmethod
    def _inbox_item(row: sqlite3.Row) -> InboxItem:
        return InboxItem(row["id"], row["conversation_id"], codec.inbound_from_dict(orjson.loads(row["payload"])),
                         _from_ts(row["received_at"]), row["attempts"],
                         _from_ts(row["not_before"]) if row["not_before"] is not None else None,
                         row["last_error"], row["replays"])

    async def pending_inbox(self, conversation_id: str, limit: int = 50) -> list[InboxItem]:
        def unit(db: sqlite3.Connection) -> list[InboxItem]:
            rows = db.execute(
                f"SELECT {_INBOX_COLUMNS} FROM inbox"
                " WHERE conversation_id=? AND processed=0 ORDER BY id LIMIT ?",
                (conversation_id, limit),
            ).fetchall()
            return [self._inbox_item(r) for r in rows]

        return await self._run(unit)

    async def conversations_with_pending_inbox(self, limit: int = 100) -> list[str]:
        def unit(db: sqlite3.Connection) -> list[str]:
            # The grouping reads only the inbox_pending index; the head's row is looked up by id.
            rows = db.execute(
                "SELECT g.conversation_id FROM ("
                "  SELECT conversation_id, MIN(id) AS first FROM inbox WHERE processed=0 GROUP BY conversation_id"
                ") g WHERE NOT EXISTS (SELECT 1 FROM inbox h WHERE h.id=g.first AND h.not_before>?)"
                " ORDER BY g.first LIMIT ?",
                (_now(), limit),
            ).fetchall()
            return [r[0] for r in rows]

        return await self._run(unit)

    # -- failed turns and dead letters ----------------------------------------------------
    async def inbox_retry(self, item_id: int, not_before: datetime, error: str) -> bool:
        return await self._tx(lambda db: db.execute(
            "UPDATE inbox SET attempts=attempts+1, not_before=?, last_error=? WHERE id=? AND processed=0",
            (_ts(not_before), error[:500], item_id),
        ).rowcount == 1)

    async def dead_letter(
        self, item_id: int, error: str, *, events: Sequence[Event] = (), outbound: Sequence[Outbound] = ()
    ) -> bool:
        def unit(db: sqlite3.Connection) -> bool:
            row = db.execute(
                "UPDATE inbox SET processed=1, dead_at=?, attempts=attempts+1, not_before=NULL, last_error=?"
                " WHERE id=? AND processed=0 RETURNING conversation_id",
                (_now(), error[:500], item_id),
            ).fetchone()
            if row is None:
                return False
            self._append(db, row[0], events)
            self._enqueue(db, outbound)
            return True

        return await self._tx(unit)

    async def dead_letters(self, *, bot: str | None = None, limit: int = 100) -> list[DeadLetter]:
        def unit(db: sqlite3.Connection) -> list[DeadLetter]:
            query = f"SELECT {_INBOX_COLUMNS}, bot, dead_at FROM inbox WHERE dead_at IS NOT NULL"
            args: tuple[Any, ...] = (limit,)
            if bot is not None:
                query += " AND bot=?"
                args = (bot, limit)
            rows = db.execute(query + " ORDER BY dead_at, id LIMIT ?", args).fetchall()
            return [DeadLetter(self._inbox_item(r), r["bot"], r["last_error"] or "", _from_ts(r["dead_at"]))
                    for r in rows]

        return await self._run(unit)

    async def count_dead_letters(self) -> int:
        return await self._run(
            lambda db: int(db.execute("SELECT COUNT(*) FROM inbox WHERE dead_at IS NOT NULL").fetchone()[0]))

    async def replay_dead_letter(self, item_id: int) -> str | None:
        def unit(db: sqlite3.Connection) -> str | None:
            row = db.execute(
                "UPDATE inbox SET processed=0, dead_at=NULL, attempts=0, not_before=NULL, replays=replays+1"
                " WHERE id=? AND dead_at IS NOT NULL RETURNING conversation_id",
                (item_id,),
            ).fetchone()
            return str(row[0]) if row else None

        return await self._tx(unit)

    async def drop_dead_letter(self, item_id: int) -> str | None:
        def unit(db: sqlite3.Connection) -> str | None:
            row = db.execute(
                "UPDATE inbox SET dead_at=NULL WHERE id=? AND dead_at IS NOT NULL RETURNING conversation_id",
                (item_id,),
            ).fetchone()
            return str(row[0]) if row else None

        return await self._tx(unit)

    # -- turns and transcript --------------------------------------------------------
    @staticmethod
    def _append(db: sqlite3.Connection, conversation_id: str, events: Sequence[Event]) -> list[Event]:
        if not events:
            return []
        row = db.execute(
            "UPDATE conversations SET last_seq=last_seq+? WHERE id=? RETURNING last_seq",
            (len(events), conversation_id),
        ).fetchone()
        if row is None:
            raise NotFound(f"conversation {conversation_id}")
        return SQLiteStore._insert_events(db, conversation_id, events, row[0])

    @staticmethod
    def _insert_events(
        db: sqlite3.Connection, conversation_id: str, events: Sequence[Event], last_seq: int
    ) -> list[Event]:
        """Insert ``events`` as the seqs up to ``last_seq`` (reserved by the caller)."""
        first = last_seq - len(events) + 1
        stored = [
            Event(e.type, e.data, e.channel, e.timestamp, first + i) for i, e in enumerate(events)
        ]
        db.executemany(
            "INSERT INTO events (conversation_id, seq, type, channel, ts, data) VALUES (?,?,?,?,?,?)",
            [(conversation_id, e.seq, e.type, e.channel, _ts(e.timestamp), _dumps(e.data)) for e in stored],
        )
        return stored

    @staticmethod
    def _enqueue(db: sqlite3.Connection, outbound: Sequence[Outbound]) -> None:
        db.executemany(
            "INSERT INTO outbox (id, conversation_id, bot, channel, payload, state, created_at)"
            " VALUES (?,?,?,?,?,'pending',?)",
            [(o.id, o.conversation_id, o.bot, o.channel, _dumps(codec.outbound_to_dict(o)), _ts(o.created_at))
             for o in outbound],
        )

    async def commit_turn(
        self,
        conversation: Conversation,
        *,
        inbox_ids: Sequence[int] = (),
        events: Sequence[Event] = (),
        outbound: Sequence[Outbound] = (),
    ) -> Conversation:
        return await self._tx(lambda db: self._commit_turn(db, conversation, inbox_ids, events, outbound)[0])

    def _commit_turn(
        self,
        db: sqlite3.Connection,
        conversation: Conversation,
        inbox_ids: Sequence[int],
        events: Sequence[Event],
        outbound: Sequence[Outbound],
    ) -> tuple[Conversation, list[Event]]:
        """The saved conversation and the events as stored (with their seq)."""
        saved, last_seq = self._save_conversation(db, conversation, len(events))
        for inbox_id in inbox_ids:
            if db.execute("UPDATE inbox SET processed=1 WHERE id=? AND processed=0", (inbox_id,)).rowcount != 1:
                raise ConcurrencyConflict(f"inbox item {inbox_id} was already processed")
        stored = self._insert_events(db, conversation.id, events, last_seq) if events else []
        self._enqueue(db, outbound)
        return saved, stored

    async def next_turn(
        self,
        conversation_id: str,
        *,
        lease: str,
        owner: str,
        lease_seconds: float,
        history: int,
        cached: tuple[int, int] | None = None,
    ) -> TurnState | None:
        def unit(db: sqlite3.Connection) -> TurnState | None:
            if not self._take_lease(db, lease, owner, lease_seconds):
                return None
            row = db.execute(
                f"SELECT {_INBOX_COLUMNS} FROM inbox WHERE conversation_id=? AND processed=0 ORDER BY id LIMIT 1",
                (conversation_id,),
            ).fetchone()
            if row is None or (row["not_before"] is not None and row["not_before"] > _now()):
                self._drop_lease(db, lease, owner)  # nothing pending, or the head backs off
                return TurnState(None, retry_at=_from_ts(row["not_before"]) if row else None)
            item = self._inbox_item(row)
            conv_row = db.execute("SELECT * FROM conversations WHERE id=?", (conversation_id,)).fetchone()
            if conv_row is None:
                return TurnState(item)
            conversation = self._conversation(conv_row)
            contact_row = db.execute("SELECT * FROM contacts WHERE id=?", (conversation.contact_id,)).fetchone()
            contact = self._contact(db, contact_row) if contact_row else None
            if cached is not None and cached[0] == conversation.version:
                rows = db.execute("SELECT * FROM events WHERE conversation_id=? AND seq>? ORDER BY seq",
                                  (conversation_id, cached[1])).fetchall()
                return TurnState(item, conversation, contact, [self._event(r) for r in rows], cached[1])
            rows = db.execute(
                "SELECT * FROM (SELECT * FROM events WHERE conversation_id=? ORDER BY seq DESC LIMIT ?) ORDER BY seq",
                (conversation_id, history),
            ).fetchall()
            return TurnState(item, conversation, contact, [self._event(r) for r in rows])

        # With the leases in memory the unit only reads: no write transaction for it.
        return await (self._run(unit) if self._leases is not None else self._tx(unit))

    async def finish_turn(
        self,
        conversation: Conversation,
        *,
        inbox_ids: Sequence[int] = (),
        events: Sequence[Event] = (),
        outbound: Sequence[Outbound] = (),
        owner: str,
        lease_seconds: float,
        claim: bool = True,
        release: str | None = None,
    ) -> TurnCommit:
        def unit(db: sqlite3.Connection) -> TurnCommit:
            saved, stored = self._commit_turn(db, conversation, inbox_ids, events, outbound)
            claimed = self._claim_head(db, outbound[0], owner, lease_seconds) if claim and outbound else []
            released = False
            if release is not None and db.execute(
                "SELECT 1 FROM inbox WHERE conversation_id=? AND processed=0 LIMIT 1", (conversation.id,)
            ).fetchone() is None:
                self._drop_lease(db, release, owner)
                released = True
            return TurnCommit(saved, claimed, released, stored)

        return await self._tx(unit)

    @staticmethod
    def _claim_head(db: sqlite3.Connection, first: Outbound, owner: str, lease_seconds: float) -> list[OutboxItem]:
        """Lease ``first`` to ``owner`` if it is its conversation's next item to send."""
        head = db.execute(
            "SELECT id FROM outbox WHERE state='pending' AND conversation_id=? ORDER BY seq LIMIT 1",
            (first.conversation_id,),
        ).fetchone()
        if head is None or head[0] != first.id:
            return []  # older replies of this conversation go first (the sender claims them)
        token, until = _lease_token(), _now() + lease_seconds
        db.execute("UPDATE outbox SET lease_owner=?, lease_until=?, lease_token=? WHERE id=?",
                   (owner, until, token, first.id))
        return [OutboxItem(first, lease_token=token, lease_until=_from_ts(until))]

    async def append_events(
        self, conversation_id: str, events: Sequence[Event], outbound: Sequence[Outbound] = ()
    ) -> list[Event]:
        def unit(db: sqlite3.Connection) -> list[Event]:
            stored = self._append(db, conversation_id, events)
            self._enqueue(db, outbound)
            return stored

        return await self._tx(unit)

    async def transcript(
        self, conversation_id: str, *, after_seq: int = 0, limit: int | None = None
    ) -> list[Event]:
        def unit(db: sqlite3.Connection) -> list[Event]:
            if limit is None:
                rows = db.execute(
                    "SELECT * FROM events WHERE conversation_id=? AND seq>? ORDER BY seq", (conversation_id, after_seq)
                ).fetchall()
            else:
                rows = db.execute(
                    "SELECT * FROM (SELECT * FROM events WHERE conversation_id=? AND seq>? ORDER BY seq DESC LIMIT ?)"
                    " ORDER BY seq",
                    (conversation_id, after_seq, limit),
                ).fetchall()
            return [self._event(r) for r in rows]

        return await self._run(unit)

    # -- outbox ----------------------------------------------------------------------
    async def claim_outbox(self, owner: str, *, limit: int, lease_seconds: float) -> list[OutboxItem]:
        def unit(db: sqlite3.Connection) -> list[OutboxItem]:
            now = _now()
            rows = db.execute(
                "SELECT o.* FROM outbox o JOIN ("
                "  SELECT conversation_id, MIN(seq) AS head FROM outbox WHERE state='pending' GROUP BY conversation_id"
                ") h ON o.conversation_id=h.conversation_id AND o.seq=h.head"
                " WHERE (o.not_before IS NULL OR o.not_before<=?) AND (o.lease_until IS NULL OR o.lease_until<=?)"
                " ORDER BY o.seq LIMIT ?",
                (now, now, limit),
            ).fetchall()
            until = _now() + lease_seconds  # read after the query
            tokens = [_lease_token() for _ in rows]
            db.executemany(
                "UPDATE outbox SET lease_owner=?, lease_until=?, lease_token=? WHERE id=?",
                [(owner, until, token, r["id"]) for r, token in zip(rows, tokens, strict=True)],
            )
            lease_until = _from_ts(until)
            return [self._outbox(r, token, lease_until) for r, token in zip(rows, tokens, strict=True)]

        return await self._tx(unit)

    async def outbox_renew(self, outbound_id: str, token: str, lease_seconds: float) -> bool:
        return await self._tx(lambda db: db.execute(
            "UPDATE outbox SET lease_until=? WHERE id=? AND lease_token=? AND state='pending'",
            (_now() + lease_seconds, outbound_id, token),
        ).rowcount == 1)

    @staticmethod
    def _fenced(sql: str, args: tuple[Any, ...], token: str | None) -> Callable[[sqlite3.Connection], bool]:
        """``sql`` (ending in its WHERE clause), and the lease token's check when one is given."""
        if token is not None:
            sql, args = sql + " AND lease_token=?", (*args, token)
        return lambda db: bool(db.execute(sql, args).rowcount == 1)

    async def outbox_sent(self, outbound_id: str, platform_message_id: str, *, token: str | None = None) -> bool:
        return await self._tx(self._fenced(
            "UPDATE outbox SET state='sent', platform_message_id=?, lease_owner=NULL, lease_until=NULL,"
            " lease_token=NULL, attempts=attempts+1, sent_at=? WHERE id=?",
            (platform_message_id, _now(), outbound_id), token))

    async def outbox_retry(
        self, outbound_id: str, not_before: datetime, error: str, *, token: str | None = None
    ) -> bool:
        return await self._tx(self._fenced(
            "UPDATE outbox SET not_before=?, last_error=?, attempts=attempts+1, lease_owner=NULL, lease_until=NULL,"
            " lease_token=NULL WHERE id=? AND state='pending'",
            (_ts(not_before), error[:500], outbound_id), token))

    async def outbox_failed(self, outbound_id: str, error: str, *, token: str | None = None) -> bool:
        return await self._tx(self._fenced(
            "UPDATE outbox SET state='failed', last_error=?, attempts=attempts+1, lease_owner=NULL, lease_until=NULL,"
            " lease_token=NULL WHERE id=?",
            (error[:500], outbound_id), token))

    async def get_outbox_item(self, outbound_id: str) -> OutboxItem | None:
        def unit(db: sqlite3.Connection) -> OutboxItem | None:
            row = db.execute("SELECT * FROM outbox WHERE id=?", (outbound_id,)).fetchone()
            return self._outbox(row) if row else None

        return await self._run(unit)

    async def outbox_counts(self) -> dict[OutboxState, int]:
        def unit(db: sqlite3.Connection) -> dict[OutboxState, int]:
            counts = {state: 0 for state in OutboxState}
            for row in db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state"):
                counts[OutboxState(row[0])] = row[1]
            return counts

        return await self._run(unit, bulk=True)

    async def find_by_platform_message(self, channel: str, platform_message_id: str) -> OutboxItem | None:
        def unit(db: sqlite3.Connection) -> OutboxItem | None:
            row = db.execute(
                "SELECT * FROM outbox WHERE platform_message_id=? AND channel=?", (platform_message_id, channel)
            ).fetchone()
            return self._outbox(row) if row else None

        return await self._run(unit)

    @staticmethod
    def _remember(db: sqlite3.Connection, key: str, ttl_seconds: float) -> bool:
        now = _now()
        return db.execute(
            "INSERT INTO seen (key, expires_at) VALUES (?,?)"
            " ON CONFLICT(key) DO UPDATE SET expires_at=excluded.expires_at WHERE seen.expires_at<=?",
            (key, now + ttl_seconds, now),
        ).rowcount == 1

    @staticmethod
    def _record_receipt(db: sqlite3.Connection, receipt: DeliveryReceipt) -> bool:
        row = db.execute("SELECT id, conversation_id FROM outbox WHERE platform_message_id=? AND channel=?",
                         (receipt.platform_message_id, receipt.channel)).fetchone()
        if row is None:
            return False
        SQLiteStore._append(db, row["conversation_id"], [receipt_event(receipt, row["id"])])
        return True

    async def record_receipt(self, receipt: DeliveryReceipt) -> ReceiptOutcome:
        key = receipt_key(receipt)

        def unit(db: sqlite3.Connection) -> ReceiptOutcome:
            now = _now()
            if db.execute("SELECT 1 FROM seen WHERE key=? AND expires_at>?", (key, now)).fetchone():
                return ReceiptOutcome.DUPLICATE
            if self._record_receipt(db, receipt):
                outcome = ReceiptOutcome.RECORDED
            else:
                db.execute("INSERT INTO parked_receipts (channel, platform_message_id, receipt, parked_at)"
                           " VALUES (?,?,?,?)",
                           (receipt.channel, receipt.platform_message_id, _dumps(codec.receipt_to_dict(receipt)), now))
                outcome = ReceiptOutcome.PARKED
            self._remember(db, key, RECEIPT_TTL_SECONDS)  # last: in the same transaction as the record
            return outcome

        return await self._tx(unit)

    async def apply_parked_receipts(self, limit: int = 100) -> int:
        def unit(db: sqlite3.Connection) -> int:
            db.execute("DELETE FROM parked_receipts WHERE parked_at<?", (_now() - RECEIPT_TTL_SECONDS,))
            recorded = 0
            for row in db.execute("SELECT id, receipt FROM parked_receipts ORDER BY id LIMIT ?", (limit,)).fetchall():
                if self._record_receipt(db, codec.receipt_from_dict(orjson.loads(row["receipt"]))):
                    db.execute("DELETE FROM parked_receipts WHERE id=?", (row["id"],))
                    recorded += 1
            return recorded

        return await self._tx(unit)

    # -- coordination ------------------------------------------------------------------
    @staticmethod
    def _acquire_lease_row(db: sqlite3.Connection, name: str, owner: str, ttl_seconds: float) -> bool:
        now = _now()
        cursor = db.execute(
            "INSERT INTO leases (name, owner, expires_at) VALUES (?,?,?)"
            " ON CONFLICT(name) DO UPDATE SET owner=excluded.owner, expires_at=excluded.expires_at"
            " WHERE leases.owner=excluded.owner OR leases.expires_at<=?",
            (name, owner, now + ttl_seconds, now),
        )
        return cursor.rowcount == 1

    def _take_lease(self, db: sqlite3.Connection, name: str, owner: str, ttl_seconds: float) -> bool:
        if self._leases is not None:
            return self._leases.acquire(name, owner, ttl_seconds)
        return self._acquire_lease_row(db, name, owner, ttl_seconds)

    def _drop_lease(self, db: sqlite3.Connection, name: str, owner: str) -> None:
        if self._leases is not None:
            self._leases.release(name, owner)
        else:
            db.execute("DELETE FROM leases WHERE name=? AND owner=?", (name, owner))

    async def acquire_lease(self, name: str, owner: str, ttl_seconds: float) -> bool:
        if self._leases is not None:
            if self._db is None:
                raise StoreUnavailable("store is not open")
            return self._leases.acquire(name, owner, ttl_seconds)
        return await self._tx(lambda db: self._acquire_lease_row(db, name, owner, ttl_seconds))

    async def release_lease(self, name: str, owner: str) -> None:
        if self._leases is not None:
            if self._db is None:
                raise StoreUnavailable("store is not open")
            self._leases.release(name, owner)
            return
        await self._tx(lambda db: self._drop_lease(db, name, owner))

    async def remember(self, key: str, ttl_seconds: float) -> bool:
        def unit(db: sqlite3.Connection) -> bool:
            now = _now()
            cursor = db.execute(
                "INSERT INTO seen (key, expires_at) VALUES (?,?)"
                " ON CONFLICT(key) DO UPDATE SET expires_at=excluded.expires_at WHERE seen.expires_at<=?",
                (key, now + ttl_seconds, now),
            )
            return cursor.rowcount == 1

        return await self._tx(unit)

    async def kv_get(self, key: str) -> Any | None:
        def unit(db: sqlite3.Connection) -> Any | None:
            row = db.execute(
                "SELECT value FROM kv WHERE key=? AND (expires_at IS NULL OR expires_at>?)", (key, _now())
            ).fetchone()
            return json.loads(row[0]) if row else None

        return await self._run(unit)

    async def kv_set(self, key: str, value: Any, ttl_seconds: float | None = None) -> None:
        expires = _now() + ttl_seconds if ttl_seconds is not None else None
        encoded = json.dumps(value)
        await self._tx(lambda db: db.execute(
            "INSERT INTO kv (key, value, expires_at) VALUES (?,?,?)"
            " ON CONFLICT(key) DO UPDATE SET value=excluded.value, expires_at=excluded.expires_at",
            (key, encoded, expires),
        ))

    async def kv_delete(self, key: str) -> None:
        await self._tx(lambda db: db.execute("DELETE FROM kv WHERE key=?", (key,)))

    # -- privacy ------------------------------------------------------------------------
    async def export_contact(self, contact_id: str) -> dict[str, Any]:
        def unit(db: sqlite3.Connection) -> dict[str, Any]:
            row = db.execute("SELECT * FROM contacts WHERE id=? AND deleted=0", (contact_id,)).fetchone()
            if row is None:
                return {}
            contact = self._contact(db, row)
            conversations = []
            for conv_row in db.execute("SELECT * FROM conversations WHERE contact_id=?", (contact_id,)).fetchall():
                conv = self._conversation(conv_row)
                events = db.execute(
                    "SELECT * FROM events WHERE conversation_id=? ORDER BY seq", (conv.id,)
                ).fetchall()
                outbox = db.execute(
                    "SELECT * FROM outbox WHERE conversation_id=? ORDER BY seq", (conv.id,)
                ).fetchall()
                conversations.append({
                    **codec.conversation_to_dict(conv),
                    "transcript": [codec.event_to_dict(self._event(e)) for e in events],
                    "deliveries": [
                        {"id": o["id"], "state": o["state"], "platform_message_id": o["platform_message_id"]}
                        for o in outbox
                    ],
                })
            return {"contact": codec.contact_to_dict(contact), "conversations": conversations}

        return await self._run(unit, bulk=True)

    async def forget_contact(self, contact_id: str) -> None:
        def unit(db: sqlite3.Connection) -> None:
            conv_ids = [r[0] for r in db.execute("SELECT id FROM conversations WHERE contact_id=?", (contact_id,))]
            db.execute(
                "UPDATE contacts SET display_name=NULL, phone=NULL, last_agent=NULL, deleted=1, consent=0 WHERE id=?",
                (contact_id,),
            )
            db.execute("DELETE FROM identities WHERE contact_id=?", (contact_id,))
            for conv_id in conv_ids:
                db.execute("UPDATE events SET data='{}' WHERE conversation_id=?", (conv_id,))
                # Platform ids may embed a session or phone; keep only a hash (still unique).
                db.execute(
                    "UPDATE inbox SET platform_message_id='forgotten:' || id,"
                    " payload=json_object('bot', bot, 'channel', channel, 'platform_message_id', 'forgotten:' || id,"
                    " 'channel_user_id', '', 'chat_id', '', 'timestamp', '1970-01-01T00:00:00+00:00'),"
                    " processed=1, dead_at=NULL, last_error=NULL WHERE conversation_id=?",
                    (conv_id,),
                )
                db.execute(
                    "UPDATE outbox SET payload=json_set(payload, '$.text', '', '$.chat_id', '', '$.buttons', json('[]'),"
                    " '$.attachments', json('[]')), state=CASE state WHEN 'pending' THEN 'failed' ELSE state END"
                    " WHERE conversation_id=?",
                    (conv_id,),
                )
                db.execute(
                    "UPDATE conversations SET slots='{}', language=NULL, active_form=NULL, desk_thread=NULL,"
                    " status='closed', version=version+1 WHERE id=?",
                    (conv_id,),
                )

        await self._tx(unit, bulk=True)
        # Push the overwritten pages out of the WAL into the main file and truncate the WAL,
        # so no copy of the erased text stays on disk.
        await self._truncate_wal()

    async def _truncate_wal(self) -> None:
        """Checkpoint everything and truncate the WAL file (old frames would survive a mere reset)."""
        async with self._checkpoint_lock:  # one checkpoint at a time, or this one fails at once
            for _ in range(50):
                busy = await self._direct(lambda db: db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0])
                if not busy:
                    return
                await asyncio.sleep(0.02)  # a reader of another process still needs the old frames
        raise StoreUnavailable("could not truncate the write-ahead log: it is still in use")

    async def purge_transcripts(self, bot: str, older_than: datetime) -> int:
        def unit(db: sqlite3.Connection) -> int:
            cutoff = _ts(older_than)
            # Message text also lives in processed inbox items and finished outbox items.
            db.execute(
                "UPDATE inbox SET payload=json_set(payload, '$.text', '', '$.attachments', json('[]'))"
                " WHERE bot=? AND processed=1 AND received_at<?",
                (bot, cutoff),
            )
            db.execute(
                "UPDATE outbox SET payload=json_set(payload, '$.text', '', '$.buttons', json('[]'),"
                " '$.attachments', json('[]')) WHERE bot=? AND state!='pending' AND created_at<?",
                (bot, cutoff),
            )
            return db.execute(
                "DELETE FROM events WHERE ts<? AND conversation_id IN (SELECT id FROM conversations WHERE bot=?)",
                (cutoff, bot),
            ).rowcount

        return await self._tx(unit, bulk=True)

    async def audit(self, entry: AuditEntry) -> None:
        at = entry.at or utcnow()
        await self._tx(lambda db: db.execute(
            "INSERT INTO audit (bot, actor, action, target, detail, at) VALUES (?,?,?,?,?,?)",
            (entry.bot, entry.actor, entry.action, entry.target, json.dumps(entry.detail), _ts(at)),
        ))

    async def audit_log(self, *, bot: str | None = None, limit: int = 100) -> list[AuditEntry]:
        def unit(db: sqlite3.Connection) -> list[AuditEntry]:
            if bot is None:
                rows = db.execute("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
            else:
                rows = db.execute("SELECT * FROM audit WHERE bot=? ORDER BY id DESC LIMIT ?", (bot, limit)).fetchall()
            return [
                AuditEntry(r["actor"], r["action"], r["target"], json.loads(r["detail"]), _from_ts(r["at"]), r["bot"])
                for r in rows
            ]

        return await self._run(unit)

    async def count_conversations(self, bot: str | None = None) -> int:
        def unit(db: sqlite3.Connection) -> int:
            if bot is None:
                return int(db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0])
            return int(db.execute("SELECT COUNT(*) FROM conversations WHERE bot=?", (bot,)).fetchone()[0])

        return await self._run(unit, bulk=True)


MAX_INLINE_BATCH = 64  # units per batch run on the event loop


class _Where(enum.Enum):
    LOOP = "loop"  # in a batch on the event loop (the hot path)
    THREAD = "thread"  # in a batch of its own on the worker thread (bulk work)
    DIRECT = "direct"  # alone on the worker thread, outside any batch transaction (set-up, checkpoints)


@dataclass(slots=True)
class _Unit:
    fn: Callable[[sqlite3.Connection], Any]
    write: bool
    future: asyncio.Future[Any]
    where: _Where


class _MemoryLeases:
    """Named leases (owner + expiry) with the leases table's semantics, in memory.

    Used by the one farm process of a file; guarded by a lock because a batch may run
    on the store's worker thread while the loop takes a lease.
    """

    def __init__(self) -> None:
        self._held: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._prune_at = 1024

    def acquire(self, name: str, owner: str, ttl_seconds: float) -> bool:
        now = _now()
        with self._lock:
            held = self._held.get(name)
            if held is not None and held[0] != owner and held[1] > now:
                return False
            self._held[name] = (owner, now + ttl_seconds)
            if len(self._held) >= self._prune_at:  # leases of turns that never ended (cancelled)
                self._held = {k: v for k, v in self._held.items() if v[1] > now}
                self._prune_at = max(1024, 2 * len(self._held))
            return True

    def release(self, name: str, owner: str) -> None:
        with self._lock:
            held = self._held.get(name)
            if held is not None and held[0] == owner:
                del self._held[name]


class _LockTaken(Exception):
    """An inline batch found the write lock held by another connection; nothing was written."""


def _lock_taken(exc: sqlite3.Error) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and exc.sqlite_errorcode in (
        sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _checkpoint(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()


def _error(exc: BaseException) -> BaseException:
    return StoreUnavailable(str(exc)) if isinstance(exc, sqlite3.OperationalError) else exc


def _run_batch(db: sqlite3.Connection, batch: Sequence[_Unit], *, inline: bool) -> list[tuple[bool, Any]]:
    """Run ``batch`` in order; one transaction if any unit writes.

    ``inline``: the connection does not wait for locks; if one is taken, everything is
    rolled back and `_LockTaken` raised, so the caller can run the batch again elsewhere.
    """
    try:
        return _run_units(db, batch, inline)
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _run_units(db: sqlite3.Connection, batch: Sequence[_Unit], inline: bool) -> list[tuple[bool, Any]]:
    outcomes: list[tuple[bool, Any]] = []
    writes = any(unit.write for unit in batch)
    savepoints = len(batch) > 1
    if writes:
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            if inline and _lock_taken(exc):
                raise _LockTaken from exc
            return [(False, _error(exc))] * len(batch)
    for unit in batch:
        if unit.write and savepoints:
            db.execute("SAVEPOINT unit")
        try:
            value = unit.fn(db)
        except Exception as exc:
            if inline and isinstance(exc, sqlite3.Error) and _lock_taken(exc):
                raise _LockTaken from exc  # _run_batch rolls back
            if writes and not db.in_transaction:
                # SQLite rolled the whole transaction back itself (disk full, I/O error):
                # nothing of this batch is durable and reads may have seen its writes.
                return [(False, StoreUnavailable(f"transaction rolled back: {exc}"))] * len(batch)
            if unit.write and savepoints:
                db.execute("ROLLBACK TO unit")
                db.execute("RELEASE unit")
            elif unit.write:
                db.execute("ROLLBACK")
                return [(False, _error(exc))]
            outcomes.append((False, _error(exc)))
            continue
        if unit.write and savepoints:
            db.execute("RELEASE unit")
        outcomes.append((True, value))
    if writes:
        try:
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if inline and _lock_taken(exc):
                raise _LockTaken from exc
            # Nothing of this batch is durable, and reads may have seen its writes: all fail.
            if db.in_transaction:
                db.execute("ROLLBACK")
            return [(False, _error(exc))] * len(batch)
    return outcomes
