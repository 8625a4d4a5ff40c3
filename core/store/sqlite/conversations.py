"""Conversations (and their desk threads) on SQLite: the operations and `SQLiteConversationStore`."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import orjson

from core.errors import ConcurrencyConflict
from core.model import Conversation, ConversationStatus, new_id
from core.store.ports import ConversationStore
from core.store.sqlite.encoding import dumps, from_ts
from core.store.sqlite.engine import SQLiteEngine


def conversation_from_row(row: sqlite3.Row) -> Conversation:
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
        created_at=from_ts(row["created_at"]),
        updated_at=from_ts(row["updated_at"]),
    )


def read_conversation(db: sqlite3.Connection, conversation_id: str) -> Conversation | None:
    row = db.execute("SELECT * FROM conversations WHERE id=?", (conversation_id,)).fetchone()
    return conversation_from_row(row) if row else None


def conversation_id_for(db: sqlite3.Connection, bot: str, contact_id: str, *, at: float) -> str:
    """The id of the contact's conversation with ``bot``, created (at ``at``) on first use."""
    row = db.execute("SELECT id FROM conversations WHERE bot=? AND contact_id=?", (bot, contact_id)).fetchone()
    if row is not None:
        return str(row[0])
    db.execute(
        "INSERT OR IGNORE INTO conversations (id, bot, contact_id, status, slots, version, created_at, updated_at)"
        " VALUES (?,?,?,?,?,0,?,?)",
        (new_id("conv"), bot, contact_id, ConversationStatus.BOT.value, "{}", at, at),
    )
    row = db.execute("SELECT id FROM conversations WHERE bot=? AND contact_id=?", (bot, contact_id)).fetchone()
    return str(row[0])


def conversation_for(db: sqlite3.Connection, bot: str, contact_id: str, *, at: float) -> Conversation:
    conversation_id = conversation_id_for(db, bot, contact_id, at=at)
    return conversation_from_row(db.execute("SELECT * FROM conversations WHERE id=?", (conversation_id,)).fetchone())


def save(db: sqlite3.Connection, c: Conversation, appended: int = 0, *, at: float) -> tuple[Conversation, int]:
    """Write ``c`` (updated ``at``) if it is still the stored version, reserving ``appended``
    event seqs; the saved conversation and its last seq."""
    row = db.execute(
        "UPDATE conversations SET status=?, assigned_agent=?, desk_thread=?, language=?, slots=?,"
        " active_form=?, handoff_reason=?, version=version+1, last_seq=last_seq+?, updated_at=?"
        " WHERE id=? AND version=? RETURNING last_seq",
        (c.status.value, c.assigned_agent, c.desk_thread, c.language, dumps(c.slots),
         c.active_form, c.handoff_reason, appended, at, c.id, c.version),
    ).fetchone()
    if row is None:
        raise ConcurrencyConflict(f"conversation {c.id} changed since version {c.version}")
    return c.evolve(version=c.version + 1, updated_at=from_ts(at)), int(row[0])


class SQLiteConversationStore(ConversationStore):
    """`ConversationStore` on the engine's file."""

    def __init__(self, engine: SQLiteEngine) -> None:
        self._engine = engine

    async def conversation_for(self, bot: str, contact_id: str) -> Conversation:
        return await self._engine.tx(lambda db: conversation_for(db, bot, contact_id, at=self._engine.clock.time()))

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        return await self._engine.run(lambda db: read_conversation(db, conversation_id))

    async def find_conversation_by_thread(self, bot: str, desk_thread: str) -> Conversation | None:
        def unit(db: sqlite3.Connection) -> Conversation | None:
            row = db.execute(
                "SELECT * FROM conversations WHERE bot=? AND desk_thread=?", (bot, desk_thread)
            ).fetchone()
            return conversation_from_row(row) if row else None

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
            return [conversation_from_row(r) for r in db.execute(sql, args)]

        return await self._engine.run(unit)

    async def save_conversation(self, conversation: Conversation) -> Conversation:
        return await self._engine.tx(lambda db: save(db, conversation, at=self._engine.clock.time())[0])

    async def count_conversations(self, bot: str | None = None) -> int:
        def unit(db: sqlite3.Connection) -> int:
            if bot is None:
                return int(db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0])
            return int(db.execute("SELECT COUNT(*) FROM conversations WHERE bot=?", (bot,)).fetchone()[0])

        return await self._engine.run(unit, bulk=True)
