"""The `Store` contract: every persistence call of the farm goes through it.

Two implementations pass the same conformance suite (``tests/store/``): SQLite
(embedded default) and MongoDB (several farm processes on one replica set).
Anything a second process may race on is decided inside the store: inbox
de-duplication (unique key), turn commits (conversation version), outbox claims
and named leases (owner + expiry).
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.model import (
    Contact,
    Conversation,
    ConversationStatus,
    DeliveryReceipt,
    Event,
    Identity,
    Inbound,
    Outbound,
    utcnow,
)


class OutboxState(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class InboxItem:
    """A durably accepted customer message waiting for (or done with) its turn.

    ``attempts``: turns of it that failed (`Store.inbox_retry`); ``not_before``: not to be
    tried again before then (backoff); ``replays``: times it was replayed from dead letters.
    """

    id: int
    conversation_id: str
    inbound: Inbound
    received_at: datetime
    attempts: int = 0
    not_before: datetime | None = None
    last_error: str | None = None
    replays: int = 0

    def due(self, now: datetime) -> bool:
        return self.not_before is None or self.not_before <= now


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An inbox item whose turn failed for good: parked until replayed or dropped."""

    item: InboxItem
    bot: str
    error: str
    dead_at: datetime


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """An outbound message and its delivery bookkeeping."""

    outbound: Outbound
    state: OutboxState = OutboxState.PENDING
    attempts: int = 0
    not_before: datetime | None = None
    last_error: str | None = None
    platform_message_id: str | None = None
    # The fence of the claim that returned the item: a fresh token per claim, and when the
    # lease runs out (the store's stamp). Results are recorded only with the current token.
    lease_token: str | None = None
    lease_until: datetime | None = None


class ReceiptOutcome(enum.StrEnum):
    RECORDED = "recorded"  # on the transcript of the message's conversation
    DUPLICATE = "duplicate"  # seen before (platforms resend): nothing written
    PARKED = "parked"  # no sent message has that platform id yet: kept, applied once one has


RECEIPT_TTL_SECONDS = 7 * 86400  # how long receipts are de-duplicated, and parked ones kept


def receipt_key(receipt: DeliveryReceipt) -> str:
    return f"receipt:{receipt.channel}:{receipt.platform_message_id}:{receipt.status.value}"


def receipt_event(receipt: DeliveryReceipt, outbound_id: str) -> Event:
    """The transcript's ``delivery`` event for a platform receipt about outbox item ``outbound_id``."""
    data: dict[str, Any] = {"status": receipt.status.value, "outbound_id": outbound_id,
                            "platform_message_id": receipt.platform_message_id}
    if receipt.error:
        data["error"] = receipt.error
    return Event("delivery", data, channel=receipt.channel, timestamp=receipt.timestamp)


@dataclass(frozen=True, slots=True)
class Accepted:
    """What `Store.accept_inbound` did with a customer message."""

    conversation_id: str
    stored: bool  # False: (bot, channel, platform id) was seen before, nothing was written


@dataclass(frozen=True, slots=True)
class TurnState:
    """A conversation's next turn as `Store.next_turn` read it, under the turn lease.

    ``item`` is None when nothing is pending (the lease was then released); ``retry_at`` then
    says when the oldest pending item, backing off after a failed turn, is due.
    ``since_seq`` None: ``events`` are the newest ``history`` events of the transcript;
    otherwise only those after ``since_seq`` (the caller's cached window is current).
    """

    item: InboxItem | None
    conversation: Conversation | None = None
    contact: Contact | None = None
    events: list[Event] = field(default_factory=list)
    since_seq: int | None = None
    retry_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TurnCommit:
    """What `Store.finish_turn` wrote and took.

    ``claimed``: the replies now leased to the caller's sender (at most the first).
    ``released``: nothing of the conversation is left pending and the turn lease is released.
    ``events``: the turn's events as stored, with their seq; empty if the store does not
    tell (the caller then reads them back when it needs them).
    """

    conversation: Conversation
    claimed: list[OutboxItem] = field(default_factory=list)
    released: bool = False
    events: list[Event] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    actor: str
    action: str
    target: str
    detail: dict[str, Any] = field(default_factory=dict)
    at: datetime | None = None
    bot: str | None = None


