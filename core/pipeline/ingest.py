"""Ingest: the first thing the core does with what an adapter parsed.

De-duplicate on (bot, channel, platform message id), resolve the contact, append
the message to the inbox durably, and only then return, so the adapter may
acknowledge the platform. Delivery receipts are recorded on the transcript.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import structlog

from core import metrics
from core.model import Contact, DeliveryReceipt, Event, Inbound
from core.ports import Parsed
from core.store.base import Store

log = structlog.get_logger(__name__)


class ContactResolver(Protocol):
    def verified_phone(self, inbound: Inbound) -> str | None:
        """The normalised phone number ``inbound`` verifies as its sender's, if any."""
        ...

    async def resolve(self, inbound: Inbound) -> Contact: ...


class Ingest:
    """Accepts parsed platform input; calls ``on_accepted(conversation_id)`` for each new message."""

    def __init__(self, store: Store, resolver: ContactResolver, on_accepted: Callable[[str], None]) -> None:
        self.store = store
        self.resolver = resolver
        self.on_accepted = on_accepted

    async def accept(self, parsed: Parsed) -> None:
        for reason in parsed.ignored:
            log.debug("ingest.ignored", reason=reason)
        for message in parsed.messages:
            await self.accept_message(message)
        for receipt in parsed.receipts:
            await self.accept_receipt(receipt)

    async def accept_message(self, message: Inbound) -> str | None:
        """Store one message; return its conversation id, or None if it was a duplicate."""
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
        metrics.INBOUND.labels(message.bot, message.channel).inc()
        self.on_accepted(conversation_id)
        return conversation_id

    async def accept_receipt(self, receipt: DeliveryReceipt) -> None:
        metrics.RECEIPTS.labels(receipt.channel, receipt.status.value).inc()
        if not await self.store.remember(
            f"receipt:{receipt.channel}:{receipt.platform_message_id}:{receipt.status.value}", 7 * 86400
        ):
            return
        item = await self.store.find_by_platform_message(receipt.channel, receipt.platform_message_id)
        if item is None:
            log.info("ingest.receipt_unknown", channel=receipt.channel, message=receipt.platform_message_id)
            return
        data: dict[str, Any] = {
            "status": receipt.status.value,
            "outbound_id": item.outbound.id,
            "platform_message_id": receipt.platform_message_id,
        }
        if receipt.error:
            data["error"] = receipt.error
        await self.store.append_events(
            item.outbound.conversation_id,
            [Event("delivery", data, channel=receipt.channel, timestamp=receipt.timestamp)],
        )
