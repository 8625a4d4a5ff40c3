"""The records the store ports take and return: inbox and outbox items, turn states, receipts, audit.

Plain frozen dataclasses shared by every port (``core/store/ports/``) and implementation.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.model import Contact, Conversation, DeliveryReceipt, Event, Inbound, Outbound


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
    # Claims of the item that ended without a recorded result (the sender died, or lost its
    # lease, between claiming and recording): each of those sends may have reached the
    # platform, so the item is "maybe sent" and a copy may go out (the crash window).
    in_doubt: int = 0
    # This claim took over such an expired claim (it counted one more in doubt): the earlier
    # sender may still record its send late, so the sender waits its takeover grace first.
    taken_over: bool = False


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


class TurnWrite:
    """A write that rides along with a turn's commit (`TurnUnitOfWork.finish_turn`'s ``also``).

    A store whose turn unit can hold it (same backend, same file) runs it there, after the
    turn's own writes and isolated from them; otherwise the caller runs it on its own (`run`)
    once the turn is committed. Either way it is written only if the turn is, and its failure
    never fails the turn: it is logged and counted under ``label`` (``switchboard_errors_total``).
    A concern store builds it (e.g. `AnalyticsStore.turn_write`); the hot path knows only this.
    """

    __slots__ = ("label", "run")

    def __init__(self, label: str, run: Callable[[], Awaitable[None]]) -> None:
        self.label = label
        self.run = run  # the write on its own: its own unit of work / round trip


@dataclass(frozen=True, slots=True)
class TurnCommit:
    """What `Store.finish_turn` wrote and took.

    ``claimed``: the replies now leased to the caller's sender (at most the first).
    ``released``: nothing of the conversation is left pending and the turn lease is released.
    ``events``: the turn's events as stored, with their seq; empty if the store does not
    tell (the caller then reads them back when it needs them).
    ``later``: the ride-along writes (``also``) the store did not run inside the commit; the
    caller runs them once it is done with the turn (`core.store.ports.turns.run_after_commit`).
    """

    conversation: Conversation
    claimed: list[OutboxItem] = field(default_factory=list)
    released: bool = False
    events: list[Event] = field(default_factory=list)
    later: list[TurnWrite] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    actor: str
    action: str
    target: str
    detail: dict[str, Any] = field(default_factory=dict)
    at: datetime | None = None
    bot: str | None = None
