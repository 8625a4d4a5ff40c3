"""`TurnUnitOfWork`: the fused hot path of every message, each step one named unit of work.

accept (contact + conversation + inbox), next turn (turn lease + inbox head + conversation +
contact + transcript window) and finish turn (conversation + inbox + transcript + outbox claim
+ lease release) span several concerns; an implementation composes the concern stores'
operations in one transaction / round trip where it can (``core/store/sqlite/hotpath.py``),
or calls them one by one (`ComposedTurns`, `core.store.base.Store`'s defaults).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import structlog

from core import metrics
from core.clock import SYSTEM_CLOCK, Clock
from core.model import Conversation, Event, Identity, Inbound, Outbound
from core.store.ports.contacts import ContactStore
from core.store.ports.conversations import ConversationStore
from core.store.ports.coordination import LeaseStore
from core.store.ports.inbox import InboxStore
from core.store.ports.transcript import TranscriptStore
from core.store.records import Accepted, TurnCommit, TurnState, TurnWrite

log = structlog.get_logger(__name__)


def turn_write_failed(write: TurnWrite, conversation_id: str, error: BaseException) -> None:
    """Log and count a ride-along write that failed (the turn it rode with is committed)."""
    metrics.ERRORS.labels(write.label).inc()
    log.error("store.turn_write_failed", write=write.label, conversation=conversation_id, exc_info=error)


async def run_after_commit(writes: Sequence[TurnWrite], conversation_id: str) -> None:
    """Run ``writes`` (a `TurnCommit.later`) one by one, each on its own, once their turn committed
    (failures logged and counted)."""
    for write in writes:
        try:
            await write.run()
        except Exception as exc:  # noqa: BLE001 - logged and counted; the turn is committed
            turn_write_failed(write, conversation_id, exc)


class TurnUnitOfWork(ABC):
    """The three steps of a message's way through the store, plus the plain turn commit."""

    @abstractmethod
    async def commit_turn(
        self,
        conversation: Conversation,
        *,
        inbox_ids: Sequence[int] = (),
        events: Sequence[Event] = (),
        outbound: Sequence[Outbound] = (),
    ) -> Conversation:
        """Atomically: save ``conversation`` (version check as `save_conversation`), mark the
        inbox items processed, append ``events`` to its transcript and queue ``outbound``.

        Returns the saved conversation. Raises `ConcurrencyConflict` (and writes nothing) when
        the version is stale or one of the inbox items was already processed.
        """

    @abstractmethod
    async def accept_inbound(self, inbound: Inbound, *, phone: str | None = None) -> Accepted | None:
        """`resolve_contact` + `conversation_for` + `ingest`: the hot path of every webhook.

        ``phone``: the number the message verifies as its sender's. If the contact does
        not have it as its verified phone yet, only the contact is resolved and None is
        returned: the caller links contacts by that number first, then ingests (so the
        message lands in the linked conversation).
        """

    @abstractmethod
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
        released and the state has no item.
        """

    @abstractmethod
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
        """`commit_turn`, then, in the same unit where the store can:

        - ``claim``: claim for ``owner`` the first of ``outbound`` if it is now its
          conversation's next item to send (as `claim_outbox` would, leased for
          ``lease_seconds``), so the sender sends it without another round trip;
        - ``release``: when no inbox item of the conversation is left pending, release
          that turn lease of ``owner`` (the turn loop then ends without another call);
        - ``also``: the writes that ride along with the turn (`TurnWrite`), in order: run
          inside the turn's unit where the store can (a failed one is logged and counted and
          never fails the turn), the others handed back in `TurnCommit.later` for the caller
          to run once it is done with the turn (`run_after_commit`). None is written unless
          the turn commits.
        """


class ComposedTurns(TurnUnitOfWork):
    """Accept, next and finish turn composed of the concern stores' single calls, one round trip
    each (for stores shared by several processes); the finish claims nothing (the sender's
    `claim_outbox` finds the items). A subclass sets the stores and implements `commit_turn`."""

    _contacts: ContactStore
    _conversations: ConversationStore
    _inbox: InboxStore
    _transcripts: TranscriptStore
    _leases: LeaseStore
    _clock: Clock = SYSTEM_CLOCK  # the store's clock: when a backing-off inbox item is due

    async def accept_inbound(self, inbound: Inbound, *, phone: str | None = None) -> Accepted | None:
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
        if not await self._leases.acquire_lease(lease, owner, lease_seconds):
            return None
        items = await self._inbox.pending_inbox(conversation_id, limit=1)
        if not items or not items[0].due(self._clock.now()):
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
        also: Sequence[TurnWrite] = (),
    ) -> TurnCommit:
        saved = await self.commit_turn(conversation, inbox_ids=inbox_ids, events=events, outbound=outbound)
        released = False
        if release is not None and not await self._inbox.pending_inbox(conversation.id, limit=1):
            await self._leases.release_lease(release, owner)
            released = True
        return TurnCommit(saved, [], released, later=list(also))  # the caller runs them: one round trip each
