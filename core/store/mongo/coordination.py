"""Named leases and key-value on MongoDB: `MongoLeaseStore`, `MongoKeyValueStore`."""

from __future__ import annotations

import json
import uuid
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from core.store.mongo.connection import Doc, MongoConnection, dt, guarded
from core.store.ports import KeyValueStore, LeaseStore
from core.store.ports.coordination import prefix_end


async def claim_key(conn: MongoConnection, collection: str, key: str, doc: Doc, holder: Doc) -> bool:
    """Upsert ``key`` unless an unexpired document not matching ``holder`` exists.

    When the filter does not match, the upsert's insert hits the _id index
    (DuplicateKeyError): someone else holds the key. A fresh token tells whether the
    stored document is ours when the server answers without one.
    """
    now = conn.now_us()
    token = uuid.uuid4().hex
    coll = conn.require()[collection]
    try:
        stored = await coll.find_one_and_update(
            {"_id": key, "$or": [holder, {"expires_at": {"$lte": now}}]}, {"$set": {**doc, "token": token}},
            upsert=True, return_document=ReturnDocument.AFTER,
        )
    except DuplicateKeyError:
        return False
    if stored is None:
        stored = await coll.find_one({"_id": key})
    return stored is not None and stored.get("token") == token

class MongoLeaseStore(LeaseStore):
    """`LeaseStore` on the connection's database (conditional upserts on owner + expiry)."""

    def __init__(self, conn: MongoConnection) -> None:
        self._conn = conn

    @guarded
    async def acquire_lease(self, name: str, owner: str, ttl_seconds: float) -> bool:
        expires = self._conn.now_us() + int(ttl_seconds * 1_000_000)
        return await claim_key(self._conn, "leases", name, {"owner": owner, "expires_at": expires}, {"owner": owner})

    @guarded
    async def release_lease(self, name: str, owner: str) -> None:
        await self._conn.require().leases.delete_one({"_id": name, "owner": owner})


class MongoKeyValueStore(KeyValueStore):
    """`KeyValueStore` on the connection's database (TTL indexes expire the documents)."""

    def __init__(self, conn: MongoConnection) -> None:
        self._conn = conn

    @guarded
    async def remember(self, key: str, ttl_seconds: float) -> bool:
        expires = self._conn.now_us() + int(ttl_seconds * 1_000_000)
        # ``holder`` never matches (no document has _never), so only an expired key is taken over.
        return await claim_key(self._conn, 
            "seen", key, {"expires_at": expires, "expire_at": dt(expires)}, {"_never": True}
        )

    @guarded
    async def kv_get(self, key: str) -> Any | None:
        doc = await self._conn.require().kv.find_one(
            {"_id": key, "$or": [{"expires_at": None}, {"expires_at": {"$gt": self._conn.now_us()}}]}
        )
        return json.loads(doc["value"]) if doc else None

    @guarded
    async def kv_set(self, key: str, value: Any, ttl_seconds: float | None = None) -> None:
        expires = self._conn.now_us() + int(ttl_seconds * 1_000_000) if ttl_seconds is not None else None
        await self._conn.require().kv.replace_one(
            {"_id": key},
            {"value": json.dumps(value), "expires_at": expires,
             **({"expire_at": dt(expires)} if expires is not None else {})},
            upsert=True,
        )

    @guarded
    async def kv_delete(self, key: str) -> None:
        await self._conn.require().kv.delete_one({"_id": key})

    @guarded
    async def kv_items(self, prefix: str) -> list[tuple[str, Any]]:
        cursor = self._conn.require().kv.find(
            {"_id": {"$gte": prefix, "$lt": prefix_end(prefix)},
             "$or": [{"expires_at": None}, {"expires_at": {"$gt": self._conn.now_us()}}]},
        ).sort("_id", 1)
        return [(str(doc["_id"]), json.loads(doc["value"])) async for doc in cursor]
