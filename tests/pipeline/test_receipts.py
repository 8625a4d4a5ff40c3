"""Delivery receipts land on the transcript, also for messages sent before two contacts were linked."""

from __future__ import annotations

from pathlib import Path

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

        ingest = Ingest(store, IdentityService(store, {}), lambda _: None)
        receipt = DeliveryReceipt("demo", "whatsapp", "whatsapp:wamid.ABC", DeliveryStatus.READ)
        await ingest.accept(Parsed(receipts=(receipt,)))
        await ingest.accept(Parsed(receipts=(receipt,)))  # platforms resend; recorded once

        events = [e for e in await store.transcript(kept_conv.id) if e.type == "delivery"]
        assert [(e.data["status"], e.data["outbound_id"]) for e in events] == [("read", out.id)]
    finally:
        await store.close()
