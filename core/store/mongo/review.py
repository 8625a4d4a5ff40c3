"""The review queue on MongoDB: `MongoReviewStore` (collection ``review_items``, ``_id`` = item id).

Its indexes are created on first use, so the connection's index list stays as it is.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from core.errors import StoreError
from core.store.mongo.connection import Doc, MongoConnection, dt, guarded, us
from core.store.ports.review import ReviewItem, ReviewStatus, ReviewStore


def _item(doc: Doc) -> ReviewItem:
    return ReviewItem(
        id=doc["_id"], bot=doc["bot"], text=doc["text"], reasons=tuple(doc["reasons"]),
        created_at=dt(doc["created_at"]), conversation_id=doc["conversation_id"], contact_id=doc["contact_id"],
        seq=doc["seq"], language=doc.get("language"), predicted_intent=doc.get("predicted_intent"),
        confidence=doc.get("confidence"), status=ReviewStatus(doc["status"]), label=doc.get("label"),
        holdout=bool(doc.get("holdout")), labelled_by=doc.get("labelled_by"),
        labelled_at=dt(doc["labelled_at"]) if doc.get("labelled_at") is not None else None,
        detail=json.loads(doc.get("detail") or "{}"),
    )


class MongoReviewStore(ReviewStore):
    """`ReviewStore` on the connection's database."""

    def __init__(self, conn: MongoConnection) -> None:
        self._conn = conn
        self._indexed: object | None = None  # the database the indexes were made on

    async def _collection(self) -> Any:
        db = self._conn.require()
        if self._indexed is not db:
            await db.review_items.create_indexes([
                IndexModel([("bot", ASCENDING), ("status", ASCENDING), ("created_at", DESCENDING)], name="review_bot"),
                IndexModel([("contact_id", ASCENDING)], name="review_contact"),
            ])
            self._indexed = db
        return db.review_items

    @guarded
    async def add_review(self, item: ReviewItem) -> ReviewItem:
        items = await self._collection()
        insert = {
            "bot": item.bot, "conversation_id": item.conversation_id, "contact_id": item.contact_id, "seq": item.seq,
            "text": item.text, "language": item.language, "predicted_intent": item.predicted_intent,
            "confidence": item.confidence, "status": item.status.value, "label": item.label,
            "holdout": item.holdout, "labelled_by": item.labelled_by,
            "labelled_at": us(item.labelled_at) if item.labelled_at else None, "created_at": us(item.created_at),
        }
        update = {"$setOnInsert": insert, "$addToSet": {"reasons": {"$each": list(item.reasons)}}}
        doc: Doc | None = None
        for _ in range(3):
            try:
                doc = await items.find_one_and_update({"_id": item.id}, update, upsert=True,
                                                      return_document=ReturnDocument.AFTER)
                break
            except DuplicateKeyError:
                continue  # two first upserts raced; the item exists now
        if doc is None:
            raise StoreError(f"could not add review item {item.id}")
        detail = {**json.loads(doc.get("detail") or "{}"), **item.detail}
        await items.update_one({"_id": item.id}, {"$set": {"detail": json.dumps(detail)}})
        return _item({**doc, "detail": json.dumps(detail)})

    @guarded
    async def get_review(self, item_id: str) -> ReviewItem | None:
        doc = await (await self._collection()).find_one({"_id": item_id})
        return _item(doc) if doc is not None else None

    @guarded
    async def review_items(self, *, bot: str | None = None, status: ReviewStatus | None = None,
                           limit: int = 200) -> list[ReviewItem]:
        if limit <= 0:
            return []
        query: dict[str, Any] = {}
        if bot is not None:
            query["bot"] = bot
        if status is not None:
            query["status"] = status.value
        cursor = (await self._collection()).find(query).sort([("created_at", DESCENDING), ("_id", ASCENDING)])
        return [_item(d) async for d in cursor.limit(limit)]

    @guarded
    async def label_review(self, item_id: str, *, status: ReviewStatus, label: str | None, holdout: bool,
                           by: str, at: datetime) -> ReviewItem | None:
        open_ = status is ReviewStatus.OPEN
        doc = await (await self._collection()).find_one_and_update(
            {"_id": item_id},
            {"$set": {"status": status.value, "label": label if status is ReviewStatus.LABELLED else None,
                      "holdout": holdout and not open_, "labelled_by": None if open_ else by,
                      "labelled_at": None if open_ else us(at)}},
            return_document=ReturnDocument.AFTER,
        )
        return _item(doc) if doc is not None else None

    @guarded
    async def contact_reviews(self, contact_id: str) -> list[ReviewItem]:
        cursor = (await self._collection()).find({"contact_id": contact_id}).sort([("created_at", ASCENDING),
                                                                                    ("_id", ASCENDING)])
        return [_item(d) async for d in cursor]

    @guarded
    async def forget_review_contact(self, contact_id: str) -> int:
        result = await (await self._collection()).delete_many({"contact_id": contact_id})
        return int(result.deleted_count)

    @guarded
    async def purge_review(self, bot: str, older_than: datetime) -> int:
        result = await (await self._collection()).delete_many({"bot": bot, "created_at": {"$lt": us(older_than)}})
        return int(result.deleted_count)
