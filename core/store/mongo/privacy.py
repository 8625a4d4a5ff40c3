"""Privacy and audit on MongoDB: `MongoPrivacyStore` (export, forget, purge) and `MongoAuditStore`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING

from core.model import ConversationStatus
from core.store import codec
from core.store.mongo.connection import MongoConnection, Session, dt, guarded, us
from core.store.mongo.contacts import contact_from_doc
from core.store.mongo.conversations import conversation_from_doc
from core.store.mongo.transcript import event_from_doc
from core.store.ports import AuditStore, PrivacyStore
from core.store.records import AuditEntry, OutboxState


class MongoPrivacyStore(PrivacyStore):
    """`PrivacyStore` on the connection's database."""

    def __init__(self, conn: MongoConnection) -> None:
        self._conn = conn

    @guarded
    async def export_contact(self, contact_id: str) -> dict[str, Any]:
        db = self._conn.require()
        doc = await db.contacts.find_one({"_id": contact_id, "deleted": False})
        if doc is None:
            return {}
        contact = await contact_from_doc(self._conn, doc)
        conversations = []
        async for conv_doc in db.conversations.find({"contact_id": contact_id}):
            conv = conversation_from_doc(conv_doc)
            events = db.events.find({"conversation_id": conv.id}).sort("seq", ASCENDING)
            outbox = db.outbox.find({"conversation_id": conv.id}).sort("oseq", ASCENDING)
            conversations.append({
                **codec.conversation_to_dict(conv),
                "transcript": [codec.event_to_dict(event_from_doc(e)) async for e in events],
                "deliveries": [
                    {"id": o["_id"], "state": o["state"], "platform_message_id": o.get("platform_message_id")}
                    async for o in outbox
                ],
            })
        return {"contact": codec.contact_to_dict(contact), "conversations": conversations}

    @guarded
    async def forget_contact(self, contact_id: str) -> None:
        async def unit(session: Session) -> None:
            db = self._conn.require()
            conv_ids = [d["_id"] async for d in db.conversations.find({"contact_id": contact_id}, {"_id": 1},
                                                                     session=session)]
            await db.contacts.update_one(
                {"_id": contact_id},
                {"$set": {"display_name": None, "phone": None, "last_agent": None, "deleted": True, "consent": False}},
                session=session,
            )
            await db.identities.delete_many({"contact_id": contact_id}, session=session)
            scope = {"conversation_id": {"$in": conv_ids}}
            await db.events.update_many(scope, {"$set": {"data": "{}"}}, session=session)
            # Platform ids may embed a session or a phone number: each becomes "forgotten:<item id>"
            # (still unique, so the de-duplication index keeps working).
            async for item in db.inbox.find(scope, {"_id": 1}, session=session):
                forgotten = f"forgotten:{item['_id']}"
                await db.inbox.update_one(
                    {"_id": item["_id"]},
                    {"$set": {"processed": True, "platform_message_id": forgotten,
                              "inbound.platform_message_id": forgotten, "inbound.text": "",
                              "inbound.button_payload": None, "inbound.attachments": [], "inbound.shared_phone": None,
                              "inbound.display_name": None, "inbound.language_hint": None,
                              "inbound.channel_user_id": "", "inbound.chat_id": "",
                              "inbound.timestamp": "1970-01-01T00:00:00+00:00", "last_error": None},
                     "$unset": {"dead_at": ""}},
                    session=session,
                )
            await db.outbox.update_many(
                scope,
                {"$set": {"outbound.text": "", "outbound.chat_id": "", "outbound.buttons": [],
                          "outbound.attachments": []}},
                session=session,
            )
            await db.outbox.update_many(
                {**scope, "state": OutboxState.PENDING.value},
                {"$set": {"state": OutboxState.FAILED.value, "last_error": "contact forgotten"}},
                session=session,
            )
            await db.conversations.update_many(
                {"_id": {"$in": conv_ids}},
                {"$set": {"slots": "{}", "language": None, "active_form": None, "desk_thread": None,
                          "status": ConversationStatus.CLOSED.value, "updated_at": self._conn.now_us()},
                 "$inc": {"version": 1}},
                session=session,
            )

        await self._conn.atomic(unit)

    @guarded
    async def purge_transcripts(self, bot: str, older_than: datetime) -> int:
        db = self._conn.require()
        cutoff = us(older_than)
        # Message text also lives in processed inbox items and finished outbox items.
        await db.inbox.update_many(
            {"bot": bot, "processed": True, "received_at": {"$lt": cutoff}},
            {"$set": {"inbound.text": "", "inbound.attachments": []}},
        )
        await db.outbox.update_many(
            {"bot": bot, "state": {"$ne": OutboxState.PENDING.value}, "created_at": {"$lt": cutoff}},
            {"$set": {"outbound.text": "", "outbound.buttons": [], "outbound.attachments": []}},
        )
        result = await db.events.delete_many({"bot": bot, "ts": {"$lt": cutoff}})
        return int(result.deleted_count)


class MongoAuditStore(AuditStore):
    """`AuditStore` on the connection's database."""

    def __init__(self, conn: MongoConnection) -> None:
        self._conn = conn

    @guarded
    async def audit(self, entry: AuditEntry) -> None:
        at = entry.at or self._conn.clock.now()
        await self._conn.require().audit.insert_one({
            "_id": await self._conn.next_id("audit"), "bot": entry.bot, "actor": entry.actor, "action": entry.action,
            "target": entry.target, "detail": json.dumps(entry.detail), "at": us(at),
        })

    @guarded
    async def audit_log(self, *, bot: str | None = None, limit: int = 100) -> list[AuditEntry]:
        if limit <= 0:
            return []
        query = {} if bot is None else {"bot": bot}
        cursor = self._conn.require().audit.find(query).sort("_id", DESCENDING).limit(limit)
        return [
            AuditEntry(d["actor"], d["action"], d["target"], json.loads(d["detail"]), dt(d["at"]), d.get("bot"))
            async for d in cursor
        ]
