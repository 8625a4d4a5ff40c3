"""Ingest: the first thing the core does with what an adapter parsed.

De-duplicate on (bot, channel, platform message id), resolve the contact, append
the message to the inbox durably, and only then return, so the adapter may
acknowledge the platform. Delivery receipts are recorded on the transcript.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import structlog

from core import metrics
from core.model import Contact, DeliveryReceipt, Inbound
from core.ports import Parsed
from core.store.base import ReceiptOutcome, Store

log = structlog.get_logger(__name__)


class ContactResolver(Protocol):
    def verified_phone(self, inbound: Inbound) -> str | None:
        """The normalised phone number ``inbound`` verifies as its sender's, if any."""
        ...

    async def resolve(self, inbound: Inbound) -> Contact: ...


class TurnQueue(Protocol):
    """Where an accepted message goes next: the turns (`core.pipeline.turns.TurnRunner`)."""

    def schedule(self, conversation_id: str) -> None: ...


class Ingest:
    """Accepts parsed platform input; hands each conversation with a new message to ``turns``
    (None: only stored, for tests; the sweeper of a running farm would find it)."""

    def __init__(self, store: Store, resolver: ContactResolver, turns: TurnQueue | None = None) -> None:
        self.store = store
        self.resolver = resolver
        self.turns = turns
        #: Applied to each message before it is stored (privacy: its text sealed at rest; set by the farm
        #: from the plugins' `PluginParts.at_rest`).
        self.prepare: Callable[[Inbound], Inbound] | None = None

    async def accept(self, parsed: Parsed) -> None:
        for reason in parsed.ignored:
            log.debug("ingest.ignored", reason=reason)
        for message in parsed.messages:
            await self.accept_message(message)
        for receipt in parsed.receipts:
            await self.accept_receipt(receipt)

    async def accept_message(self, message: Inbound) -> str | None:
        """Store one message; return its conversation id, or None if it was a duplicate."""
        if self.prepare is not None:
            message = self.prepare(message)
        # The common case is one store call: contact, conversation and inbox together.
        accepted = await self.store.accept_inbound(message, phone=self.resolver.verified_phone(message))
        if accepted is not None:
            conversation_id, stored = accepted.conversation_id, accepted.stored
        else:  # a phone number verified for the first time: link contacts, then ingest
            contact = await self.resolver.resolve(message)
            conversation_id = (await self.store.conversation_for(message.bot, contact.id)).id
            stored = await self.store.ingest(conversation_id, message)
        if not stored:
            metrics.DUPLICATES.labels(message.bot, message.channel).inc()
            log.info("ingest.duplicate", bot=message.bot, channel=message.channel,
                     message=message.platform_message_id)
            return None
        metrics.child(metrics.INBOUND, message.bot, message.channel).inc()
        if self.turns is not None:
            self.turns.schedule(conversation_id)
        return conversation_id

    async def accept_receipt(self, receipt: DeliveryReceipt) -> None:
        """Record a delivery receipt on its message's transcript (de-duplicated by the store, which
        remembers it only once recorded); one that overtook its message's send is parked and
        recorded later (`Store.apply_parked_receipts`, run by the outbox sender)."""
        metrics.RECEIPTS.labels(receipt.channel, receipt.status.value).inc()
        outcome = await self.store.record_receipt(receipt)
        if outcome is ReceiptOutcome.PARKED:
            log.info("ingest.receipt_parked", channel=receipt.channel, message=receipt.platform_message_id)
