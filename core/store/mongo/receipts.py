"""Delivery receipts on MongoDB (`MongoReceiptStore`): recorded on the transcript, then remembered."""

from __future__ import annotations

from typing import Any

import structlog
from pymongo import ASCENDING, ReturnDocument

from core.errors import NotFound
from core.model import DeliveryReceipt
from core.store import codec
from core.store.mongo.connection import MongoConnection, Session, guarded
from core.store.mongo.coordination import MongoKeyValueStore
from core.store.mongo.outbox import outbox_from_doc
from core.store.mongo.transcript import write_turn
from core.store.ports import ReceiptStore
from core.store.records import (
    RECEIPT_TTL_SECONDS,
    OutboxItem,
    ReceiptOutcome,
    receipt_event,
    receipt_key,
)

log = structlog.get_logger("core.store.mongo")


class _NotYet(Exception):
    """A parked receipt's message still has no platform id (rolls the unit back)."""


async def _record(conn: MongoConnection, receipt: DeliveryReceipt, session: Session) -> bool:
    item = await conn.require().outbox.find_one(
        {"channel": receipt.channel, "platform_message_id": receipt.platform_message_id},
        {"_id": 1, "conversation_id": 1}, session=session,
    )
    if item is None:
        return False
    counters = await conn.require().conversations.find_one_and_update(
        {"_id": item["conversation_id"]}, {"$inc": {"last_seq": 1, "last_oseq": 0}},
        return_document=ReturnDocument.AFTER, session=session,
    )
    if counters is None:
        raise NotFound(f"conversation {item['conversation_id']}")
    await write_turn(conn, item["conversation_id"], counters["bot"], counters,
                           [receipt_event(receipt, item["_id"])], [], session)
    return True

class MongoReceiptStore(ReceiptStore):
    """`ReceiptStore` on the connection's database."""

    def __init__(self, conn: MongoConnection, kv: MongoKeyValueStore) -> None:
        self._conn = conn
        self._kv = kv

    @guarded
    async def find_by_platform_message(self, channel: str, platform_message_id: str) -> OutboxItem | None:
        doc = await self._conn.require().outbox.find_one({"channel": channel, "platform_message_id": platform_message_id})
        return outbox_from_doc(doc) if doc else None

    @guarded
    async def record_receipt(self, receipt: DeliveryReceipt) -> ReceiptOutcome:
        key = receipt_key(receipt)
        db = self._conn.require()
        if await db.seen.find_one({"_id": key, "expires_at": {"$gt": self._conn.now_us()}}, {"_id": 1}) is not None:
            return ReceiptOutcome.DUPLICATE

        async def unit(session: Session) -> ReceiptOutcome:
            if await _record(self._conn, receipt, session):
                return ReceiptOutcome.RECORDED
            await db.parked_receipts.insert_one(
                {"channel": receipt.channel, "platform_message_id": receipt.platform_message_id,
                 "receipt": codec.receipt_to_dict(receipt), "parked_at": self._conn.now_us()},
                session=session,
            )
            return ReceiptOutcome.PARKED

        outcome = await self._conn.atomic(unit)
        # Remembered only once recorded (or parked): a failure before this point leaves the
        # platform's retry to record it. Two copies racing here may both be recorded.
        if not await self._kv.remember(key, RECEIPT_TTL_SECONDS):
            log.info("store.receipt_raced", channel=receipt.channel)
        return outcome

    @guarded
    async def apply_parked_receipts(self, limit: int = 100) -> int:
        db = self._conn.require()
        await db.parked_receipts.delete_many({"parked_at": {"$lt": self._conn.now_us() - int(RECEIPT_TTL_SECONDS * 1_000_000)}})
        recorded = 0
        async for parked in db.parked_receipts.find().sort("_id", ASCENDING).limit(limit):
            receipt = codec.receipt_from_dict(parked["receipt"])

            async def unit(session: Session, parked_id: Any = parked["_id"], receipt: DeliveryReceipt = receipt) -> bool:
                # Deleting first decides between processes applying the same parked receipt.
                gone = await db.parked_receipts.delete_one({"_id": parked_id}, session=session)
                if gone.deleted_count != 1:
                    return False
                if not await _record(self._conn, receipt, session):
                    raise _NotYet
                return True

            try:
                recorded += await self._conn.atomic(unit)
            except _NotYet:
                if not self._conn.transactions:  # put it back: no transaction undid the delete
                    await db.parked_receipts.insert_one(parked)
        return recorded
