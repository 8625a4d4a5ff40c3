"""The embedded default store: one SQLite file in WAL mode.

Every method is one unit of work (a plain function of a `sqlite3.Connection`) run by
`SQLiteEngine` (``core/store/sqlite_engine.py``): group commit, savepoints, the worker
thread for bulk units and lock waits, checkpoints. This module holds the SQL.

A farm on SQLite is one process (use MongoDB to scale out). The store that holds
the file's OS lock is that process: it keeps the named leases (turns, pollers) in
memory, so taking and releasing a turn writes nothing, and a second farm on the
file refuses to start (`serve_check`). Other openers (``switchboard export``,
``forget``) use the leases table and wait ``busy_timeout`` for the write lock.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
from core.store.sqlite_engine import SQLiteEngine

log = structlog.get_logger(__name__)


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
        # Connection, group commit, worker thread, checkpoints and the file's OS lock.
        self._engine = SQLiteEngine(self.path, busy_timeout=busy_timeout, checkpoint_interval=checkpoint_interval)
        # The named leases, in memory when this store is its file's only farm process
        # (`serve_check`); None: in the leases table, shared with whoever else opened it.
        self._leases: _MemoryLeases | None = None

    # -- plumbing ------------------------------------------------------------------
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
            cleared = await self._engine.direct(self._clear_stale_leases)
            if cleared:
                log.info("store.stale_leases_cleared", count=cleared)
        if owns_file or self.path == ":memory:":
            self._leases = _MemoryLeases()
        log.info("store.opened", kind="sqlite", path=self.path, schema_version=version)

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

    async def close(self) -> None:
        await self._engine.close()
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
        await self._engine.tx(lambda db: None)

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

        return await self._engine.tx(unit)

    async def get_contact(self, contact_id: str) -> Contact | None:
        def unit(db: sqlite3.Connection) -> Contact | None:
            row = db.execute("SELECT * FROM contacts WHERE id=?", (contact_id,)).fetchone()
            return self._contact(db, row) if row else None

        return await self._engine.run(unit)

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

        await self._engine.tx(unit)

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

        return await self._engine.run(unit)

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

        return await self._engine.tx(unit, bulk=True)

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

        return await self._engine.tx(unit)

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        def unit(db: sqlite3.Connection) -> Conversation | None:
            row = db.execute("SELECT * FROM conversations WHERE id=?", (conversation_id,)).fetchone()
            return self._conversation(row) if row else None

        return await self._engine.run(unit)

    async def find_conversation_by_thread(self, bot: str, desk_thread: str) -> Conversation | None:
        def unit(db: sqlite3.Connection) -> Conversation | None:
            row = db.execute(
                "SELECT * FROM conversations WHERE bot=? AND desk_thread=?", (bot, desk_thread)
            ).fetchone()
            return self._conversation(row) if row else None

        return await self._engine.run(unit)

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

        return await self._engine.run(unit)

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
        return await self._engine.tx(lambda db: self._save_conversation(db, conversation)[0])

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
        return await self._engine.tx(lambda db: self._ingest(db, conversation_id, inbound, payload))

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

        return await self._engine.tx(unit)

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

        return await self._engine.run(unit)

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

        return await self._engine.run(unit)

    # -- failed turns and dead letters ----------------------------------------------------
    async def inbox_retry(self, item_id: int, not_before: datetime, error: str) -> bool:
        return await self._engine.tx(lambda db: db.execute(
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

        return await self._engine.tx(unit)

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

        return await self._engine.run(unit)

    async def count_dead_letters(self) -> int:
        return await self._engine.run(
            lambda db: int(db.execute("SELECT COUNT(*) FROM inbox WHERE dead_at IS NOT NULL").fetchone()[0]))

    async def replay_dead_letter(self, item_id: int) -> str | None:
        def unit(db: sqlite3.Connection) -> str | None:
            row = db.execute(
                "UPDATE inbox SET processed=0, dead_at=NULL, attempts=0, not_before=NULL, replays=replays+1"
                " WHERE id=? AND dead_at IS NOT NULL RETURNING conversation_id",
                (item_id,),
            ).fetchone()
            return str(row[0]) if row else None

        return await self._engine.tx(unit)

    async def drop_dead_letter(self, item_id: int) -> str | None:
        def unit(db: sqlite3.Connection) -> str | None:
            row = db.execute(
                "UPDATE inbox SET dead_at=NULL WHERE id=? AND dead_at IS NOT NULL RETURNING conversation_id",
                (item_id,),
            ).fetchone()
            return str(row[0]) if row else None

        return await self._engine.tx(unit)

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
        return await self._engine.tx(lambda db: self._commit_turn(db, conversation, inbox_ids, events, outbound)[0])

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
        return await (self._engine.run(unit) if self._leases is not None else self._engine.tx(unit))

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

        return await self._engine.tx(unit)

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

        return await self._engine.tx(unit)

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

        return await self._engine.run(unit)

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

        return await self._engine.tx(unit)

    async def outbox_renew(self, outbound_id: str, token: str, lease_seconds: float) -> bool:
        return await self._engine.tx(lambda db: db.execute(
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
        return await self._engine.tx(self._fenced(
            "UPDATE outbox SET state='sent', platform_message_id=?, lease_owner=NULL, lease_until=NULL,"
            " lease_token=NULL, attempts=attempts+1, sent_at=? WHERE id=?",
            (platform_message_id, _now(), outbound_id), token))

    async def outbox_retry(
        self, outbound_id: str, not_before: datetime, error: str, *, token: str | None = None
    ) -> bool:
        return await self._engine.tx(self._fenced(
            "UPDATE outbox SET not_before=?, last_error=?, attempts=attempts+1, lease_owner=NULL, lease_until=NULL,"
            " lease_token=NULL WHERE id=? AND state='pending'",
            (_ts(not_before), error[:500], outbound_id), token))

    async def outbox_failed(self, outbound_id: str, error: str, *, token: str | None = None) -> bool:
        return await self._engine.tx(self._fenced(
            "UPDATE outbox SET state='failed', last_error=?, attempts=attempts+1, lease_owner=NULL, lease_until=NULL,"
            " lease_token=NULL WHERE id=?",
            (error[:500], outbound_id), token))

    async def get_outbox_item(self, outbound_id: str) -> OutboxItem | None:
        def unit(db: sqlite3.Connection) -> OutboxItem | None:
            row = db.execute("SELECT * FROM outbox WHERE id=?", (outbound_id,)).fetchone()
            return self._outbox(row) if row else None

        return await self._engine.run(unit)

    async def outbox_counts(self) -> dict[OutboxState, int]:
        def unit(db: sqlite3.Connection) -> dict[OutboxState, int]:
            counts = {state: 0 for state in OutboxState}
            for row in db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state"):
                counts[OutboxState(row[0])] = row[1]
            return counts

        return await self._engine.run(unit, bulk=True)

    async def find_by_platform_message(self, channel: str, platform_message_id: str) -> OutboxItem | None:
        def unit(db: sqlite3.Connection) -> OutboxItem | None:
            row = db.execute(
                "SELECT * FROM outbox WHERE platform_message_id=? AND channel=?", (platform_message_id, channel)
            ).fetchone()
            return self._outbox(row) if row else None

        return await self._engine.run(unit)

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

        return await self._engine.tx(unit)

    async def apply_parked_receipts(self, limit: int = 100) -> int:
        def unit(db: sqlite3.Connection) -> int:
            db.execute("DELETE FROM parked_receipts WHERE parked_at<?", (_now() - RECEIPT_TTL_SECONDS,))
            recorded = 0
            for row in db.execute("SELECT id, receipt FROM parked_receipts ORDER BY id LIMIT ?", (limit,)).fetchall():
                if self._record_receipt(db, codec.receipt_from_dict(orjson.loads(row["receipt"]))):
                    db.execute("DELETE FROM parked_receipts WHERE id=?", (row["id"],))
                    recorded += 1
            return recorded

        return await self._engine.tx(unit)

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
        return await self._engine.tx(lambda db: self._acquire_lease_row(db, name, owner, ttl_seconds))

    async def release_lease(self, name: str, owner: str) -> None:
        if self._leases is not None:
            if self._db is None:
                raise StoreUnavailable("store is not open")
            self._leases.release(name, owner)
            return
        await self._engine.tx(lambda db: self._drop_lease(db, name, owner))

    async def remember(self, key: str, ttl_seconds: float) -> bool:
        def unit(db: sqlite3.Connection) -> bool:
            now = _now()
            cursor = db.execute(
                "INSERT INTO seen (key, expires_at) VALUES (?,?)"
                " ON CONFLICT(key) DO UPDATE SET expires_at=excluded.expires_at WHERE seen.expires_at<=?",
                (key, now + ttl_seconds, now),
            )
            return cursor.rowcount == 1

        return await self._engine.tx(unit)

    async def kv_get(self, key: str) -> Any | None:
        def unit(db: sqlite3.Connection) -> Any | None:
            row = db.execute(
                "SELECT value FROM kv WHERE key=? AND (expires_at IS NULL OR expires_at>?)", (key, _now())
            ).fetchone()
            return json.loads(row[0]) if row else None

        return await self._engine.run(unit)

    async def kv_set(self, key: str, value: Any, ttl_seconds: float | None = None) -> None:
        expires = _now() + ttl_seconds if ttl_seconds is not None else None
        encoded = json.dumps(value)
        await self._engine.tx(lambda db: db.execute(
            "INSERT INTO kv (key, value, expires_at) VALUES (?,?,?)"
            " ON CONFLICT(key) DO UPDATE SET value=excluded.value, expires_at=excluded.expires_at",
            (key, encoded, expires),
        ))

    async def kv_delete(self, key: str) -> None:
        await self._engine.tx(lambda db: db.execute("DELETE FROM kv WHERE key=?", (key,)))

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

        return await self._engine.run(unit, bulk=True)

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

        await self._engine.tx(unit, bulk=True)
        # Push the overwritten pages out of the WAL into the main file and truncate the WAL,
        # so no copy of the erased text stays on disk.
        await self._engine.truncate_wal()

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

        return await self._engine.tx(unit, bulk=True)

    async def audit(self, entry: AuditEntry) -> None:
        at = entry.at or utcnow()
        await self._engine.tx(lambda db: db.execute(
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

        return await self._engine.run(unit)

    async def count_conversations(self, bot: str | None = None) -> int:
        def unit(db: sqlite3.Connection) -> int:
            if bot is None:
                return int(db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0])
            return int(db.execute("SELECT COUNT(*) FROM conversations WHERE bot=?", (bot,)).fetchone()[0])

        return await self._engine.run(unit, bulk=True)


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
