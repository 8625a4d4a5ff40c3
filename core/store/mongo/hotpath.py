"""`MongoTurnUnitOfWork`: the hot path of every message on MongoDB.

The turn commit is one transaction where the deployment has them (else a version-checked
sequence of conditional writes); accept, next turn and finish turn compose the concern
stores' calls, one round trip each, as several processes share the data.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.errors import ConcurrencyConflict, StoreError
from core.model import Conversation, Event, Identity, Inbound, Outbound, utcnow
from core.store.mongo.connection import MongoConnection, Session, guarded
from core.store.mongo.contacts import MongoContactStore
from core.store.mongo.conversations import MongoConversationStore, save
from core.store.mongo.coordination import MongoLeaseStore
from core.store.mongo.inbox import MongoInboxStore
from core.store.mongo.transcript import MongoTranscriptStore, write_turn
from core.store.ports import TurnUnitOfWork
from core.store.records import Accepted, TurnCommit, TurnState


class MongoTurnUnitOfWork(TurnUnitOfWork):
    """`TurnUnitOfWork` on the connection's database, through the concern stores."""

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

    async def accept_inbound(self, inbound: Inbound, *, phone: str | None = None) -> Accepted | None:
        """`resolve_contact` + `conversation_for` + `ingest`: the hot path of every webhook.

        ``phone``: the number the message verifies as its sender's. If the contact does
        not have it as its verified phone yet, only the contact is resolved and None is
        returned: the caller links contacts by that number first, then ingests (so the
        message lands in the linked conversation). Single calls: one round trip each.
        """
        identity = Identity(inbound.channel, inbound.channel_user_id, inbound.chat_id)
        contact = await self._contacts.resolve_contact(inbound.bot, identity, display_name=inbound.display_name)
        if phone is not None and contact.phone != phone:
            return None
        conversation = await self._conversations.conversation_for(inbound.bot, contact.id)
        return Accepted(conversation.id, await self._inbox.ingest(conversation.id, inbound))

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
        """Take or renew ``lease`` for ``owner``, then read what the next turn needs.

        None if another owner holds the lease. Otherwise the oldest pending inbox item (none
        while it backs off after a failed turn)
        with the conversation, its contact and the transcript: the newest ``history``
        events, or, when ``cached=(version, seq)`` names the conversation's current
        version, only the events after ``seq``. When nothing is pending the lease is
        released and the state has no item. Single calls, as `Store`'s default.
        """
        if not await self._leases.acquire_lease(lease, owner, lease_seconds):
            return None
        items = await self._inbox.pending_inbox(conversation_id, limit=1)
        if not items or not items[0].due(utcnow()):
            await self._leases.release_lease(lease, owner)
            return TurnState(None, retry_at=items[0].not_before if items else None)
        conversation = await self._conversations.get_conversation(conversation_id)
        contact = await self._contacts.get_contact(conversation.contact_id) if conversation else None
        if conversation is not None and cached is not None and cached[0] == conversation.version:
            events = await self._transcripts.transcript(conversation_id, after_seq=cached[1])
            return TurnState(items[0], conversation, contact, events, cached[1])
        events = await self._transcripts.transcript(conversation_id, limit=history)
        return TurnState(items[0], conversation, contact, events)

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
    ) -> TurnCommit:
        """`commit_turn`, then, in the same unit where the store can:

        - ``claim``: claim for ``owner`` the first of ``outbound`` if it is now its
          conversation's next item to send (as `claim_outbox` would, leased for
          ``lease_seconds``), so the sender sends it without another round trip;
        - ``release``: when no inbox item of the conversation is left pending, release
          that turn lease of ``owner`` (the turn loop then ends without another call).

        Claims nothing: the sender's `claim_outbox` finds the items.
        """
        saved = await self.commit_turn(conversation, inbox_ids=inbox_ids, events=events, outbound=outbound)
        released = False
        if release is not None and not await self._inbox.pending_inbox(conversation.id, limit=1):
            await self._leases.release_lease(release, owner)
            released = True
        return TurnCommit(saved, [], released)
