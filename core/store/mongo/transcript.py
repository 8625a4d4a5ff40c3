"""Transcripts on MongoDB: the operations (write a turn's events and replies) and `MongoTranscriptStore`."""

from __future__ import annotations

import json
from collections.abc import Sequence

from pymongo import ASCENDING, DESCENDING, ReturnDocument

from core.errors import NotFound
from core.model import Event, Outbound
from core.store import codec
from core.store.mongo.connection import Doc, MongoConnection, Session, dt, guarded, us
from core.store.ports import TranscriptStore
from core.store.records import OutboxState


def event_from_doc(doc: Doc) -> Event:
    return Event(
        type=doc["type"], data=json.loads(doc["data"]), channel=doc.get("channel"),
        timestamp=dt(doc["ts"]), seq=int(doc["seq"]),
    )


async def write_turn(
    conn: MongoConnection, conversation_id: str, bot: str, counters: Doc, events: Sequence[Event],
    outbound: Sequence[Outbound], session: Session,
) -> list[Event]:
    """Insert events and outbox items numbered from the counters the caller just advanced."""
    db = conn.require()
    first_seq = int(counters["last_seq"]) - len(events) + 1
    stored = [Event(e.type, e.data, e.channel, e.timestamp, first_seq + i) for i, e in enumerate(events)]
    if stored:
        await db.events.insert_many(
            [{"conversation_id": conversation_id, "bot": bot, "seq": e.seq, "type": e.type, "channel": e.channel,
              "ts": us(e.timestamp), "data": json.dumps(e.data)} for e in stored],
            session=session,
        )
    first_oseq = int(counters["last_oseq"]) - len(outbound) + 1
    if outbound:
        await db.outbox.insert_many(
            [{"_id": o.id, "conversation_id": o.conversation_id, "bot": o.bot, "channel": o.channel,
              "outbound": codec.outbound_to_dict(o), "state": OutboxState.PENDING.value, "attempts": 0,
              "not_before": 0, "last_error": None, "platform_message_id": None, "lease_owner": None,
              "lease_until": 0, "created_at": us(o.created_at), "oseq": first_oseq + i}
             for i, o in enumerate(outbound)],
            session=session,
        )
    return stored

class MongoTranscriptStore(TranscriptStore):
    """`TranscriptStore` on the connection's database."""

    def __init__(self, conn: MongoConnection) -> None:
        self._conn = conn

    @guarded
    async def append_events(
        self, conversation_id: str, events: Sequence[Event], outbound: Sequence[Outbound] = ()
    ) -> list[Event]:
        async def unit(session: Session) -> list[Event]:
            counters = await self._conn.require().conversations.find_one_and_update(
                {"_id": conversation_id}, {"$inc": {"last_seq": len(events), "last_oseq": len(outbound)}},
                return_document=ReturnDocument.AFTER, session=session,
            )
            if counters is None:
                raise NotFound(f"conversation {conversation_id}")
            return await write_turn(self._conn, conversation_id, counters["bot"], counters, events, outbound, session)

        if not events and not outbound:
            return []
        return await self._conn.atomic(unit)

    @guarded
    async def transcript(
        self, conversation_id: str, *, after_seq: int = 0, limit: int | None = None
    ) -> list[Event]:
        query = {"conversation_id": conversation_id, "seq": {"$gt": after_seq}}
        if limit is not None and limit <= 0:
            return []
        if limit is None:
            cursor = self._conn.require().events.find(query).sort("seq", ASCENDING)
            return [event_from_doc(d) async for d in cursor]
        cursor = self._conn.require().events.find(query).sort("seq", DESCENDING).limit(limit)
        newest = [event_from_doc(d) async for d in cursor]
        return newest[::-1]
