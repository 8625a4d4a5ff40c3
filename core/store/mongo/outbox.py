"""The outbox on MongoDB: the operations and `MongoOutboxStore` (claims, fenced leases)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime

from pymongo import ReturnDocument

from core.store import codec
from core.store.mongo.connection import ERROR_MAX, Doc, MongoConnection, dt, guarded, us
from core.store.ports import OutboxStore
from core.store.records import OutboxItem, OutboxState


def outbox_from_doc(doc: Doc) -> OutboxItem:
    return OutboxItem(
        outbound=codec.outbound_from_dict(doc["outbound"]),
        state=OutboxState(doc["state"]),
        attempts=int(doc.get("attempts", 0)),
        not_before=dt(doc["not_before"]) if doc.get("not_before") else None,
        last_error=doc.get("last_error"),
        platform_message_id=doc.get("platform_message_id"),
        lease_token=doc.get("lease_token"),
        lease_until=dt(doc["lease_until"]) if doc.get("lease_until") else None,
        in_doubt=int(doc.get("in_doubt", 0)),
    )

class MongoOutboxStore(OutboxStore):
    """`OutboxStore` on the connection's database."""

    def __init__(self, conn: MongoConnection) -> None:
        self._conn = conn

    @guarded
    async def claim_outbox(self, owner: str, *, limit: int, lease_seconds: float) -> list[OutboxItem]:
        if limit <= 0:
            return []
        db = self._conn.require()
        now = self._conn.now_us()
        # Each conversation's head is its oldest pending item; only a due, unleased head is claimable.
        cursor = await db.outbox.aggregate([
            {"$match": {"state": OutboxState.PENDING.value}},
            {"$sort": {"conversation_id": 1, "oseq": 1}},
            {"$group": {"_id": "$conversation_id", "id": {"$first": "$_id"}, "not_before": {"$first": "$not_before"},
                        "lease_until": {"$first": "$lease_until"}, "created_at": {"$first": "$created_at"},
                        "lease_token": {"$first": "$lease_token"}}},
            {"$match": {"not_before": {"$lte": now}, "lease_until": {"$lte": now}}},
            {"$sort": {"created_at": 1, "id": 1}},
            # Extra candidates, so a sender that loses races to another still fills its batch.
            {"$limit": limit * 3},
        ])
        heads = [(d["id"], d.get("lease_token")) async for d in cursor]
        claimed: list[OutboxItem] = []
        for item_id, stale in heads:
            if len(claimed) >= limit:
                break
            # The conditional update decides races between senders: one of them gets the item.
            # The lease is stamped with a time read now, after the (possibly slow) search, and
            # a fresh token fences what the sender later records. A token left by an expired
            # claim means that claim ended without a result: the item is counted in doubt.
            stamp = self._conn.now_us()
            update: Doc = {"$set": {"lease_owner": owner, "lease_until": stamp + int(lease_seconds * 1_000_000),
                                    "lease_token": uuid.uuid4().hex}}
            if stale is not None:
                update["$inc"] = {"in_doubt": 1}
            doc = await db.outbox.find_one_and_update(
                {"_id": item_id, "state": OutboxState.PENDING.value, "lease_token": stale,
                 "not_before": {"$lte": stamp}, "lease_until": {"$lte": stamp}},
                update,
                return_document=ReturnDocument.AFTER,
            )
            if doc is not None:
                claimed.append(replace(outbox_from_doc(doc), taken_over=stale is not None))
        return claimed

    @guarded
    async def outbox_renew(self, outbound_id: str, token: str, lease_seconds: float) -> bool:
        # Stamped when issued (as the sender counts it); `$max`: renewals still under way when a
        # later one lands (the heartbeat does not wait for a slow store) never shorten the lease.
        stamp = self._conn.now_us()
        result = await self._conn.require().outbox.update_one(
            {"_id": outbound_id, "lease_token": token, "state": OutboxState.PENDING.value},
            {"$max": {"lease_until": stamp + int(lease_seconds * 1_000_000)}},
        )
        return result.matched_count == 1

    async def _record(self, query: Doc, update: Doc, token: str | None) -> bool:
        if token is not None:
            query = {**query, "lease_token": token}
        result = await self._conn.require().outbox.update_one(query, update)
        return result.matched_count == 1

    @guarded
    async def outbox_sent(self, outbound_id: str, platform_message_id: str, *, token: str | None = None) -> bool:
        # With a token, any holder's send is recorded while the item has no result: a superseded
        # holder's send happened too (its token implies the item was pending when it claimed).
        query: Doc = {"_id": outbound_id}
        if token is not None:
            query["state"] = OutboxState.PENDING.value
        result = await self._conn.require().outbox.update_one(query, {
            "$set": {"state": OutboxState.SENT.value, "platform_message_id": platform_message_id,
                     "lease_owner": None, "lease_until": 0, "lease_token": None, "sent_at": self._conn.now_us()},
            "$inc": {"attempts": 1}})
        return result.matched_count == 1

    @guarded
    async def outbox_retry(
        self, outbound_id: str, not_before: datetime, error: str, *, token: str | None = None
    ) -> bool:
        return await self._record(
            {"_id": outbound_id, "state": OutboxState.PENDING.value},
            {"$set": {"not_before": us(not_before), "last_error": error[:ERROR_MAX],
                      "lease_owner": None, "lease_until": 0, "lease_token": None},
             "$inc": {"attempts": 1}},
            token,
        )

    @guarded
    async def outbox_failed(self, outbound_id: str, error: str, *, token: str | None = None) -> bool:
        return await self._record(
            {"_id": outbound_id},
            {"$set": {"state": OutboxState.FAILED.value, "last_error": error[:ERROR_MAX],
                      "lease_owner": None, "lease_until": 0, "lease_token": None},
             "$inc": {"attempts": 1}},
            token,
        )

    @guarded
    async def get_outbox_item(self, outbound_id: str) -> OutboxItem | None:
        doc = await self._conn.require().outbox.find_one({"_id": outbound_id})
        return outbox_from_doc(doc) if doc else None

    @guarded
    async def outbox_counts(self) -> dict[OutboxState, int]:
        counts = {state: 0 for state in OutboxState}
        cursor = await self._conn.require().outbox.aggregate([{"$group": {"_id": "$state", "n": {"$sum": 1}}}])
        async for row in cursor:
            counts[OutboxState(row["_id"])] = int(row["n"])
        return counts
