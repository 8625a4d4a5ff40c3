"""`OutboxStore` (replies in order per conversation, fenced leases of senders) and `ReceiptStore`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime

from core.model import DeliveryReceipt
from core.store.records import OutboxItem, OutboxState, ReceiptOutcome


class OutboxStore(ABC):
    """The outbox: replies in order per conversation, fenced leases of senders."""

    @abstractmethod
    async def claim_outbox(self, owner: str, *, limit: int, lease_seconds: float) -> list[OutboxItem]:
        """Due pending items, at most one per conversation (the oldest), leased to ``owner``
        with a fresh ``lease_token`` until ``lease_until`` (stamped with a time read after the
        item was found, so a slow query never hands out a lease shorter than it says).

        A conversation's next item is only claimable once the previous one is sent
        or failed, so each conversation's replies go out in order.

        A claim that takes over an expired one that ended without a result (its token still
        on the item: the sender died or lost its lease mid-send) counts the item in doubt
        (`OutboxItem.in_doubt`: it may have reached the platform) and says so
        (`OutboxItem.taken_over`: the earlier sender's "sent" may still land, `outbox_sent`).
        """

    @abstractmethod
    async def outbox_renew(self, outbound_id: str, token: str, lease_seconds: float) -> bool:
        """Prove and extend a claim: True, with the lease running ``lease_seconds`` from a time
        read when the call was made (or later), if ``token`` is still the item's lease token
        (nobody claimed it since) and it is pending; False, and nothing written, otherwise.
        A renewal never shortens the lease: one that lands after a later one leaves it as is
        (a sender's heartbeat issues renewals without waiting for a slow store)."""

    @abstractmethod
    async def outbox_sent(self, outbound_id: str, platform_message_id: str, *, token: str | None = None) -> bool:
        """Mark sent. With ``token``: if the item has no result yet (pending), also when another
        sender claimed it since (a superseded holder's send happened: the fact is recorded, and
        the newer holder's proof, `outbox_renew`, then fails, so it does not send it again);
        False, and nothing written, if it is already sent or failed. Without: unconditionally."""

    @abstractmethod
    async def outbox_retry(
        self, outbound_id: str, not_before: datetime, error: str, *, token: str | None = None
    ) -> bool:
        """Release the lease; count the attempt; try again at ``not_before``. With ``token``: only
        if it is still the item's lease token (False, and nothing written, otherwise: a superseded
        holder must not release a newer claim); without: if the item is pending."""

    @abstractmethod
    async def outbox_failed(self, outbound_id: str, error: str, *, token: str | None = None) -> bool:
        """Final failure. With ``token``: only if it is still the item's lease token (False, and
        nothing written, otherwise: the newer holder's own attempt decides); without: unconditionally."""

    @abstractmethod
    async def get_outbox_item(self, outbound_id: str) -> OutboxItem | None: ...

    @abstractmethod
    async def outbox_counts(self) -> dict[OutboxState, int]: ...


class ReceiptStore(ABC):
    """Delivery receipts of platforms, put on the transcript of the message they are about."""

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
