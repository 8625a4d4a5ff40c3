"""The store contract for `ContactStore`: contacts, identities and merging contacts (run on every backend by ``test_store_contract.py``)."""

from __future__ import annotations

import asyncio

import pytest

from core.errors import NotFound
from core.model import (
    Contact,
    Identity,
)
from core.store.base import Store
from tests.store.contract_support import (
    BOT,
    contact_and_conversation,
    event,
    identity,
    inbound,
)


class ContactContract:
    """Behaviour every store must show for `ContactStore`; tests need an async ``store`` fixture."""

    # -- lifecycle -----------------------------------------------------------------------
    async def test_open_twice_is_harmless_and_ping_answers(self, store: Store) -> None:
        await store.open()
        await store.ping()

    # -- contacts ------------------------------------------------------------------------
    async def test_resolve_contact_creates_a_contact_with_the_identity(self, store: Store) -> None:
        contact = await store.resolve_contact(BOT, identity("u1"), display_name="Ada")
        assert contact.bot == BOT
        assert contact.identities == (identity("u1"),)
        assert contact.display_name == "Ada"
        assert contact.last_channel == "telegram"
        assert contact.created_at.tzinfo is not None
        assert await store.get_contact(contact.id) == contact

    async def test_resolve_contact_is_idempotent_for_one_identity(self, store: Store) -> None:
        first = await store.resolve_contact(BOT, identity("u1"))
        second = await store.resolve_contact(BOT, identity("u1"), display_name="Ada")
        assert second.id == first.id
        assert second.identities == (identity("u1"),)
        assert second.display_name == "Ada"  # filled in because it was missing

    async def test_resolve_contact_updates_the_chat_of_a_known_identity(self, store: Store) -> None:
        first = await store.resolve_contact(BOT, identity("u1"))
        moved = Identity("telegram", "u1", "chat-new")
        again = await store.resolve_contact(BOT, moved)
        assert again.id == first.id
        assert again.identity("telegram") == moved

    async def test_different_identities_are_different_contacts(self, store: Store) -> None:
        a = await store.resolve_contact(BOT, identity("u1"))
        b = await store.resolve_contact(BOT, identity("u2"))
        c = await store.resolve_contact(BOT, identity("u1", channel="whatsapp"))
        assert len({a.id, b.id, c.id}) == 3

    async def test_concurrent_resolves_of_a_new_identity_make_one_contact(self, store: Store) -> None:
        contacts = await asyncio.gather(*(store.resolve_contact(BOT, identity("u1")) for _ in range(6)))
        assert len({c.id for c in contacts}) == 1
        assert await store.find_contacts(BOT, identity=identity("u1")) == [await store.get_contact(contacts[0].id)]

    async def test_resolve_contact_marks_the_channel_used_last(self, store: Store) -> None:
        contact = await store.resolve_contact(BOT, identity("u1"))
        web = Identity("webchat", "session-1", "session-1")
        await store.save_contact(Contact(
            id=contact.id, bot=BOT, identities=contact.identities + (web,), created_at=contact.created_at,
            last_channel="telegram",
        ))
        resolved = await store.resolve_contact(BOT, web)
        assert resolved.id == contact.id
        assert resolved.last_channel == "webchat"
        assert resolved.reply_identity() == web

    async def test_get_contact_of_unknown_id_is_none(self, store: Store) -> None:
        assert await store.get_contact("ct_missing") is None

    async def test_save_contact_stores_every_field(self, store: Store) -> None:
        contact = await store.resolve_contact(BOT, identity("u1"))
        changed = Contact(
            id=contact.id,
            bot=BOT,
            identities=(identity("u1"), Identity("whatsapp", "4915112345678", "4915112345678")),
            display_name="Ada Lovelace",
            phone="4915112345678",
            last_agent="agent-7",
            last_channel="whatsapp",
            consent=False,
            deleted=False,
            created_at=contact.created_at,
        )
        await store.save_contact(changed)
        assert await store.get_contact(contact.id) == changed
        again = await store.resolve_contact(BOT, Identity("whatsapp", "4915112345678", "4915112345678"))
        assert again.id == contact.id

    async def test_save_contact_can_remove_an_identity(self, store: Store) -> None:
        contact = await store.resolve_contact(BOT, identity("u1"))
        await store.save_contact(Contact(id=contact.id, bot=BOT, identities=(), created_at=contact.created_at))
        assert (await store.get_contact(contact.id)).identities == ()  # type: ignore[union-attr]
        fresh = await store.resolve_contact(BOT, identity("u1"))
        assert fresh.id != contact.id

    async def test_find_contacts_by_verified_phone(self, store: Store) -> None:
        contact = await store.resolve_contact(BOT, identity("u1"))
        await store.resolve_contact(BOT, identity("u2"))
        await store.save_contact(Contact(
            id=contact.id, bot=BOT, identities=contact.identities, phone="4915112345678", created_at=contact.created_at,
        ))
        found = await store.find_contacts(BOT, phone="4915112345678")
        assert [c.id for c in found] == [contact.id]
        assert await store.find_contacts(BOT, phone="4900000000") == []

    async def test_find_contacts_by_identity(self, store: Store) -> None:
        contact = await store.resolve_contact(BOT, identity("u1"))
        assert [c.id for c in await store.find_contacts(BOT, identity=identity("u1"))] == [contact.id]
        assert await store.find_contacts(BOT, identity=identity("nobody")) == []

    # -- merging -------------------------------------------------------------------------
    async def test_merge_moves_identities_and_removes_the_dropped_contact(self, store: Store) -> None:
        keep = await store.resolve_contact(BOT, identity("u1"))
        drop = await store.resolve_contact(BOT, Identity("whatsapp", "4915112345678", "4915112345678"))
        await store.save_contact(Contact(
            id=drop.id, bot=BOT, identities=drop.identities, phone="4915112345678", created_at=drop.created_at,
        ))
        merged = await store.merge_contacts(keep.id, drop.id)
        assert merged.id == keep.id
        assert {i.channel for i in merged.identities} == {"telegram", "whatsapp"}
        assert merged.phone == "4915112345678"
        assert await store.get_contact(drop.id) is None
        resolved = await store.resolve_contact(BOT, Identity("whatsapp", "4915112345678", "4915112345678"))
        assert resolved.id == keep.id

    async def test_merge_interleaves_both_transcripts_in_time_order(self, store: Store) -> None:
        keep, keep_conv = await contact_and_conversation(store, "u1")
        drop, drop_conv = await contact_and_conversation(store, "u2", channel="whatsapp")
        await store.append_events(keep_conv.id, [event(1, "k1"), event(3, "k3")])
        await store.append_events(drop_conv.id, [event(2, "d2"), event(4, "d4")])
        await store.merge_contacts(keep.id, drop.id)
        merged = await store.transcript(keep_conv.id)
        assert [e.data["text"] for e in merged] == ["k1", "d2", "k3", "d4"]
        assert [e.seq for e in merged] == [1, 2, 3, 4]
        kept_after = await store.get_conversation(keep_conv.id)
        assert kept_after is not None and kept_after.version == keep_conv.version + 1  # renumbered: reload
        assert await store.get_conversation(drop_conv.id) is None
        assert await store.transcript(drop_conv.id) == []
        assert await store.count_conversations(BOT) == 1
        # new events continue after the merged ones
        appended = await store.append_events(keep_conv.id, [event(5, "k5")])
        assert appended[0].seq == 5

    async def test_merge_moves_the_pending_inbox(self, store: Store) -> None:
        keep, keep_conv = await contact_and_conversation(store, "u1")
        drop, drop_conv = await contact_and_conversation(store, "u2")
        assert await store.ingest(drop_conv.id, inbound(1, user="u2"))
        await store.merge_contacts(keep.id, drop.id)
        pending = await store.pending_inbox(keep_conv.id)
        assert [p.inbound.platform_message_id for p in pending] == ["telegram:u2:1"]
        assert await store.conversations_with_pending_inbox() == [keep_conv.id]

    async def test_merge_into_a_contact_without_conversation_keeps_the_transcript(self, store: Store) -> None:
        keep = await store.resolve_contact(BOT, identity("u1"))
        drop, drop_conv = await contact_and_conversation(store, "u2")
        await store.append_events(drop_conv.id, [event(1, "hello")])
        await store.merge_contacts(keep.id, drop.id)
        conv = await store.conversation_for(BOT, keep.id)
        assert [e.data["text"] for e in await store.transcript(conv.id)] == ["hello"]
        assert await store.count_conversations(BOT) == 1

    async def test_merge_of_an_unknown_contact_raises_not_found(self, store: Store) -> None:
        keep = await store.resolve_contact(BOT, identity("u1"))
        with pytest.raises(NotFound):
            await store.merge_contacts(keep.id, "ct_missing")
