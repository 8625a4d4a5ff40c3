"""Privacy and audit on SQLite: `SQLitePrivacyStore` (export, forget, purge) and `SQLiteAuditStore`."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import Any

from core.store import codec
from core.store.ports import AuditStore, PrivacyStore
from core.store.records import AuditEntry
from core.store.sqlite.contacts import contact_from_row
from core.store.sqlite.conversations import conversation_from_row
from core.store.sqlite.encoding import from_ts, ts
from core.store.sqlite.engine import SQLiteEngine
from core.store.sqlite.transcript import event_from_row


class SQLitePrivacyStore(PrivacyStore):
    """`PrivacyStore` on the engine's file: bulk units, on the engine's worker thread."""

    def __init__(self, engine: SQLiteEngine) -> None:
        self._engine = engine

    async def export_contact(self, contact_id: str) -> dict[str, Any]:
        def unit(db: sqlite3.Connection) -> dict[str, Any]:
            row = db.execute("SELECT * FROM contacts WHERE id=? AND deleted=0", (contact_id,)).fetchone()
            if row is None:
                return {}
            contact = contact_from_row(db, row)
            conversations = []
            for conv_row in db.execute("SELECT * FROM conversations WHERE contact_id=?", (contact_id,)).fetchall():
                conv = conversation_from_row(conv_row)
                events = db.execute(
                    "SELECT * FROM events WHERE conversation_id=? ORDER BY seq", (conv.id,)
                ).fetchall()
                outbox = db.execute(
                    "SELECT * FROM outbox WHERE conversation_id=? ORDER BY seq", (conv.id,)
                ).fetchall()
                conversations.append({
                    **codec.conversation_to_dict(conv),
                    "transcript": [codec.event_to_dict(event_from_row(e)) for e in events],
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
        """In chunks of `PURGE_CHUNK` rows, each its own unit on the worker thread: a purge over a
        large store used to scan whole tables in one unit, and the turns waited for it (the store
        runs one unit at a time). A purge stopped half-way is finished by the next one."""
        cutoff = ts(older_than)
        # Message text also lives in processed inbox items and finished outbox items.
        await self._by_key_range("inbox", "id", (
            "UPDATE inbox SET payload=json_set(payload, '$.text', '', '$.attachments', json('[]'))"
            " WHERE id>? AND id<=? AND bot=? AND processed=1 AND received_at<?"), (bot, cutoff))
        await self._by_key_range("outbox", "seq", (
            "UPDATE outbox SET payload=json_set(payload, '$.text', '', '$.buttons', json('[]'),"
            " '$.attachments', json('[]')) WHERE seq>? AND seq<=? AND bot=? AND state!='pending' AND created_at<?"),
            (bot, cutoff))
        deleted = 0
        while True:  # old events through their time index, a chunk at a time
            count = await self._engine.tx(lambda db: db.execute(
                "DELETE FROM events WHERE (conversation_id, seq) IN (SELECT conversation_id, seq FROM events"
                " WHERE ts<? AND conversation_id IN (SELECT id FROM conversations WHERE bot=?) LIMIT ?)",
                (cutoff, bot, PURGE_CHUNK),
            ).rowcount, bulk=True)
            deleted += count
            if count < PURGE_CHUNK:
                return deleted

    async def _by_key_range(self, table: str, key: str, sql: str, args: tuple[Any, ...]) -> None:
        """Run ``sql`` (its first two parameters: a key range) over ``table`` a key window at a time."""
        top = await self._engine.run(lambda db: db.execute(f"SELECT MAX({key}) FROM {table}").fetchone()[0] or 0)
        def chunk(low: int) -> Callable[[sqlite3.Connection], object]:
            return lambda db: db.execute(sql, (low, low + PURGE_CHUNK, *args))

        for low in range(0, int(top), PURGE_CHUNK):
            await self._engine.tx(chunk(low), bulk=True)


PURGE_CHUNK = 5_000  # rows a purge unit scans or deletes at most (a few milliseconds)


class SQLiteAuditStore(AuditStore):
    """`AuditStore` on the engine's file."""

    def __init__(self, engine: SQLiteEngine) -> None:
        self._engine = engine

    async def audit(self, entry: AuditEntry) -> None:
        at = entry.at or self._engine.clock.now()
        await self._engine.tx(lambda db: db.execute(
            "INSERT INTO audit (bot, actor, action, target, detail, at) VALUES (?,?,?,?,?,?)",
            (entry.bot, entry.actor, entry.action, entry.target, json.dumps(entry.detail), ts(at)),
        ))

    async def audit_log(self, *, bot: str | None = None, limit: int = 100) -> list[AuditEntry]:
        def unit(db: sqlite3.Connection) -> list[AuditEntry]:
            if bot is None:
                rows = db.execute("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
            else:
                rows = db.execute("SELECT * FROM audit WHERE bot=? ORDER BY id DESC LIMIT ?", (bot, limit)).fetchall()
            return [
                AuditEntry(r["actor"], r["action"], r["target"], json.loads(r["detail"]), from_ts(r["at"]), r["bot"])
                for r in rows
            ]

        return await self._engine.run(unit)