class Store(ABC):
    """Durable state of the farm. All methods are safe to call concurrently."""

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

    # -- contacts ------------------------------------------------------------------
    @abstractmethod
    async def resolve_contact(
        self, bot: str, identity: Identity, *, display_name: str | None = None
    ) -> Contact:
        """The contact owning ``identity`` in ``bot``, created if new; marks the channel as last used."""

    @abstractmethod
    async def get_contact(self, contact_id: str) -> Contact | None: ...

    @abstractmethod
    async def save_contact(self, contact: Contact) -> None:
        """Store every field of ``contact`` (identities included)."""

    @abstractmethod
    async def find_contacts(
        self, bot: str, *, phone: str | None = None, identity: Identity | None = None
    ) -> list[Contact]:
        """Contacts of ``bot`` with this verified phone or this channel identity."""

    @abstractmethod
    async def merge_contacts(self, keep_id: str, drop_id: str) -> Contact:
        """Move identities, conversations' transcript and inbox of ``drop_id`` to ``keep_id``.

        The transcripts are merged in time order into the kept contact's
        conversation (renumbered, and its version increased); the dropped contact and
        conversation disappear.
        """

    # -- conversations -------------------------------------------------------------
    @abstractmethod
    async def conversation_for(self, bot: str, contact_id: str) -> Conversation:
        """The contact's conversation with ``bot``, created on first use."""

    @abstractmethod
    async def get_conversation(self, conversation_id: str) -> Conversation | None: ...

    @abstractmethod
    async def find_conversation_by_thread(self, bot: str, desk_thread: str) -> Conversation | None: ...

    @abstractmethod
    async def list_conversations(
        self,
        bot: str | None = None,
        statuses: Sequence[ConversationStatus] | None = None,
        limit: int = 100,
    ) -> list[Conversation]:
        """Most recently updated first."""

    @abstractmethod
    async def save_conversation(self, conversation: Conversation) -> Conversation:
        """Save if the stored version equals ``conversation.version``; return it with version + 1.

        Raises `ConcurrencyConflict` otherwise.
        """

    # -- inbox (ingest) ------------------------------------------------------------
    @abstractmethod
    async def ingest(self, conversation_id: str, inbound: Inbound) -> bool:
        """Durably accept a customer message; False if (channel, platform id) was seen before."""

    async def accept_inbound(self, inbound: Inbound, *, phone: str | None = None) -> Accepted | None:
        """`resolve_contact` + `conversation_for` + `ingest`: the hot path of every webhook.

        ``phone``: the number the message verifies as its sender's. If the contact does
        not have it as its verified phone yet, only the contact is resolved and None is
        returned: the caller links contacts by that number first, then ingests (so the
        message lands in the linked conversation). This default makes the single calls;
        a store may override it to do them in one round trip.
        """
        identity = Identity(inbound.channel, inbound.channel_user_id, inbound.chat_id)
        contact = await self.resolve_contact(inbound.bot, identity, display_name=inbound.display_name)
        if phone is not None and contact.phone != phone:
            return None
        conversation = await self.conversation_for(inbound.bot, contact.id)
        return Accepted(conversation.id, await self.ingest(conversation.id, inbound))

    @abstractmethod
    async def pending_inbox(self, conversation_id: str, limit: int = 50) -> list[InboxItem]:
        """Unprocessed inbox items of one conversation, oldest first (backing-off ones too)."""

    @abstractmethod
    async def conversations_with_pending_inbox(self, limit: int = 100) -> list[str]:
        """Ids of conversations whose oldest unprocessed inbox item is due, oldest item first.

        A conversation whose oldest item backs off (`inbox_retry`) is left out until then,
        so failing conversations do not fill the window of a sweeper.
        """

    # -- failed turns and dead letters ----------------------------------------------------
    @abstractmethod
    async def inbox_retry(self, item_id: int, not_before: datetime, error: str) -> bool:
        """Count a failed turn of a pending item; try it (and its conversation) again at
        ``not_before``. False if the item is not pending (nothing written)."""

    @abstractmethod
    async def dead_letter(
        self, item_id: int, error: str, *, events: Sequence[Event] = (), outbound: Sequence[Outbound] = ()
    ) -> bool:
        """Atomically: park a pending item as a dead letter (its conversation moves on), count
        the attempt, append ``events`` to its conversation and queue ``outbound`` (the apology).
        False, and nothing written, if the item is not pending."""

    @abstractmethod
    async def dead_letters(self, *, bot: str | None = None, limit: int = 100) -> list[DeadLetter]:
        """Dead letters, oldest first."""

    @abstractmethod
    async def count_dead_letters(self) -> int: ...

    @abstractmethod
    async def replay_dead_letter(self, item_id: int) -> str | None:
        """Make a dead letter pending again (attempts reset, ``replays`` + 1); its
        conversation id, or None if it is no dead letter."""

    @abstractmethod
    async def drop_dead_letter(self, item_id: int) -> str | None:
        """Mark a dead letter processed without a turn; its conversation id, or None if it is
        no dead letter."""

    # -- turns and transcript --------------------------------------------------------
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
        released and the state has no item. This default composes the single calls;
        a store may override it to do them in one round trip.
        """
        if not await self.acquire_lease(lease, owner, lease_seconds):
            return None
        items = await self.pending_inbox(conversation_id, limit=1)
        if not items or not items[0].due(utcnow()):
            await self.release_lease(lease, owner)
            return TurnState(None, retry_at=items[0].not_before if items else None)
        conversation = await self.get_conversation(conversation_id)
        contact = await self.get_contact(conversation.contact_id) if conversation else None
        if conversation is not None and cached is not None and cached[0] == conversation.version:
            events = await self.transcript(conversation_id, after_seq=cached[1])
            return TurnState(items[0], conversation, contact, events, cached[1])
        events = await self.transcript(conversation_id, limit=history)
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

        This default composes the single calls and claims nothing (the sender's
        `claim_outbox` finds the items); a store that can do it atomically overrides it.
        """
        saved = await self.commit_turn(conversation, inbox_ids=inbox_ids, events=events, outbound=outbound)
        released = False
        if release is not None and not await self.pending_inbox(conversation.id, limit=1):
            await self.release_lease(release, owner)
            released = True
        return TurnCommit(saved, [], released)

    @abstractmethod
    async def append_events(
        self, conversation_id: str, events: Sequence[Event], outbound: Sequence[Outbound] = ()
    ) -> list[Event]:
        """Append events (and queue outbound) outside a turn, e.g. delivery receipts, notes."""

    @abstractmethod
    async def transcript(
        self, conversation_id: str, *, after_seq: int = 0, limit: int | None = None
    ) -> list[Event]:
        """Events in order with their ``seq``; ``limit`` keeps the newest ones."""

    # -- outbox ----------------------------------------------------------------------
    @abstractmethod
    async def claim_outbox(self, owner: str, *, limit: int, lease_seconds: float) -> list[OutboxItem]:
        """Due pending items, at most one per conversation (the oldest), leased to ``owner``
        with a fresh ``lease_token`` until ``lease_until`` (stamped with a time read after the
        item was found, so a slow query never hands out a lease shorter than it says).

        A conversation's next item is only claimable once the previous one is sent
        or failed, so each conversation's replies go out in order.
        """

    @abstractmethod
    async def outbox_renew(self, outbound_id: str, token: str, lease_seconds: float) -> bool:
        """Prove and extend a claim: True, with the lease running ``lease_seconds`` from a time
        read after the call was made, if ``token`` is still the item's lease token (nobody
        claimed it since) and it is pending; False, and nothing written, otherwise."""

    @abstractmethod
    async def outbox_sent(self, outbound_id: str, platform_message_id: str, *, token: str | None = None) -> bool:
        """Mark sent. With ``token``: only if it is still the item's lease token (False, and
        nothing written, if another sender claimed it since); without: unconditionally."""

    @abstractmethod
    async def outbox_retry(
        self, outbound_id: str, not_before: datetime, error: str, *, token: str | None = None
    ) -> bool:
        """Release the lease; count the attempt; try again at ``not_before`` (fenced as `outbox_sent`)."""

    @abstractmethod
    async def outbox_failed(self, outbound_id: str, error: str, *, token: str | None = None) -> bool:
        """Final failure (fenced as `outbox_sent`)."""

    @abstractmethod
    async def get_outbox_item(self, outbound_id: str) -> OutboxItem | None: ...

    @abstractmethod
    async def outbox_counts(self) -> dict[OutboxState, int]: ...

    @abstractmethod
    async def find_by_platform_message(self, channel: str, platform_message_id: str) -> OutboxItem | None:
        """The outbox item a platform id belongs to (for delivery receipts)."""

    @abstractmethod
    async def record_receipt(self, receipt: DeliveryReceipt) -> ReceiptOutcome:
        """Put a delivery receipt on its message's transcript (`receipt_event`), and only then
        remember it for de-duplication (`receipt_key`, `RECEIPT_TTL_SECONDS`), in one unit where
        the store can: a failure in between never turns the platform's retry into a duplicate.
        A receipt for a platform id no sent message has yet (it overtook `outbox_sent`) is
        parked and remembered; `apply_parked_receipts` records it later."""

    @abstractmethod
    async def apply_parked_receipts(self, limit: int = 100) -> int:
        """Record parked receipts whose message now has its platform id; drop those older than
        `RECEIPT_TTL_SECONDS`. Returns how many were recorded."""

    # -- coordination ------------------------------------------------------------------
    @abstractmethod
    async def acquire_lease(self, name: str, owner: str, ttl_seconds: float) -> bool:
        """Take or renew a named lease; True if ``owner`` holds it until now + ttl."""

    @abstractmethod
    async def release_lease(self, name: str, owner: str) -> None: ...

    @abstractmethod
    async def remember(self, key: str, ttl_seconds: float) -> bool:
        """Record ``key``; True the first time, False while it is remembered (dedupe)."""

    @abstractmethod
    async def kv_get(self, key: str) -> Any | None:
        """A JSON value stored with `kv_set`, or None (also when expired)."""

    @abstractmethod
    async def kv_set(self, key: str, value: Any, ttl_seconds: float | None = None) -> None: ...

    @abstractmethod
    async def kv_delete(self, key: str) -> None: ...

    # -- privacy ------------------------------------------------------------------------
    @abstractmethod
    async def export_contact(self, contact_id: str) -> dict[str, Any]:
        """Everything held about a contact, JSON-serialisable; {} if unknown or forgotten."""

    @abstractmethod
    async def forget_contact(self, contact_id: str) -> None:
        """Erase personal data and transcript text; keep anonymous counts."""

    @abstractmethod
    async def purge_transcripts(self, bot: str, older_than: datetime) -> int:
        """Delete transcript events older than ``older_than``; return how many."""

    @abstractmethod
    async def audit(self, entry: AuditEntry) -> None: ...

    @abstractmethod
    async def audit_log(self, *, bot: str | None = None, limit: int = 100) -> list[AuditEntry]: ...

    @abstractmethod
    async def count_conversations(self, bot: str | None = None) -> int: ...
