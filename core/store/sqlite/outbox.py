"""The outbox on SQLite: the operations (enqueue, claim a turn's first reply) and `SQLiteOutboxStore`."""

from __future__ import annotations

import itertools
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import orjson

from core.model import Outbound
from core.store import codec
from core.store.ports import OutboxStore
from core.store.records import OutboxItem, OutboxState
from core.store.sqlite.encoding import dumps, from_ts, ts
from core.store.sqlite.engine import SQLiteEngine

# Lease tokens: unique per claim and per process without a system call per claim.
_TOKEN_PREFIX = uuid.uuid4().hex[:16]
_TOKENS = itertools.count(1)


def lease_token() -> str:
    return f"{_TOKEN_PREFIX}:{next(_TOKENS)}"


def outbox_from_row(row: sqlite3.Row, token: str | None = None, lease_until: datetime | None = None) -> OutboxItem:
    """The item as stored, or as just claimed with ``token`` until ``lease_until`` (``row`` read
    before the claim: a token it still had was an expired claim's, now counted in doubt)."""
    in_doubt = row["in_doubt"]
    taken_over = token is not None and row["lease_token"] is not None
    if token is None:
        token = row["lease_token"]
        lease_until = from_ts(row["lease_until"]) if row["lease_until"] else None
    elif taken_over:
        in_doubt += 1
    return OutboxItem(
        outbound=codec.outbound_from_dict(orjson.loads(row["payload"])),
        state=OutboxState(row["state"]),
        attempts=row["attempts"],
        not_before=from_ts(row["not_before"]) if row["not_before"] else None,
        last_error=row["last_error"],
        platform_message_id=row["platform_message_id"],
        lease_token=token,
        lease_until=lease_until,
        in_doubt=in_doubt,
        taken_over=taken_over,
    )


def enqueue(db: sqlite3.Connection, outbound: Sequence[Outbound]) -> None:
    db.executemany(
        "INSERT INTO outbox (id, conversation_id, bot, channel, payload, state, created_at)"
        " VALUES (?,?,?,?,?,'pending',?)",
        [(o.id, o.conversation_id, o.bot, o.channel, dumps(codec.outbound_to_dict(o)), ts(o.created_at))
         for o in outbound],
    )


def claim_head(
    db: sqlite3.Connection, first: Outbound, owner: str, lease_seconds: float, *, at: float
) -> list[OutboxItem]:
    """Lease ``first`` to ``owner`` (from ``at`` for ``lease_seconds``) if it is its conversation's next item to send."""
    head = db.execute(
        "SELECT id FROM outbox WHERE state='pending' AND conversation_id=? ORDER BY seq LIMIT 1",
        (first.conversation_id,),
    ).fetchone()
    if head is None or head[0] != first.id:
        return []  # older replies of this conversation go first (the sender claims them)
    token, until = lease_token(), at + lease_seconds
    db.execute("UPDATE outbox SET lease_owner=?, lease_until=?, lease_token=? WHERE id=?",
               (owner, until, token, first.id))
    return [OutboxItem(first, lease_token=token, lease_until=from_ts(until))]


def _fenced(sql: str, args: tuple[Any, ...], token: str | None) -> Callable[[sqlite3.Connection], bool]:
    """``sql`` (ending in its WHERE clause), and the lease token's check when one is given."""
    if token is not None:
        sql, args = sql + " AND lease_token=?", (*args, token)
    return lambda db: bool(db.execute(sql, args).rowcount == 1)


