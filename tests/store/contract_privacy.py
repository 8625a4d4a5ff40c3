"""The store contract for `PrivacyStore` and `AuditStore`: export, forget, purge, audit (run on every backend by ``test_store_contract.py``)."""

from __future__ import annotations

import json
from datetime import timedelta

from core.model import (
    Contact,
    Conversation,
)
from core.store.base import AuditEntry, OutboxState, Store
from tests.store.contract_support import (
    BOT,
    OTHER_BOT,
    T0,
    contact_and_conversation,
    event,
    identity,
    inbound,
    outbound,
)


class PrivacyContract:
    """Behaviour every store must show for `PrivacyStore` and `AuditStore`; tests need an async ``store`` fixture."""

    # -- privacy -------------------------------------------------------------------------
    async def _personal_conversation(self, store: Store) -> tuple[Contact, Conversation]:
        contact, conv = await contact_and_conversation(store, "u1")
        await store.save_contact(Contact(
            id=contact.id, bot=BOT, identities=contact.identities, display_name="Ada Lovelace",
            phone="4915112345678", created_at=contact.created_at,
        ))
        await store.ingest(conv.id, inbound(1, text="my address is 12 Secret Lane"))
        (item,) = await store.pending_inbox(conv.id)
        reply = outbound(conv, "Thanks Ada, we ship to 12 Secret Lane")
        await store.commit_turn(
            conv.evolve(slots={"address": "12 Secret Lane"}), inbox_ids=[item.id],
            events=[event(1, "my address is 12 Secret Lane"), event(2, "Thanks Ada, we ship to 12 Secret Lane",
                                                                    kind="bot")],
            outbound=[reply],
        )
        await store.ingest(conv.id, inbound(2, text="and call me on 4915112345678"))
        return contact, conv

    async def test_export_contact_holds_all_data_as_json(self, store: Store) -> None:
        contact, conv = await self._personal_conversation(store)
        exported = await store.export_contact(contact.id)
        text = json.dumps(exported)  # JSON-serialisable
        assert contact.id in text and conv.id in text
        assert "Ada Lovelace" in text and "4915112345678" in text
        assert "12 Secret Lane" in text
        assert "chat-u1" in text  # the identity

    async def test_export_of_an_unknown_contact_is_empty(self, store: Store) -> None:
        assert await store.export_contact("ct_missing") == {}

    async def test_forget_contact_erases_personal_text_and_keeps_counts(self, store: Store) -> None:
        contact, conv = await self._personal_conversation(store)
        events_before = len(await store.transcript(conv.id))
        await store.forget_contact(contact.id)
        assert await store.export_contact(contact.id) == {}
        transcript = await store.transcript(conv.id)
        assert len(transcript) == events_before
        leftovers = json.dumps([e.data for e in transcript])
        assert "Secret Lane" not in leftovers and "Ada" not in leftovers
        for item in await store.pending_inbox(conv.id):
            assert "4915112345678" not in item.inbound.text
        stored_conv = await store.get_conversation(conv.id)
        assert stored_conv is not None and "Secret Lane" not in json.dumps(stored_conv.slots)
        remaining = await store.get_contact(contact.id)
        assert remaining is None or (remaining.deleted and remaining.phone is None and remaining.display_name is None)
        assert await store.find_contacts(BOT, phone="4915112345678") == []
        assert await store.count_conversations(BOT) == 1
        counts = await store.outbox_counts()
        assert sum(counts.values()) == 1
        newcomer = await store.resolve_contact(BOT, identity("u1"))
        assert newcomer.id != contact.id

    async def test_forget_blanks_replies_and_releases_platform_ids(self, store: Store) -> None:
        contact, conv = await self._personal_conversation(store)
        (claimed,) = await store.claim_outbox("s1", limit=10, lease_seconds=30)
        await store.forget_contact(contact.id)
        item = await store.get_outbox_item(claimed.outbound.id)
        assert item is not None and item.outbound.text == "" and item.outbound.buttons == ()
        assert item.state is not OutboxState.PENDING  # nothing more goes out to a forgotten person
        # the platform ids of the forgotten messages are gone (they may embed a phone or session)
        assert await store.ingest(conv.id, inbound(1, text="my address is 12 Secret Lane"))

    async def test_purge_blanks_old_finished_replies(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        old = outbound(conv, "your code is 123456", created_at=T0 - timedelta(days=400))
        fresh = outbound(conv, "still needed", created_at=T0)
        waiting = outbound(conv, "not sent yet", created_at=T0 - timedelta(days=400))
        await store.append_events(conv.id, [], [old, fresh])
        for item in (old, fresh):
            (claimed,) = await store.claim_outbox("s1", limit=10, lease_seconds=30)
            await store.outbox_sent(claimed.outbound.id, f"telegram:{item.id}")
        await store.append_events(conv.id, [], [waiting])
        await store.purge_transcripts(BOT, older_than=T0 - timedelta(days=365))
        assert (await store.get_outbox_item(old.id)).outbound.text == ""  # type: ignore[union-attr]
        assert (await store.get_outbox_item(fresh.id)).outbound.text == "still needed"  # type: ignore[union-attr]
        assert (await store.get_outbox_item(waiting.id)).outbound.text == "not sent yet"  # type: ignore[union-attr]

    async def test_purge_transcripts_deletes_old_events_of_one_bot(self, store: Store) -> None:
        _, a = await contact_and_conversation(store, "u1")
        _, b = await contact_and_conversation(store, "u1", bot=OTHER_BOT)
        old, new = T0 - timedelta(days=400), T0
        await store.append_events(a.id, [event(1, at=old), event(2, at=old), event(3, at=new)])
        await store.append_events(b.id, [event(1, at=old)])
        assert await store.purge_transcripts(BOT, older_than=T0 - timedelta(days=365)) == 2
        assert [e.seq for e in await store.transcript(a.id)] == [3]
        assert len(await store.transcript(b.id)) == 1

    async def test_audit_log_is_newest_first_and_per_bot(self, store: Store) -> None:
        await store.audit(AuditEntry("agent:a7", "claim", "conv_1", {"note": "x"}, bot=BOT))
        await store.audit(AuditEntry("admin", "forget", "ct_1", bot=OTHER_BOT))
        await store.audit(AuditEntry("agent:a7", "close", "conv_1", at=T0, bot=BOT))
        log_all = await store.audit_log()
        assert [e.action for e in log_all] == ["close", "forget", "claim"]
        mine = await store.audit_log(bot=BOT)
        assert [e.action for e in mine] == ["close", "claim"]
        assert mine[1].detail == {"note": "x"} and mine[1].actor == "agent:a7" and mine[1].target == "conv_1"
        assert mine[0].at == T0
        assert mine[1].at is not None and mine[1].at.tzinfo is not None
        assert [e.action for e in await store.audit_log(limit=1)] == ["close"]
