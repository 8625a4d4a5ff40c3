"""The store contract for `ConversationStore`: conversations, versions, desk threads, tenants (run on every backend by ``test_store_contract.py``)."""

from __future__ import annotations

import asyncio

import pytest

from core.errors import ConcurrencyConflict, StoreError
from core.model import (
    Contact,
    Conversation,
    ConversationStatus,
)
from core.store.base import Store
from tests.store.contract_support import (
    BOT,
    OTHER_BOT,
    advance,
    contact_and_conversation,
    identity,
    inbound,
)


class ConversationContract:
    """Behaviour every store must show for `ConversationStore`; tests need an async ``store`` fixture."""

    # -- conversations -------------------------------------------------------------------
    async def test_conversation_for_creates_once_and_returns_the_same(self, store: Store) -> None:
        contact = await store.resolve_contact(BOT, identity("u1"))
        first = await store.conversation_for(BOT, contact.id)
        second = await store.conversation_for(BOT, contact.id)
        assert first == second
        assert first.status is ConversationStatus.BOT
        assert first.version == 0
        assert first.contact_id == contact.id and first.bot == BOT
        assert await store.get_conversation(first.id) == first

    async def test_concurrent_conversation_for_creates_one(self, store: Store) -> None:
        contact = await store.resolve_contact(BOT, identity("u1"))
        convs = await asyncio.gather(*(store.conversation_for(BOT, contact.id) for _ in range(6)))
        assert len({c.id for c in convs}) == 1
        assert await store.count_conversations(BOT) == 1

    async def test_get_conversation_of_unknown_id_is_none(self, store: Store) -> None:
        assert await store.get_conversation("conv_missing") is None

    async def test_save_conversation_stores_fields_and_increments_version(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        changed = conv.evolve(
            status=ConversationStatus.AGENT, assigned_agent="agent-7", desk_thread="C1/1700000000.0001",
            language="de", slots={"order": {"id": 42, "items": ["a", "b"]}, "vip": True}, active_form="order_form",
            handoff_reason="asked for a person",
        )
        saved = await store.save_conversation(changed)
        assert saved.version == conv.version + 1
        assert saved.updated_at >= conv.updated_at
        stored = await store.get_conversation(conv.id)
        assert stored == saved
        assert stored is not None and stored.slots == {"order": {"id": 42, "items": ["a", "b"]}, "vip": True}

    async def test_save_with_a_stale_version_raises_concurrency_conflict(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        await store.save_conversation(conv.evolve(language="en"))
        with pytest.raises(ConcurrencyConflict):
            await store.save_conversation(conv.evolve(language="fr"))
        stored = await store.get_conversation(conv.id)
        assert stored is not None and stored.language == "en" and stored.version == 1

    async def test_concurrent_saves_of_one_version_let_exactly_one_win(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        results = await asyncio.gather(
            *(store.save_conversation(conv.evolve(language=lang)) for lang in ("de", "fr", "es", "it")),
            return_exceptions=True,
        )
        winners = [r for r in results if isinstance(r, Conversation)]
        assert len(winners) == 1
        assert all(isinstance(r, ConcurrencyConflict) for r in results if not isinstance(r, Conversation))
        assert await store.get_conversation(conv.id) == winners[0]

    async def test_find_conversation_by_desk_thread(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        saved = await store.save_conversation(conv.evolve(desk_thread="C1/123.456"))
        assert await store.find_conversation_by_thread(BOT, "C1/123.456") == saved
        assert await store.find_conversation_by_thread(BOT, "C1/999") is None
        assert await store.find_conversation_by_thread(OTHER_BOT, "C1/123.456") is None

    async def test_list_conversations_most_recently_updated_first(self, store: Store) -> None:
        convs = [(await contact_and_conversation(store, f"u{i}"))[1] for i in range(3)]
        for conv in (convs[1], convs[0], convs[2]):
            advance(store, 1)
            await store.save_conversation(conv.evolve(language="en"))
        listed = await store.list_conversations(BOT)
        assert [c.id for c in listed] == [convs[2].id, convs[0].id, convs[1].id]
        assert [c.id for c in await store.list_conversations(BOT, limit=2)] == [convs[2].id, convs[0].id]

    async def test_list_conversations_filters_by_status(self, store: Store) -> None:
        _, a = await contact_and_conversation(store, "u1")
        _, b = await contact_and_conversation(store, "u2")
        _, c = await contact_and_conversation(store, "u3")
        await store.save_conversation(a.evolve(status=ConversationStatus.WAITING))
        await store.save_conversation(b.evolve(status=ConversationStatus.AGENT))
        waiting = await store.list_conversations(BOT, statuses=[ConversationStatus.WAITING])
        assert [x.id for x in waiting] == [a.id]
        handed = await store.list_conversations(BOT, statuses=[ConversationStatus.WAITING, ConversationStatus.AGENT])
        assert {x.id for x in handed} == {a.id, b.id}
        assert {x.id for x in await store.list_conversations()} == {a.id, b.id, c.id}

    async def test_count_conversations_per_bot_and_in_total(self, store: Store) -> None:
        await contact_and_conversation(store, "u1")
        await contact_and_conversation(store, "u2")
        await contact_and_conversation(store, "u1", bot=OTHER_BOT)
        assert await store.count_conversations(BOT) == 2
        assert await store.count_conversations(OTHER_BOT) == 1
        assert await store.count_conversations() == 3

    # -- tenants -------------------------------------------------------------------------
    async def test_one_identity_in_two_bots_is_two_contacts(self, store: Store) -> None:
        a = await store.resolve_contact(BOT, identity("u1"))
        b = await store.resolve_contact(OTHER_BOT, identity("u1"))
        assert a.id != b.id
        assert (await store.conversation_for(BOT, a.id)).id != (await store.conversation_for(OTHER_BOT, b.id)).id

    async def test_queries_of_one_bot_do_not_see_another_bots_data(self, store: Store) -> None:
        contact, conv = await contact_and_conversation(store, "u1", bot=BOT)
        await store.save_contact(Contact(
            id=contact.id, bot=BOT, identities=contact.identities, phone="4915112345678", created_at=contact.created_at,
        ))
        await store.save_conversation(conv.evolve(desk_thread="C1/1.1", status=ConversationStatus.WAITING))
        assert await store.find_contacts(OTHER_BOT, phone="4915112345678") == []
        assert await store.find_contacts(OTHER_BOT, identity=identity("u1")) == []
        assert await store.list_conversations(OTHER_BOT) == []
        assert await store.list_conversations(OTHER_BOT, statuses=[ConversationStatus.WAITING]) == []
        assert await store.find_conversation_by_thread(OTHER_BOT, "C1/1.1") is None
        assert await store.count_conversations(OTHER_BOT) == 0

    async def test_same_platform_message_id_for_two_bots_is_two_messages(self, store: Store) -> None:
        _, a = await contact_and_conversation(store, "u1", bot=BOT)
        _, b = await contact_and_conversation(store, "u1", bot=OTHER_BOT)
        assert await store.ingest(a.id, inbound(1, bot=BOT))
        assert await store.ingest(b.id, inbound(1, bot=OTHER_BOT))

    async def test_contacts_of_two_bots_cannot_be_merged(self, store: Store) -> None:
        a = await store.resolve_contact(BOT, identity("u1"))
        b = await store.resolve_contact(OTHER_BOT, identity("u2"))
        with pytest.raises(StoreError):
            await store.merge_contacts(a.id, b.id)
        assert await store.get_contact(b.id) is not None
