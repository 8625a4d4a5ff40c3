"""The `Store` contract: every persistence call of the farm goes through it.

`Store` is the sum of the ports by concern (``core/store/ports/``): contacts,
conversations (and desk threads), inbox (and dead letters), transcript, outbox (fenced
leases), delivery receipts, leases, key-value, privacy, audit, service cases (analytics), and the hot path's units of work
(`TurnUnitOfWork`). A caller that needs one concern can type its argument with that port.

Two implementations pass the same conformance suite (``tests/store/``): SQLite
(embedded default) and MongoDB (several farm processes on one replica set).
Anything a second process may race on is decided inside the store: inbox
de-duplication (unique key), turn commits (conversation version), outbox claims
and named leases (owner + expiry).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence

from core.clock import SYSTEM_CLOCK, Clock
from core.model import Conversation, Event, Inbound, Outbound
from core.store.ports import (
    AnalyticsStore,
    AuditStore,
    ContactStore,
    ConversationStore,
    InboxStore,
    KeyValueStore,
    LeaseStore,
    OutboxStore,
    PrivacyStore,
    ReceiptStore,
    TranscriptStore,
    TurnUnitOfWork,
)
from core.store.ports.turns import ComposedTurns
from core.store.records import (
    RECEIPT_TTL_SECONDS,
    Accepted,
    AuditEntry,
    DeadLetter,
    InboxItem,
    OutboxItem,
    OutboxState,
    ReceiptOutcome,
    TurnCommit,
    TurnState,
    TurnWrite,
    receipt_event,
    receipt_key,
)

__all__ = [
    "RECEIPT_TTL_SECONDS",
    "Accepted",
    "AuditEntry",
    "DeadLetter",
    "InboxItem",
    "OutboxItem",
    "OutboxState",
    "ReceiptOutcome",
    "Store",
    "TurnCommit",
    "TurnState",
    "receipt_event",
    "receipt_key",
]


class Store(
    ContactStore,
    ConversationStore,
    InboxStore,
    TranscriptStore,
    OutboxStore,
    ReceiptStore,
    LeaseStore,
    KeyValueStore,
    PrivacyStore,
    AuditStore,
    AnalyticsStore,
    TurnUnitOfWork,
):
    """Durable state of the farm. All methods are safe to call concurrently.

    The hot path's defaults here compose the single calls; a store that can do each in one
    round trip overrides them.
    """

    # The time every expiry decision of the store is made by (leases, claims, TTLs, backoff);
    # an implementation takes it as its constructor's ``clock``.
    clock: Clock = SYSTEM_CLOCK

    # -- lifecycle -----------------------------------------------------------------
    @abstractmethod
    async def open(self) -> None:
        """Connect and migrate/create indexes. Idempotent."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def ping(self) -> None:
        """Raise `StoreUnavailable` if the store cannot serve requests now."""

    def serve_check(self) -> None:
        """Raise `StoreUnavailable` if a farm must not serve from this (open) store, e.g.
        because another farm process already does and the store cannot be shared.
        A farm calls it once at start; stores that any number of processes share pass."""

    # -- the hot path, composed of single calls ---------------------------------------
    async def accept_inbound(self, inbound: Inbound, *, phone: str | None = None) -> Accepted | None:
        """`TurnUnitOfWork.accept_inbound` by the single calls (`ComposedTurns`); a store may override it to do
        them in one round trip."""
        return await _SingleCalls(self).accept_inbound(inbound, phone=phone)

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
        """`TurnUnitOfWork.next_turn` by the single calls (`ComposedTurns`); a store may override it to do them
        in one round trip."""
        return await _SingleCalls(self).next_turn(
            conversation_id, lease=lease, owner=owner, lease_seconds=lease_seconds, history=history, cached=cached)

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
        """`TurnUnitOfWork.finish_turn` by the single calls (`ComposedTurns`), claiming nothing (the sender's
        `claim_outbox` finds the items); a store that can do it atomically overrides it."""
        return await _SingleCalls(self).finish_turn(
            conversation, inbox_ids=inbox_ids, events=events, outbound=outbound, owner=owner,
            lease_seconds=lease_seconds, claim=claim, release=release, also=also)


class _SingleCalls(ComposedTurns):
    """`ComposedTurns` over one store's own single calls: the one implementation of `Store`'s defaults."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._contacts = store
        self._conversations = store
        self._inbox = store
        self._transcripts = store
        self._leases = store
        self._clock = store.clock

    async def commit_turn(
        self,
        conversation: Conversation,
        *,
        inbox_ids: Sequence[int] = (),
        events: Sequence[Event] = (),
        outbound: Sequence[Outbound] = (),
    ) -> Conversation:
        return await self._store.commit_turn(conversation, inbox_ids=inbox_ids, events=events, outbound=outbound)
