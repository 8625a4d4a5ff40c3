"""`MongoTurnUnitOfWork`: the hot path of every message on MongoDB.

The turn commit is one transaction where the deployment has them (else a version-checked
sequence of conditional writes); accept, next turn and finish turn compose the concern
stores' calls, one round trip each, as several processes share the data.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.errors import ConcurrencyConflict, StoreError
from core.model import Conversation, Event, Outbound
from core.store.mongo.connection import MongoConnection, Session, guarded
from core.store.mongo.contacts import MongoContactStore
from core.store.mongo.conversations import MongoConversationStore, save
from core.store.mongo.coordination import MongoLeaseStore
from core.store.mongo.inbox import MongoInboxStore
from core.store.mongo.transcript import MongoTranscriptStore, write_turn
from core.store.ports.turns import ComposedTurns


class MongoTurnUnitOfWork(ComposedTurns):
    """`TurnUnitOfWork` on the connection's database: its own turn commit; accept, next and finish
    turn as `ComposedTurns`, through the concern stores (one round trip each)."""

    def __init__(
        self,
        conn: MongoConnection,
        contacts: MongoContactStore,
        conversations: MongoConversationStore,
        inbox: MongoInboxStore,
        transcripts: MongoTranscriptStore,
        leases: MongoLeaseStore,
    ) -> None:
        self._conn = conn
        self._clock = conn.clock
        self._contacts = contacts
        self._conversations = conversations
        self._inbox = inbox
        self._transcripts = transcripts
        self._leases = leases

    @guarded
    async def commit_turn(
        self,
        conversation: Conversation,
        *,
        inbox_ids: Sequence[int] = (),
        events: Sequence[Event] = (),
        outbound: Sequence[Outbound] = (),
    ) -> Conversation:
        foreign = [o.id for o in outbound if o.conversation_id != conversation.id]
        if foreign:
            raise StoreError(f"outbound {foreign[0]} belongs to another conversation")

        ids = sorted(set(inbox_ids))

        async def unit(session: Session) -> Conversation:
            inbox = self._conn.require().inbox
            if ids:
                # A turn for a message another process already answered must not commit (a lease
                # that expired mid-turn). Whoever processed it bumped the version after this
                # turn read the conversation, unless it happened before: then this check sees it.
                pending = await inbox.count_documents(
                    {"_id": {"$in": ids}, "conversation_id": conversation.id, "processed": False}, session=session
                )
                if pending != len(ids):
                    raise ConcurrencyConflict(f"conversation {conversation.id}: inbox items already processed")
            # The version check is the gate: without a transaction it lets exactly one committer
            # write the rest.
            saved, counters = await save(self._conn, 
                conversation, {"last_seq": len(events), "last_oseq": len(outbound)}, session
            )
            if ids:
                # Marking is conditional too, so that without a transaction a committer that
                # raced past the check above still cannot add a second answer.
                marked = await inbox.update_many(
                    {"_id": {"$in": ids}, "processed": False}, {"$set": {"processed": True}}, session=session
                )
                if marked.modified_count != len(ids):
                    raise ConcurrencyConflict(f"conversation {conversation.id}: inbox items processed meanwhile")
            await write_turn(self._conn, conversation.id, conversation.bot, counters, events, outbound, session)
            return saved

        return await self._conn.atomic(unit)
