"""The inbox on SQLite: the operations (ingest, read an item) and `SQLiteInboxStore` (failed turns, dead letters)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from core.model import Event, Inbound, Outbound
from core.store import codec
from core.store.ports import InboxStore
from core.store.records import DeadLetter, InboxItem
from core.store.sqlite.encoding import dumps, from_ts, ts
from core.store.sqlite.engine import SQLiteEngine
from core.store.sqlite.outbox import enqueue
from core.store.sqlite.transcript import append

INBOX_COLUMNS = "id, conversation_id, payload, received_at, attempts, not_before, last_error, replays"


def inbox_item_from_row(row: sqlite3.Row) -> InboxItem:
    return InboxItem(row["id"], row["conversation_id"], codec.inbound_from_dict(orjson.loads(row["payload"])),
                     from_ts(row["received_at"]), row["attempts"],
                     from_ts(row["not_before"]) if row["not_before"] is not None else None,
                     row["last_error"], row["replays"])


def encode_inbound(inbound: Inbound) -> str:
    """The payload column of ``inbound`` (encode it before the unit: off the batch's time)."""
    return dumps(codec.inbound_to_dict(inbound))


def ingest(db: sqlite3.Connection, conversation_id: str, inbound: Inbound, payload: str, *, at: float) -> bool:
    """Insert the message (received ``at``) unless (bot, channel, platform id) was seen before; True if inserted."""
    cursor = db.execute(
        "INSERT OR IGNORE INTO inbox (conversation_id, bot, channel, platform_message_id, payload, received_at)"
        " VALUES (?,?,?,?,?,?)",
        (conversation_id, inbound.bot, inbound.channel, inbound.platform_message_id, payload, at),
    )
    return cursor.rowcount == 1


class SQLiteInboxStore(InboxStore):
    """`InboxStore` on the engine's file."""

    def __init__(self, engine: SQLiteEngine) -> None:
        self._engine = engine

    async def ingest(self, conversation_id: str, inbound: Inbound) -> bool:
        payload = encode_inbound(inbound)
        return await self._engine.tx(lambda db: ingest(db, conversation_id, inbound, payload, at=self._engine.clock.time()))

    async def pending_inbox(self, conversation_id: str, limit: int = 50) -> list[InboxItem]:
        def unit(db: sqlite3.Connection) -> list[InboxItem]:
            rows = db.execute(
                f"SELECT {INBOX_COLUMNS} FROM inbox"
                " WHERE conversation_id=? AND processed=0 ORDER BY id LIMIT ?",
                (conversation_id, limit),
            ).fetchall()
            return [inbox_item_from_row(r) for r in rows]

        return await self._engine.run(unit)

    async def conversations_with_pending_inbox(self, limit: int = 100) -> list[str]:
        def unit(db: sqlite3.Connection) -> list[str]:
            # The grouping reads only the inbox_pending index; the head's row is looked up by id.
            rows = db.execute(
                "SELECT g.conversation_id FROM ("
                "  SELECT conversation_id, MIN(id) AS first FROM inbox WHERE processed=0 GROUP BY conversation_id"
                ") g WHERE NOT EXISTS (SELECT 1 FROM inbox h WHERE h.id=g.first AND h.not_before>?)"
                " ORDER BY g.first LIMIT ?",
                (self._engine.clock.time(), limit),
            ).fetchall()
            return [r[0] for r in rows]

        return await self._engine.run(unit)

    # -- failed turns and dead letters ----------------------------------------------------
    async def inbox_retry(self, item_id: int, not_before: datetime, error: str) -> bool:
        return await self._engine.tx(lambda db: db.execute(
            "UPDATE inbox SET attempts=attempts+1, not_before=?, last_error=? WHERE id=? AND processed=0",
            (ts(not_before), error[:500], item_id),
        ).rowcount == 1)

    async def dead_letter(
        self, item_id: int, error: str, *, events: Sequence[Event] = (), outbound: Sequence[Outbound] = ()
    ) -> bool:
        def unit(db: sqlite3.Connection) -> bool:
            row = db.execute(
                "UPDATE inbox SET processed=1, dead_at=?, attempts=attempts+1, not_before=NULL, last_error=?"
                " WHERE id=? AND processed=0 RETURNING conversation_id",
                (self._engine.clock.time(), error[:500], item_id),
            ).fetchone()
            if row is None:
                return False
            append(db, row[0], events)
            enqueue(db, outbound)
            return True

        return await self._engine.tx(unit)

    async def dead_letters(self, *, bot: str | None = None, limit: int = 100) -> list[DeadLetter]:
        def unit(db: sqlite3.Connection) -> list[DeadLetter]:
            query = f"SELECT {INBOX_COLUMNS}, bot, dead_at FROM inbox WHERE dead_at IS NOT NULL"
            args: tuple[Any, ...] = (limit,)
            if bot is not None:
                query += " AND bot=?"
                args = (bot, limit)
            rows = db.execute(query + " ORDER BY dead_at, id LIMIT ?", args).fetchall()
            return [DeadLetter(inbox_item_from_row(r), r["bot"], r["last_error"] or "", from_ts(r["dead_at"]))
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
