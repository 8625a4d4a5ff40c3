"""Delivery receipts on SQLite (`SQLiteReceiptStore`): recorded on the transcript, then remembered, in one unit."""

from __future__ import annotations

import sqlite3

import orjson

from core.model import DeliveryReceipt
from core.store import codec
from core.store.ports import ReceiptStore
from core.store.records import (
    RECEIPT_TTL_SECONDS,
    OutboxItem,
    ReceiptOutcome,
    receipt_event,
    receipt_key,
)
from core.store.sqlite.coordination import remember
from core.store.sqlite.encoding import dumps
from core.store.sqlite.engine import SQLiteEngine
from core.store.sqlite.outbox import outbox_from_row
from core.store.sqlite.transcript import append


def _record(db: sqlite3.Connection, receipt: DeliveryReceipt) -> bool:
    row = db.execute("SELECT id, conversation_id FROM outbox WHERE platform_message_id=? AND channel=?",
                     (receipt.platform_message_id, receipt.channel)).fetchone()
    if row is None:
        return False
    append(db, row["conversation_id"], [receipt_event(receipt, row["id"])])
    return True


class SQLiteReceiptStore(ReceiptStore):
    """`ReceiptStore` on the engine's file."""

    def __init__(self, engine: SQLiteEngine) -> None:
        self._engine = engine

    async def find_by_platform_message(self, channel: str, platform_message_id: str) -> OutboxItem | None:
        def unit(db: sqlite3.Connection) -> OutboxItem | None:
            row = db.execute(
                "SELECT * FROM outbox WHERE platform_message_id=? AND channel=?", (platform_message_id, channel)
            ).fetchone()
            return outbox_from_row(row) if row else None

        return await self._engine.run(unit)

    async def record_receipt(self, receipt: DeliveryReceipt) -> ReceiptOutcome:
        key = receipt_key(receipt)

        def unit(db: sqlite3.Connection) -> ReceiptOutcome:
            at = self._engine.clock.time()
            if db.execute("SELECT 1 FROM seen WHERE key=? AND expires_at>?", (key, at)).fetchone():
                return ReceiptOutcome.DUPLICATE
            if _record(db, receipt):
                outcome = ReceiptOutcome.RECORDED
            else:
                db.execute("INSERT INTO parked_receipts (channel, platform_message_id, receipt, parked_at)"
                           " VALUES (?,?,?,?)",
                           (receipt.channel, receipt.platform_message_id, dumps(codec.receipt_to_dict(receipt)), at))
                outcome = ReceiptOutcome.PARKED
            remember(db, key, RECEIPT_TTL_SECONDS, at=at)  # last: in the same transaction as the record
            return outcome

        return await self._engine.tx(unit)

    async def apply_parked_receipts(self, limit: int = 100) -> int:
        def unit(db: sqlite3.Connection) -> int:
            db.execute("DELETE FROM parked_receipts WHERE parked_at<?", (self._engine.clock.time() - RECEIPT_TTL_SECONDS,))
            recorded = 0
            for row in db.execute("SELECT id, receipt FROM parked_receipts ORDER BY id LIMIT ?", (limit,)).fetchall():
                if _record(db, codec.receipt_from_dict(orjson.loads(row["receipt"]))):
                    db.execute("DELETE FROM parked_receipts WHERE id=?", (row["id"],))
                    recorded += 1
            return recorded

        return await self._engine.tx(unit)
