"""`SQLiteTurnUnitOfWork`: the hot path of every message as named units of work on SQLite.

Each step is one unit (one batch slot, one transaction at most) composed of the concern
modules' operations, so a message costs the same statements as when one store knew every
table: accept = contact + conversation + inbox; next turn = turn lease + inbox head +
conversation + contact + transcript window; finish turn = conversation + inbox +
transcript + outbox (+ claim of the first reply) + turn lease (+ the writes that ride along
with the turn, e.g. its case figures: `core.store.sqlite.ridealong`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from core.errors import ConcurrencyConflict
from core.model import Conversation, Event, Identity, Inbound, Outbound
from core.store.ports import TurnUnitOfWork
from core.store.ports.turns import turn_write_failed
from core.store.records import Accepted, TurnCommit, TurnState, TurnWrite
from core.store.sqlite.contacts import phone_of, read_contact, resolve
from core.store.sqlite.conversations import conversation_id_for, read_conversation, save
from core.store.sqlite.coordination import SQLiteLeaseStore
from core.store.sqlite.encoding import from_ts
from core.store.sqlite.engine import SQLiteEngine
from core.store.sqlite.inbox import INBOX_COLUMNS, encode_inbound, inbox_item_from_row, ingest
from core.store.sqlite.outbox import claim_head, enqueue
from core.store.sqlite.ridealong import run_inside, split
from core.store.sqlite.transcript import event_from_row, insert_events


def commit(
    db: sqlite3.Connection,
    conversation: Conversation,
    inbox_ids: Sequence[int],
    events: Sequence[Event],
    outbound: Sequence[Outbound],
    *,
    at: float,
) -> tuple[Conversation, list[Event]]:
    """Save the conversation (updated ``at``), mark the inbox items processed, append the events
    and queue the replies; the saved conversation and the events as stored (with their seq)."""
    saved, last_seq = save(db, conversation, len(events), at=at)
    for inbox_id in inbox_ids:
        if db.execute("UPDATE inbox SET processed=1 WHERE id=? AND processed=0", (inbox_id,)).rowcount != 1:
            raise ConcurrencyConflict(f"inbox item {inbox_id} was already processed")
    stored = insert_events(db, conversation.id, events, last_seq) if events else []
    enqueue(db, outbound)
    return saved, stored


class SQLiteTurnUnitOfWork(TurnUnitOfWork):
    """`TurnUnitOfWork` on the engine's file; turn leases through ``leases`` (in memory for
    the file's one farm: then taking and releasing a turn writes nothing)."""

    def __init__(self, engine: SQLiteEngine, leases: SQLiteLeaseStore) -> None:
        self._engine = engine
        self._leases = leases

    async def accept_inbound(self, inbound: Inbound, *, phone: str | None = None) -> Accepted | None:
        payload = encode_inbound(inbound)
        identity = Identity(inbound.channel, inbound.channel_user_id, inbound.chat_id)

        def unit(db: sqlite3.Connection) -> Accepted | None:
            at = self._engine.clock.time()
            contact_id = resolve(db, inbound.bot, identity, inbound.display_name, at=at)
            if phone is not None and phone_of(db, contact_id) != phone:
                return None
            conversation_id = conversation_id_for(db, inbound.bot, contact_id, at=at)
            return Accepted(conversation_id, ingest(db, conversation_id, inbound, payload, at=at))

        return await self._engine.tx(unit)

    async def commit_turn(
        self,
        conversation: Conversation,
        *,
        inbox_ids: Sequence[int] = (),
        events: Sequence[Event] = (),
        outbound: Sequence[Outbound] = (),
    ) -> Conversation:
        return await self._engine.tx(lambda db: commit(db, conversation, inbox_ids, events, outbound, at=self._engine.clock.time())[0])

    async def next_turn(
        self,
        conversation_id: str,
        *,
        lease: str,
        owner: str,
        lease_seconds: float,
        history: int,
        cached: tuple[int, int] | None = None,
    ) -> TurnState | None:
        leases = self._leases

        def unit(db: sqlite3.Connection) -> TurnState | None:
            if not leases.take(db, lease, owner, lease_seconds):
                return None
            row = db.execute(
                f"SELECT {INBOX_COLUMNS} FROM inbox WHERE conversation_id=? AND processed=0 ORDER BY id LIMIT 1",
                (conversation_id,),
            ).fetchone()
            if row is None or (row["not_before"] is not None and row["not_before"] > self._engine.clock.time()):
                leases.drop(db, lease, owner)  # nothing pending, or the head backs off
                return TurnState(None, retry_at=from_ts(row["not_before"]) if row else None)
            item = inbox_item_from_row(row)
            conversation = read_conversation(db, conversation_id)
            if conversation is None:
                return TurnState(item)
            contact = read_contact(db, conversation.contact_id)
            if cached is not None and cached[0] == conversation.version:
                rows = db.execute("SELECT * FROM events WHERE conversation_id=? AND seq>? ORDER BY seq",
                                  (conversation_id, cached[1])).fetchall()
                return TurnState(item, conversation, contact, [event_from_row(r) for r in rows], cached[1])
            rows = db.execute(
                "SELECT * FROM (SELECT * FROM events WHERE conversation_id=? ORDER BY seq DESC LIMIT ?) ORDER BY seq",
                (conversation_id, history),
            ).fetchall()
            return TurnState(item, conversation, contact, [event_from_row(r) for r in rows])

        # With the leases in memory the unit only reads: no write transaction for it.
        return await (self._engine.run(unit) if leases.memory is not None else self._engine.tx(unit))

    async def finish_turn(
        self,
        conversation: Conversation,
        *,
        inbox_ids: Sequence[int] = (),
        events: Sequence[Event] = (),
        outbound: Sequence[Outbound] = (),
        owner: str,
        lease_seconds: float,
        claim: bool = True,
        release: str | None = None,
        also: Sequence[TurnWrite] = (),
    ) -> TurnCommit:
        leases = self._leases
        inside, after = split(also, self._engine)
        failed: list[tuple[TurnWrite, Exception]] = []

        def unit(db: sqlite3.Connection) -> TurnCommit:
            at = self._engine.clock.time()
            saved, stored = commit(db, conversation, inbox_ids, events, outbound, at=at)
            claimed = claim_head(db, outbound[0], owner, lease_seconds, at=at) if claim and outbound else []
            released = False
            if release is not None and db.execute(
                "SELECT 1 FROM inbox WHERE conversation_id=? AND processed=0 LIMIT 1", (conversation.id,)
            ).fetchone() is None:
                leases.drop(db, release, owner)
                released = True
            failed[:] = run_inside(db, inside)  # the ride-along writes: same transaction, own savepoints
            return TurnCommit(saved, claimed, released, stored, later=after)

        result = await self._engine.tx(unit)
        for write, error in failed:
            turn_write_failed(write, conversation.id, error)
        return result