class SQLiteOutboxStore(OutboxStore):
    """`OutboxStore` on the engine's file."""

    def __init__(self, engine: SQLiteEngine) -> None:
        self._engine = engine

    async def claim_outbox(self, owner: str, *, limit: int, lease_seconds: float) -> list[OutboxItem]:
        def unit(db: sqlite3.Connection) -> list[OutboxItem]:
            at = self._engine.clock.time()
            rows = db.execute(
                "SELECT o.* FROM outbox o JOIN ("
                "  SELECT conversation_id, MIN(seq) AS head FROM outbox WHERE state='pending' GROUP BY conversation_id"
                ") h ON o.conversation_id=h.conversation_id AND o.seq=h.head"
                " WHERE (o.not_before IS NULL OR o.not_before<=?) AND (o.lease_until IS NULL OR o.lease_until<=?)"
                " ORDER BY o.seq LIMIT ?",
                (at, at, limit),
            ).fetchall()
            until = self._engine.clock.time() + lease_seconds  # read after the query
            tokens = [lease_token() for _ in rows]
            # A token left by an expired claim: that claim ended without a result (in doubt).
            db.executemany(
                "UPDATE outbox SET lease_owner=?, lease_until=?, in_doubt=in_doubt+(lease_token IS NOT NULL),"
                " lease_token=? WHERE id=?",
                [(owner, until, token, r["id"]) for r, token in zip(rows, tokens, strict=True)],
            )
            lease_until = from_ts(until)
            return [outbox_from_row(r, token, lease_until) for r, token in zip(rows, tokens, strict=True)]

        return await self._engine.tx(unit)

    async def outbox_renew(self, outbound_id: str, token: str, lease_seconds: float) -> bool:
        # Stamped when issued (as the sender counts it), never shortening a later renewal's lease.
        until = self._engine.clock.time() + lease_seconds
        return await self._engine.tx(lambda db: db.execute(
            "UPDATE outbox SET lease_until=MAX(COALESCE(lease_until, 0), ?)"
            " WHERE id=? AND lease_token=? AND state='pending'",
            (until, outbound_id, token),
        ).rowcount == 1)

    async def outbox_sent(self, outbound_id: str, platform_message_id: str, *, token: str | None = None) -> bool:
        # With a token, any holder's send is recorded while the item has no result: a superseded
        # holder's send happened too (its token implies the item was pending when it claimed).
        return await self._engine.tx(lambda db: db.execute(
            "UPDATE outbox SET state='sent', platform_message_id=?, lease_owner=NULL, lease_until=NULL,"
            " lease_token=NULL, attempts=attempts+1, sent_at=? WHERE id=?"
            + (" AND state='pending'" if token is not None else ""),
            (platform_message_id, self._engine.clock.time(), outbound_id),
        ).rowcount == 1)

    async def outbox_retry(
        self, outbound_id: str, not_before: datetime, error: str, *, token: str | None = None
    ) -> bool:
        return await self._engine.tx(_fenced(
            "UPDATE outbox SET not_before=?, last_error=?, attempts=attempts+1, lease_owner=NULL, lease_until=NULL,"
            " lease_token=NULL WHERE id=? AND state='pending'",
            (ts(not_before), error[:500], outbound_id), token))

    async def outbox_failed(self, outbound_id: str, error: str, *, token: str | None = None) -> bool:
        return await self._engine.tx(_fenced(
            "UPDATE outbox SET state='failed', last_error=?, attempts=attempts+1, lease_owner=NULL, lease_until=NULL,"
            " lease_token=NULL WHERE id=?",
            (error[:500], outbound_id), token))

    async def get_outbox_item(self, outbound_id: str) -> OutboxItem | None:
        def unit(db: sqlite3.Connection) -> OutboxItem | None:
            row = db.execute("SELECT * FROM outbox WHERE id=?", (outbound_id,)).fetchone()
            return outbox_from_row(row) if row else None

        return await self._engine.run(unit)

    async def outbox_counts(self) -> dict[OutboxState, int]:
        def unit(db: sqlite3.Connection) -> dict[OutboxState, int]:
            counts = {state: 0 for state in OutboxState}
            for row in db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state"):
                counts[OutboxState(row[0])] = row[1]
            return counts

        return await self._engine.run(unit, bulk=True)
