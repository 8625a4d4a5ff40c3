"""The review queue on SQLite: `SQLiteReviewStore` (table ``review_items``, migration 5)."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

from core.store.ports.review import ReviewItem, ReviewStatus, ReviewStore
from core.store.sqlite.encoding import from_ts, ts
from core.store.sqlite.engine import SQLiteEngine


def _item(row: sqlite3.Row) -> ReviewItem:
    return ReviewItem(
        id=row["id"], bot=row["bot"], text=row["text"], reasons=tuple(json.loads(row["reasons"])),
        created_at=from_ts(row["created_at"]), conversation_id=row["conversation_id"],
        contact_id=row["contact_id"], seq=row["seq"], language=row["language"],
        predicted_intent=row["predicted_intent"], confidence=row["confidence"],
        status=ReviewStatus(row["status"]), label=row["label"], holdout=bool(row["holdout"]),
        labelled_by=row["labelled_by"],
        labelled_at=from_ts(row["labelled_at"]) if row["labelled_at"] is not None else None,
        detail=json.loads(row["detail"]),
    )


class SQLiteReviewStore(ReviewStore):
    """`ReviewStore` on the engine's file."""

    def __init__(self, engine: SQLiteEngine) -> None:
        self._engine = engine

    async def add_review(self, item: ReviewItem) -> ReviewItem:
        def unit(db: sqlite3.Connection) -> ReviewItem:
            row = db.execute("SELECT * FROM review_items WHERE id=?", (item.id,)).fetchone()
            if row is not None:
                stored = _item(row)
                reasons = tuple(dict.fromkeys((*stored.reasons, *item.reasons)))
                db.execute("UPDATE review_items SET reasons=?, detail=? WHERE id=?",
                           (json.dumps(reasons), json.dumps({**stored.detail, **item.detail}), item.id))
            else:
                db.execute(
                    "INSERT INTO review_items (id, bot, conversation_id, contact_id, seq, text, reasons, language,"
                    " predicted_intent, confidence, status, label, holdout, labelled_by, labelled_at, detail,"
                    " created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (item.id, item.bot, item.conversation_id, item.contact_id, item.seq, item.text,
                     json.dumps(list(item.reasons)), item.language, item.predicted_intent, item.confidence,
                     item.status.value, item.label, int(item.holdout), item.labelled_by,
                     ts(item.labelled_at) if item.labelled_at else None, json.dumps(item.detail),
                     ts(item.created_at)),
                )
            return _item(db.execute("SELECT * FROM review_items WHERE id=?", (item.id,)).fetchone())

        return await self._engine.tx(unit)

    async def get_review(self, item_id: str) -> ReviewItem | None:
        def unit(db: sqlite3.Connection) -> ReviewItem | None:
            row = db.execute("SELECT * FROM review_items WHERE id=?", (item_id,)).fetchone()
            return _item(row) if row is not None else None

        return await self._engine.run(unit)

    async def review_items(self, *, bot: str | None = None, status: ReviewStatus | None = None,
                           limit: int = 200) -> list[ReviewItem]:
        clauses, params = [], []
        if bot is not None:
            clauses.append("bot=?")
            params.append(bot)
        if status is not None:
            clauses.append("status=?")
            params.append(status.value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""

        def unit(db: sqlite3.Connection) -> list[ReviewItem]:
            rows = db.execute(f"SELECT * FROM review_items{where} ORDER BY created_at DESC, id LIMIT ?",
                              (*params, limit)).fetchall()
            return [_item(r) for r in rows]

        return await self._engine.run(unit, bulk=True)

    async def label_review(self, item_id: str, *, status: ReviewStatus, label: str | None, holdout: bool,
                           by: str, at: datetime) -> ReviewItem | None:
        open_ = status is ReviewStatus.OPEN

        def unit(db: sqlite3.Connection) -> ReviewItem | None:
            db.execute(
                "UPDATE review_items SET status=?, label=?, holdout=?, labelled_by=?, labelled_at=? WHERE id=?",
                (status.value, label if status is ReviewStatus.LABELLED else None, int(holdout and not open_),
                 None if open_ else by, None if open_ else ts(at), item_id),
            )
            row = db.execute("SELECT * FROM review_items WHERE id=?", (item_id,)).fetchone()
            return _item(row) if row is not None else None

        return await self._engine.tx(unit)

    async def contact_reviews(self, contact_id: str) -> list[ReviewItem]:
        def unit(db: sqlite3.Connection) -> list[ReviewItem]:
            rows = db.execute("SELECT * FROM review_items WHERE contact_id=? ORDER BY created_at, id",
                              (contact_id,)).fetchall()
            return [_item(r) for r in rows]

        return await self._engine.run(unit, bulk=True)

    async def forget_review_contact(self, contact_id: str) -> int:
        return await self._engine.tx(
            lambda db: db.execute("DELETE FROM review_items WHERE contact_id=?", (contact_id,)).rowcount, bulk=True)

    async def purge_review(self, bot: str, older_than: datetime) -> int:
        return await self._engine.tx(
            lambda db: db.execute("DELETE FROM review_items WHERE bot=? AND created_at<?",
                                  (bot, ts(older_than))).rowcount, bulk=True)
