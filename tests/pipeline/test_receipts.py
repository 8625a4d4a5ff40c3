"""Delivery receipts land on the transcript, also for messages sent before two contacts were linked."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from core.delivery.config import DeliveryConfig
from core.delivery.sender import OutboxSender
from core.identity import IdentityService
from core.model import DeliveryReceipt, DeliveryStatus, Identity, Outbound
from core.pipeline.ingest import Ingest
from core.ports import Parsed
from core.store.sqlite import SQLiteStore


async def test_receipt_for_a_message_sent_before_a_merge_is_recorded_on_the_kept_conversation(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    await store.open()
    try:
        telegram = await store.resolve_contact("demo", Identity("telegram", "7", "7"))
        whatsapp = await store.resolve_contact("demo", Identity("whatsapp", "4915", "4915"))
        wa_conv = await store.conversation_for("demo", whatsapp.id)
        out = Outbound(wa_conv.id, "demo", "whatsapp", "4915", text="Ihre Rechnung ist unterwegs")
        await store.append_events(wa_conv.id, [], [out])
        await store.outbox_sent(out.id, "whatsapp:wamid.ABC")
        kept = await store.merge_contacts(telegram.id, whatsapp.id)
        kept_conv = await store.conversation_for("demo", kept.id)

        ingest = Ingest(store, IdentityService(store, {}))
        receipt = DeliveryReceipt("demo", "whatsapp", "whatsapp:wamid.ABC", DeliveryStatus.READ)
        await ingest.accept(Parsed(receipts=(receipt,)))
        await ingest.accept(Parsed(receipts=(receipt,)))  # platforms resend; recorded once

        events = [e for e in await store.transcript(kept_conv.id) if e.type == "delivery"]
        assert [(e.data["status"], e.data["outbound_id"]) for e in events] == [("read", out.id)]
    finally:
        await store.close()


async def test_a_receipt_whose_recording_failed_is_recorded_when_the_platform_retries(tmp_path: Path) -> None:
    """The store fails between finding the message and writing the event (a disk error, here a
    trigger): the receipt must not be remembered, so the platform's retry records it."""
    store = SQLiteStore(tmp_path / "s.db")
    await store.open()
    try:
        contact = await store.resolve_contact("demo", Identity("whatsapp", "4915", "4915"))
        conv = await store.conversation_for("demo", contact.id)
        out = Outbound(conv.id, "demo", "whatsapp", "4915", text="Ihre Rechnung ist unterwegs")
        await store.append_events(conv.id, [], [out])
        await store.outbox_sent(out.id, "whatsapp:wamid.XYZ")
        assert store._db is not None
        store._db.execute("CREATE TEMP TRIGGER broken BEFORE INSERT ON events"
                          " BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END")
        ingest = Ingest(store, IdentityService(store, {}))
        receipt = DeliveryReceipt("demo", "whatsapp", "whatsapp:wamid.XYZ", DeliveryStatus.DELIVERED)
        with pytest.raises(sqlite3.IntegrityError):
            await ingest.accept(Parsed(receipts=(receipt,)))  # the webhook answers 500: the platform retries
        store._db.execute("DROP TRIGGER broken")
        await ingest.accept(Parsed(receipts=(receipt,)))
        events = [e for e in await store.transcript(conv.id) if e.type == "delivery"]
        assert [(e.data["status"], e.data["outbound_id"]) for e in events] == [("delivered", out.id)]
    finally:
        await store.close()


async def test_a_receipt_before_the_send_was_recorded_lands_once_the_sender_records_it(tmp_path: Path) -> None:
    """WhatsApp's "sent" status can overtake our own record of the send: it is kept, then applied."""
    store = SQLiteStore(tmp_path / "s.db")
    await store.open()
    try:
        contact = await store.resolve_contact("demo", Identity("whatsapp", "4915", "4915"))
        conv = await store.conversation_for("demo", contact.id)
        out = Outbound(conv.id, "demo", "whatsapp", "4915", text="Hallo")
        await store.append_events(conv.id, [], [out])
        ingest = Ingest(store, IdentityService(store, {}))
        await ingest.accept(Parsed(receipts=(DeliveryReceipt("demo", "whatsapp", "whatsapp:wamid.EARLY",
                                                             DeliveryStatus.SENT),)))
        await store.outbox_sent(out.id, "whatsapp:wamid.EARLY")
        sender = OutboxSender(store, {}, DeliveryConfig(metrics_interval=0.02), owner="test")
        await sender.start()
        try:
            async with asyncio.timeout(5):
                while not [e for e in await store.transcript(conv.id) if e.type == "delivery"]:
                    await asyncio.sleep(0.02)
        finally:
            await sender.stop(timeout=1)
        [event] = [e for e in await store.transcript(conv.id) if e.type == "delivery"]
        assert (event.data["status"], event.data["outbound_id"]) == ("sent", out.id)
    finally:
        await store.close()
