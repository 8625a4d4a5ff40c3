"""The inbox on MongoDB: `MongoInboxStore` (ingest, failed turns, dead letters)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from core.errors import NotFound
from core.model import Event, Inbound, Outbound
from core.store import codec
from core.store.mongo.connection import (
    ERROR_MAX,
    Doc,
    MongoConnection,
    Session,
    dt,
    guarded,
    us,
)
from core.store.mongo.transcript import write_turn
from core.store.ports import InboxStore
from core.store.records import DeadLetter, InboxItem


def inbox_item_from_doc(d: Doc) -> InboxItem:
    not_before = d.get("not_before")
    return InboxItem(d["_id"], d["conversation_id"], codec.inbound_from_dict(d["inbound"]), dt(d["received_at"]),
                     int(d.get("attempts", 0)), dt(not_before) if not_before is not None else None,
                     d.get("last_error"), int(d.get("replays", 0)))

class MongoInboxStore(InboxStore):
    """`InboxStore` on the connection's database."""

    def __init__(self, conn: MongoConnection) -> None:
        self._conn = conn

    @guarded
    async def ingest(self, conversation_id: str, inbound: Inbound) -> bool:
        db = self._conn.require()
        key = {"bot": inbound.bot, "channel": inbound.channel, "platform_message_id": inbound.platform_message_id}
        if await db.inbox.find_one(key, {"_id": 1}) is not None:
            return False  # cheap path for platform retries; the unique index decides races
        item_id = await self._conn.next_id("inbox")
        try:
            await db.inbox.insert_one({
                "_id": item_id, **key, "conversation_id": conversation_id,
                "inbound": codec.inbound_to_dict(inbound), "received_at": self._conn.now_us(), "processed": False,
            })
        except DuplicateKeyError:
            return False
        return True

    @guarded
    async def pending_inbox(self, conversation_id: str, limit: int = 50) -> list[InboxItem]:
        if limit <= 0:
            return []
        cursor = self._conn.require().inbox.find({"processed": False, "conversation_id": conversation_id})
        return [inbox_item_from_doc(d) async for d in cursor.sort("_id", ASCENDING).limit(limit)]

    @guarded
    async def conversations_with_pending_inbox(self, limit: int = 100) -> list[str]:
        if limit <= 0:
            return []
        cursor = await self._conn.require().inbox.aggregate([
            {"$match": {"processed": False}},
            {"$sort": {"conversation_id": 1, "_id": 1}},
            {"$group": {"_id": "$conversation_id", "first": {"$first": "$_id"},
                        "not_before": {"$first": "$not_before"}}},
            # A conversation whose oldest item backs off after a failed turn waits (missing = due).
            {"$match": {"$or": [{"not_before": None}, {"not_before": {"$lte": self._conn.now_us()}}]}},
            {"$sort": {"first": 1}},
            {"$limit": limit},
        ])
        return [d["_id"] async for d in cursor]

    @guarded
    async def inbox_retry(self, item_id: int, not_before: datetime, error: str) -> bool:
        result = await self._conn.require().inbox.update_one(
            {"_id": item_id, "processed": False},
            {"$set": {"not_before": us(not_before), "last_error": error[:ERROR_MAX]}, "$inc": {"attempts": 1}},
        )
        return result.modified_count == 1

    @guarded
    async def dead_letter(
        self, item_id: int, error: str, *, events: Sequence[Event] = (), outbound: Sequence[Outbound] = ()
    ) -> bool:
        async def unit(session: Session) -> bool:
            db = self._conn.require()
            item = await db.inbox.find_one_and_update(
                {"_id": item_id, "processed": False},
                {"$set": {"processed": True, "dead_at": self._conn.now_us(), "not_before": None, "last_error": error[:ERROR_MAX]},
                 "$inc": {"attempts": 1}},
                session=session,
            )
            if item is None:
                return False
            if events or outbound:
                counters = await db.conversations.find_one_and_update(
                    {"_id": item["conversation_id"]}, {"$inc": {"last_seq": len(events), "last_oseq": len(outbound)}},
                    return_document=ReturnDocument.AFTER, session=session,
                )
                if counters is None:
                    raise NotFound(f"conversation {item['conversation_id']}")
                await write_turn(self._conn, item["conversation_id"], counters["bot"], counters, events, outbound, session)
            return True

        return await self._conn.atomic(unit)

    @guarded
    async def dead_letters(self, *, bot: str | None = None, limit: int = 100) -> list[DeadLetter]:
        if limit <= 0:
            return []
        query: Doc = {"dead_at": {"$exists": True}}
        if bot is not None:
            query["bot"] = bot
        cursor = self._conn.require().inbox.find(query).sort([("dead_at", ASCENDING), ("_id", ASCENDING)]).limit(limit)
        return [DeadLetter(inbox_item_from_doc(d), d["bot"], d.get("last_error") or "", dt(d["dead_at"]))
                async for d in cursor]

    @guarded
    async def count_dead_letters(self) -> int:
        return int(await self._conn.require().inbox.count_documents({"dead_at": {"$exists": True}}))

    @guarded
    async def replay_dead_letter(self, item_id: int) -> str | None:
        doc = await self._conn.require().inbox.find_one_and_update(
            {"_id": item_id, "dead_at": {"$exists": True}},
            {"$set": {"processed": False, "attempts": 0, "not_before": None}, "$unset": {"dead_at": ""},
             "$inc": {"replays": 1}},
        )
        return str(doc["conversation_id"]) if doc else None

    @guarded
    async def drop_dead_letter(self, item_id: int) -> str | None:
        doc = await self._conn.require().inbox.find_one_and_update(
            {"_id": item_id, "dead_at": {"$exists": True}}, {"$unset": {"dead_at": ""}},
        )
        return str(doc["conversation_id"]) if doc else None
