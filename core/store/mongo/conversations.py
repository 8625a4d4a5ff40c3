"""Conversations (and their desk threads) on MongoDB: the operations and `MongoConversationStore`."""

from __future__ import annotations

import json
from collections.abc import Sequence

from pymongo import DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from core.errors import ConcurrencyConflict
from core.model import Conversation, ConversationStatus, new_id
from core.store.mongo.connection import Doc, MongoConnection, Session, dt, guarded
from core.store.ports import ConversationStore


def conversation_from_doc(doc: Doc) -> Conversation:
    return Conversation(
        id=doc["_id"],
        bot=doc["bot"],
        contact_id=doc["contact_id"],
        status=ConversationStatus(doc["status"]),
        assigned_agent=doc.get("assigned_agent"),
        desk_thread=doc.get("desk_thread"),
        language=doc.get("language"),
        slots=json.loads(doc.get("slots") or "{}"),
        active_form=doc.get("active_form"),
        handoff_reason=doc.get("handoff_reason"),
        version=int(doc["version"]),
        created_at=dt(doc["created_at"]),
        updated_at=dt(doc["updated_at"]),
    )


def conversation_fields(c: Conversation) -> Doc:
    return {
        "status": c.status.value,
        "assigned_agent": c.assigned_agent,
        "desk_thread": c.desk_thread,
        "language": c.language,
        "slots": json.dumps(c.slots),
        "active_form": c.active_form,
        "handoff_reason": c.handoff_reason,
    }


async def conversation_for(conn: MongoConnection, bot: str, contact_id: str, session: Session = None) -> Conversation:
    db = conn.require()
    doc = await db.conversations.find_one({"bot": bot, "contact_id": contact_id}, session=session)
    if doc is None:
        now = conn.now_us()
        fresh = Conversation(id=new_id("conv"), bot=bot, contact_id=contact_id)
        doc = {
            "_id": fresh.id, "bot": bot, "contact_id": contact_id, **conversation_fields(fresh),
            "version": 0, "last_seq": 0, "last_oseq": 0, "created_at": now, "updated_at": now,
        }
        try:
            await db.conversations.insert_one(doc, session=session)
        except DuplicateKeyError:
            doc = await db.conversations.find_one({"bot": bot, "contact_id": contact_id}, session=session)
            assert doc is not None
    return conversation_from_doc(doc)


async def save(conn: MongoConnection, c: Conversation, inc: Doc, session: Session) -> tuple[Conversation, Doc]:
    """The version-checked write every turn goes through; raises `ConcurrencyConflict`."""
    now = conn.now_us()
    doc = await conn.require().conversations.find_one_and_update(
        {"_id": c.id, "version": c.version},
        {"$set": {**conversation_fields(c), "updated_at": now}, "$inc": {"version": 1, **inc}},
        return_document=ReturnDocument.AFTER, session=session,
    )
    if doc is None:
        raise ConcurrencyConflict(f"conversation {c.id} changed since version {c.version}")
    return c.evolve(version=c.version + 1, updated_at=dt(now)), doc

class MongoConversationStore(ConversationStore):
    """`ConversationStore` on the connection's database."""

    def __init__(self, conn: MongoConnection) -> None:
        self._conn = conn

    @guarded
    async def conversation_for(self, bot: str, contact_id: str) -> Conversation:
        return await conversation_for(self._conn, bot, contact_id)

    @guarded
    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        doc = await self._conn.require().conversations.find_one({"_id": conversation_id})
        return conversation_from_doc(doc) if doc else None

    @guarded
    async def find_conversation_by_thread(self, bot: str, desk_thread: str) -> Conversation | None:
        doc = await self._conn.require().conversations.find_one({"bot": bot, "desk_thread": desk_thread})
        return conversation_from_doc(doc) if doc else None

    @guarded
    async def list_conversations(
        self,
        bot: str | None = None,
        statuses: Sequence[ConversationStatus] | None = None,
        limit: int = 100,
    ) -> list[Conversation]:
        if limit <= 0:
            return []  # MongoDB reads limit 0 as "no limit"
        query: Doc = {}
        if bot is not None:
            query["bot"] = bot
        if statuses:
            query["status"] = {"$in": [s.value for s in statuses]}
        cursor = self._conn.require().conversations.find(query).sort([("updated_at", DESCENDING), ("_id", DESCENDING)])
        return [conversation_from_doc(d) async for d in cursor.limit(limit)]

    @guarded
    async def save_conversation(self, conversation: Conversation) -> Conversation:
        saved, _ = await save(self._conn, conversation, {}, None)
        return saved

    @guarded
    async def count_conversations(self, bot: str | None = None) -> int:
        return int(await self._conn.require().conversations.count_documents({} if bot is None else {"bot": bot}))
