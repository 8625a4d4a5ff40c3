"""`StoreContract`: the conformance suite every `Store` implementation passes.

Subclass it in a test module and provide an async ``store`` fixture that yields an
opened, empty store::

    class TestMyStore(StoreContract):
        @pytest.fixture
        async def store(self, tmp_path):
            s = MyStore(...); await s.open(); yield s; await s.close()

Tests that race use ``asyncio.gather`` on one store; the MongoDB-specific tests in
``tests/store/test_mongo_store.py`` add races between separate clients.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.errors import ConcurrencyConflict, NotFound, StoreError
from core.model import (
    Attachment,
    Author,
    Button,
    Contact,
    Conversation,
    ConversationStatus,
    DeliveryReceipt,
    DeliveryStatus,
    Event,
    Identity,
    Inbound,
    Outbound,
    utcnow,
)
from core.store.base import AuditEntry, OutboxState, ReceiptOutcome, Store, TurnCommit, TurnState

BOT = "acme"
OTHER_BOT = "globex"
T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def identity(user: str = "u1", channel: str = "telegram") -> Identity:
    return Identity(channel=channel, channel_user_id=user, chat_id=f"chat-{user}")


def inbound(n: int, *, user: str = "u1", channel: str = "telegram", bot: str = BOT, text: str | None = None) -> Inbound:
    return Inbound(
        bot=bot,
        channel=channel,
        channel_user_id=user,
        chat_id=f"chat-{user}",
        platform_message_id=f"{channel}:{user}:{n}",
        text=f"message {n}" if text is None else text,
        timestamp=T0 + timedelta(seconds=n),
    )


def event(n: int, text: str | None = None, *, kind: str = "user", at: datetime | None = None) -> Event:
    return Event(
        type=kind,
        data={"text": text if text is not None else f"text {n}", "n": n},
        channel="telegram",
        timestamp=at or T0 + timedelta(seconds=n),
    )


def outbound(conv: Conversation, text: str, **kwargs: Any) -> Outbound:
    return Outbound(conversation_id=conv.id, bot=conv.bot, channel="telegram", chat_id="chat-u1", text=text, **kwargs)


async def contact_and_conversation(
    store: Store, user: str = "u1", bot: str = BOT, channel: str = "telegram"
) -> tuple[Contact, Conversation]:
    contact = await store.resolve_contact(bot, identity(user, channel))
    return contact, await store.conversation_for(bot, contact.id)


async def turn_started(store: Store) -> tuple[Conversation, str, TurnState]:
    """A conversation with message 1 pending, its turn started by owner "w1" (lease taken)."""
    _, conv = await contact_and_conversation(store)
    lease = f"turn:{conv.id}"
    await store.ingest(conv.id, inbound(1))
    state = await store.next_turn(conv.id, lease=lease, owner="w1", lease_seconds=30, history=10)
    assert state is not None
    return conv, lease, state


async def queue(store: Store, conv: Conversation, *texts: str) -> list[Outbound]:
    """Queue outbound messages for ``conv`` in order (outside a turn)."""
    items = [outbound(conv, t) for t in texts]
    await store.append_events(conv.id, [], items)
    return items


class StoreContract:
    """Behaviour every `Store` must show; test methods need an async ``store`` fixture."""

    # -- lifecycle -----------------------------------------------------------------
    async def test_open_twice_is_harmless_and_ping_answers(self, store: Store) -> None:
        await store.open()
        await store.ping()

    # -- contacts ------------------------------------------------------------------
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

    # -- merging -------------------------------------------------------------------
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

    # -- conversations -------------------------------------------------------------
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
            await asyncio.sleep(0.002)
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

    # -- inbox ---------------------------------------------------------------------
    async def test_ingest_accepts_a_message_once(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        assert await store.ingest(conv.id, inbound(1)) is True
        assert await store.ingest(conv.id, inbound(1, text="resent by the platform")) is False
        pending = await store.pending_inbox(conv.id)
        assert [p.inbound.text for p in pending] == ["message 1"]

    async def test_concurrent_duplicates_are_ingested_exactly_once(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        results = await asyncio.gather(*(store.ingest(conv.id, inbound(1)) for _ in range(8)))
        assert results.count(True) == 1
        assert len(await store.pending_inbox(conv.id)) == 1

    async def test_same_platform_id_on_another_channel_is_another_message(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        first = inbound(1)
        other = replace(first, channel="whatsapp")
        assert await store.ingest(conv.id, first)
        assert await store.ingest(conv.id, other)
        assert len(await store.pending_inbox(conv.id)) == 2

    async def test_pending_inbox_round_trips_the_message(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        message = Inbound(
            bot=BOT, channel="telegram", channel_user_id="u1", chat_id="chat-u1", platform_message_id="telegram:1",
            text="Grüße 👋", button_payload="/greet", attachments=(Attachment("image", url="https://x/y.png",
                                                                             mime_type="image/png", caption="c"),),
            shared_phone="4915112345678", display_name="Ada", language_hint="de", timestamp=T0, edited=True,
        )
        before = utcnow()
        assert await store.ingest(conv.id, message)
        (item,) = await store.pending_inbox(conv.id)
        assert item.inbound == message
        assert item.conversation_id == conv.id
        assert isinstance(item.id, int)
        assert item.received_at >= before - timedelta(seconds=1)

    async def test_pending_inbox_is_oldest_first_and_limited(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        for n in range(5):
            await store.ingest(conv.id, inbound(n))
        pending = await store.pending_inbox(conv.id)
        assert [p.inbound.text for p in pending] == [f"message {n}" for n in range(5)]
        assert [p.id for p in pending] == sorted(p.id for p in pending)
        assert [p.inbound.text for p in await store.pending_inbox(conv.id, limit=2)] == ["message 0", "message 1"]

    async def test_conversations_with_pending_inbox_oldest_item_first(self, store: Store) -> None:
        _, a = await contact_and_conversation(store, "u1")
        _, b = await contact_and_conversation(store, "u2")
        _, c = await contact_and_conversation(store, "u3")
        await store.ingest(b.id, inbound(1, user="u2"))
        await store.ingest(a.id, inbound(2, user="u1"))
        await store.ingest(b.id, inbound(3, user="u2"))
        assert await store.conversations_with_pending_inbox() == [b.id, a.id]
        assert await store.conversations_with_pending_inbox(limit=1) == [b.id]
        (item,) = await store.pending_inbox(a.id)
        await store.commit_turn(a, inbox_ids=[item.id])
        assert await store.conversations_with_pending_inbox() == [b.id]
        assert c.id not in await store.conversations_with_pending_inbox()

    # -- failed turns and dead letters ------------------------------------------------------
    async def test_inbox_retry_counts_the_attempt_and_backs_the_conversation_off(self, store: Store) -> None:
        _, a = await contact_and_conversation(store, "u1")
        _, b = await contact_and_conversation(store, "u2")
        await store.ingest(a.id, inbound(1, user="u1"))
        await store.ingest(a.id, inbound(2, user="u1"))
        await store.ingest(b.id, inbound(3, user="u2"))
        head, _ = await store.pending_inbox(a.id)
        later = utcnow() + timedelta(hours=1)
        assert await store.inbox_retry(head.id, later, "TypeError: Decimal")
        (retried, waiting) = await store.pending_inbox(a.id)
        assert (retried.id, retried.attempts, retried.last_error) == (head.id, 1, "TypeError: Decimal")
        assert retried.not_before is not None and abs((retried.not_before - later).total_seconds()) < 0.01
        assert (waiting.attempts, waiting.not_before) == (0, None)
        # The backing-off conversation leaves the sweeper's window; the other one stays in it.
        assert await store.conversations_with_pending_inbox() == [b.id]
        state = await store.next_turn(a.id, lease=f"turn:{a.id}", owner="p1", lease_seconds=30, history=10)
        assert state is not None and state.item is None and state.retry_at == retried.not_before
        assert await store.acquire_lease(f"turn:{a.id}", "p2", 30)  # the lease was released
        await store.inbox_retry(head.id, utcnow() - timedelta(seconds=1), "again")
        assert await store.conversations_with_pending_inbox() == [a.id, b.id]
        state = await store.next_turn(a.id, lease=f"turn:{a.id}", owner="p2", lease_seconds=30, history=10)
        assert state is not None and state.item is not None
        assert (state.item.id, state.item.attempts) == (head.id, 2)

    async def test_inbox_retry_of_a_processed_item_writes_nothing(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        await store.ingest(conv.id, inbound(1))
        (item,) = await store.pending_inbox(conv.id)
        await store.commit_turn(conv, inbox_ids=[item.id])
        assert not await store.inbox_retry(item.id, utcnow(), "late")
        assert await store.pending_inbox(conv.id) == []

    async def test_dead_letter_parks_the_item_apologises_and_lets_the_conversation_move_on(
        self, store: Store
    ) -> None:
        _, conv = await contact_and_conversation(store)
        await store.ingest(conv.id, inbound(1))
        await store.ingest(conv.id, inbound(2))
        head, _ = await store.pending_inbox(conv.id)
        await store.inbox_retry(head.id, utcnow() + timedelta(hours=1), "first")
        apology = outbound(conv, "Sorry")
        assert await store.dead_letter(head.id, "TypeError: Decimal", events=[event(1, "Sorry", kind="bot")],
                                       outbound=[apology])
        (left,) = await store.pending_inbox(conv.id)
        assert left.inbound.text == "message 2"
        assert await store.conversations_with_pending_inbox() == [conv.id]
        (letter,) = await store.dead_letters()
        assert (letter.item.id, letter.item.attempts, letter.bot, letter.error) == (head.id, 2, BOT,
                                                                                    "TypeError: Decimal")
        assert letter.item.inbound.text == "message 1" and letter.dead_at <= utcnow()
        assert await store.count_dead_letters() == 1
        assert [e.data["text"] for e in await store.transcript(conv.id)] == ["Sorry"]
        assert [i.outbound.text for i in await store.claim_outbox("s", limit=5, lease_seconds=30)] == ["Sorry"]
        # A second dead-lettering of the same item (another process) writes nothing.
        assert not await store.dead_letter(head.id, "again", outbound=[outbound(conv, "Sorry again")])
        assert (await store.outbox_counts())[OutboxState.PENDING] == 1

    async def test_replay_makes_a_dead_letter_pending_again_first_in_line(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        await store.ingest(conv.id, inbound(1))
        (item,) = await store.pending_inbox(conv.id)
        await store.dead_letter(item.id, "boom")
        await store.ingest(conv.id, inbound(2))
        assert await store.replay_dead_letter(item.id) == conv.id
        first, second = await store.pending_inbox(conv.id)
        assert (first.id, first.attempts, first.not_before, first.replays) == (item.id, 0, None, 1)
        assert second.inbound.text == "message 2"
        assert await store.dead_letters() == [] and await store.count_dead_letters() == 0
        assert await store.replay_dead_letter(item.id) is None  # no dead letter any more
        assert await store.drop_dead_letter(item.id) is None

    async def test_drop_ends_a_dead_letter_without_a_turn(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        _, other = await contact_and_conversation(store, "u2", bot=OTHER_BOT)
        await store.ingest(conv.id, inbound(1))
        await store.ingest(other.id, inbound(2, user="u2", bot=OTHER_BOT))
        (item,) = await store.pending_inbox(conv.id)
        (other_item,) = await store.pending_inbox(other.id)
        await store.dead_letter(item.id, "boom")
        await store.dead_letter(other_item.id, "bang")
        assert [d.item.id for d in await store.dead_letters(bot=BOT)] == [item.id]
        assert await store.drop_dead_letter(item.id) == conv.id
        assert [d.item.id for d in await store.dead_letters()] == [other_item.id]
        assert await store.pending_inbox(conv.id) == []
        assert await store.replay_dead_letter(item.id) is None

    async def test_forget_contact_ends_its_dead_letters(self, store: Store) -> None:
        contact, conv = await contact_and_conversation(store)
        await store.ingest(conv.id, inbound(1))
        (item,) = await store.pending_inbox(conv.id)
        await store.dead_letter(item.id, "boom")
        await store.forget_contact(contact.id)
        assert await store.dead_letters() == []

    # -- turns and transcript --------------------------------------------------------
    async def test_commit_turn_saves_marks_appends_and_queues_together(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        await store.ingest(conv.id, inbound(1))
        await store.ingest(conv.id, inbound(2))
        items = await store.pending_inbox(conv.id)
        reply = outbound(conv, "Hi!")
        saved = await store.commit_turn(
            conv.evolve(language="en", slots={"greeted": True}),
            inbox_ids=[i.id for i in items],
            events=[event(1, "message 1"), event(2, "Hi!", kind="bot")],
            outbound=[reply],
        )
        assert saved.version == 1 and saved.slots == {"greeted": True}
        assert await store.get_conversation(conv.id) == saved
        assert await store.pending_inbox(conv.id) == []
        transcript = await store.transcript(conv.id)
        assert [(e.seq, e.type, e.data["text"]) for e in transcript] == [(1, "user", "message 1"), (2, "bot", "Hi!")]
        queued = await store.get_outbox_item(reply.id)
        assert queued is not None and queued.state is OutboxState.PENDING and queued.outbound == reply

    async def test_commit_turn_with_a_stale_version_writes_nothing(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        await store.ingest(conv.id, inbound(1))
        (item,) = await store.pending_inbox(conv.id)
        await store.save_conversation(conv.evolve(language="de"))  # someone else moved on
        reply = outbound(conv, "stale reply")
        with pytest.raises(ConcurrencyConflict):
            await store.commit_turn(
                conv.evolve(language="fr"), inbox_ids=[item.id], events=[event(1)], outbound=[reply]
            )
        assert await store.transcript(conv.id) == []
        assert await store.get_outbox_item(reply.id) is None
        assert sum((await store.outbox_counts()).values()) == 0
        assert [p.id for p in await store.pending_inbox(conv.id)] == [item.id]
        stored = await store.get_conversation(conv.id)
        assert stored is not None and stored.language == "de" and stored.version == 1

    async def test_commit_turn_of_an_already_processed_message_writes_nothing(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        await store.ingest(conv.id, inbound(1))
        (item,) = await store.pending_inbox(conv.id)
        saved = await store.commit_turn(conv, inbox_ids=[item.id], events=[event(1, "first answer")])
        late = outbound(conv, "second answer to the same message")
        with pytest.raises(ConcurrencyConflict):
            await store.commit_turn(saved, inbox_ids=[item.id], events=[event(1, "again")], outbound=[late])
        assert [e.data["text"] for e in await store.transcript(conv.id)] == ["first answer"]
        assert await store.get_outbox_item(late.id) is None
        stored = await store.get_conversation(conv.id)
        assert stored is not None and stored.version == saved.version

    async def test_concurrent_commits_of_one_version_commit_exactly_one_turn(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        await store.ingest(conv.id, inbound(1))
        (item,) = await store.pending_inbox(conv.id)
        replies = [outbound(conv, f"reply {n}") for n in range(3)]
        results = await asyncio.gather(
            *(store.commit_turn(conv, inbox_ids=[item.id], events=[event(n, f"turn {n}")], outbound=[replies[n]])
              for n in range(3)),
            return_exceptions=True,
        )
        assert sum(isinstance(r, Conversation) for r in results) == 1
        assert sum(isinstance(r, ConcurrencyConflict) for r in results) == 2
        winner = next(n for n, r in enumerate(results) if isinstance(r, Conversation))
        assert [e.data["text"] for e in await store.transcript(conv.id)] == [f"turn {winner}"]
        assert [await store.get_outbox_item(r.id) is not None for r in replies] == [n == winner for n in range(3)]

    async def test_append_events_numbers_after_the_last_seq_and_queues(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        await store.commit_turn(conv, events=[event(1), event(2)])
        note = outbound(conv, "agent says hi", author=Author(kind="agent", name="Grace", agent_id="a7"))
        stored = await store.append_events(conv.id, [event(3, kind="note"), event(4, kind="agent")], [note])
        assert [e.seq for e in stored] == [3, 4]
        assert [e.type for e in stored] == ["note", "agent"]
        assert (await store.get_outbox_item(note.id)) is not None

    async def test_concurrent_appends_get_distinct_consecutive_seqs(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        await asyncio.gather(*(store.append_events(conv.id, [event(n), event(n + 100)]) for n in range(6)))
        seqs = [e.seq for e in await store.transcript(conv.id)]
        assert seqs == list(range(1, 13))

    async def test_transcript_round_trips_events(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        original = Event(
            type="user",
            data={"text": "Wo ist meine Bestellung?", "parse_data": {"intent": {"name": "order_status",
                  "confidence": 0.93}, "entities": [{"entity": "order_id", "value": "A-17"}]}, "input_channel": "x"},
            channel="whatsapp",
            timestamp=T0,
        )
        await store.append_events(conv.id, [original])
        (stored,) = await store.transcript(conv.id)
        assert stored == Event(original.type, original.data, original.channel, original.timestamp, seq=1)
        assert stored.timestamp.tzinfo is not None

    async def test_transcript_after_seq_and_limit_keep_order(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        await store.append_events(conv.id, [event(n) for n in range(1, 8)])
        assert [e.seq for e in await store.transcript(conv.id)] == [1, 2, 3, 4, 5, 6, 7]
        assert [e.seq for e in await store.transcript(conv.id, after_seq=4)] == [5, 6, 7]
        assert [e.seq for e in await store.transcript(conv.id, limit=3)] == [5, 6, 7]
        assert [e.seq for e in await store.transcript(conv.id, after_seq=2, limit=2)] == [6, 7]
        assert await store.transcript(conv.id, after_seq=7) == []

    # -- outbox ----------------------------------------------------------------------
    async def test_outbox_item_round_trips_the_message(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        message = outbound(
            conv, "Choose one", buttons=(Button("Yes", "/affirm"), Button("No", "/deny")),
            attachments=(Attachment("document", url="https://x/f.pdf", name="f.pdf"),),
            author=Author(kind="agent", name="Grace", agent_id="a7"), template="order_update", reply_to="telegram:5",
        )
        await store.append_events(conv.id, [], [message])
        (claimed,) = await store.claim_outbox("sender-1", limit=10, lease_seconds=30)
        assert claimed.outbound == message
        assert claimed.state is OutboxState.PENDING and claimed.attempts == 0

    async def test_claim_takes_one_item_per_conversation_in_order(self, store: Store) -> None:
        _, a = await contact_and_conversation(store, "u1")
        _, b = await contact_and_conversation(store, "u2")
        a1, a2, a3 = await queue(store, a, "a1", "a2", "a3")
        (b1,) = await queue(store, b, "b1")
        first = await store.claim_outbox("s1", limit=10, lease_seconds=30)
        assert {i.outbound.id for i in first} == {a1.id, b1.id}
        assert await store.claim_outbox("s1", limit=10, lease_seconds=30) == []  # a2 waits for a1
        await store.outbox_sent(a1.id, "telegram:100")
        assert [i.outbound.id for i in await store.claim_outbox("s2", limit=10, lease_seconds=30)] == [a2.id]
        await store.outbox_failed(a2.id, "blocked")
        assert [i.outbound.id for i in await store.claim_outbox("s2", limit=10, lease_seconds=30)] == [a3.id]

    async def test_claim_respects_limit(self, store: Store) -> None:
        convs = [(await contact_and_conversation(store, f"u{i}"))[1] for i in range(4)]
        for conv in convs:
            await queue(store, conv, "hi")
        assert len(await store.claim_outbox("s1", limit=3, lease_seconds=30)) == 3
        assert len(await store.claim_outbox("s2", limit=3, lease_seconds=30)) == 1

    async def test_claim_skips_items_that_are_not_due(self, store: Store) -> None:
        _, a = await contact_and_conversation(store, "u1")
        a1, _ = await queue(store, a, "a1", "a2")
        (claimed,) = await store.claim_outbox("s1", limit=10, lease_seconds=30)
        await store.outbox_retry(claimed.outbound.id, utcnow() + timedelta(hours=1), "429 retry later")
        assert await store.claim_outbox("s1", limit=10, lease_seconds=30) == []  # not due, and a2 must wait
        await store.outbox_retry(a1.id, utcnow() - timedelta(seconds=1), "429 retry later")
        again = await store.claim_outbox("s1", limit=10, lease_seconds=30)
        assert [i.outbound.id for i in again] == [a1.id]
        assert again[0].attempts == 2

    async def test_leased_item_is_not_claimed_again(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        await queue(store, conv, "hello")
        assert len(await store.claim_outbox("s1", limit=10, lease_seconds=30)) == 1
        assert await store.claim_outbox("s2", limit=10, lease_seconds=30) == []

    async def test_expired_outbox_lease_makes_the_item_claimable_again(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        (item,) = await queue(store, conv, "hello")
        assert len(await store.claim_outbox("s1", limit=10, lease_seconds=0.2)) == 1
        await asyncio.sleep(0.35)
        reclaimed = await store.claim_outbox("s2", limit=10, lease_seconds=30)
        assert [i.outbound.id for i in reclaimed] == [item.id]

    async def test_two_senders_never_claim_the_same_item(self, store: Store) -> None:
        convs = [(await contact_and_conversation(store, f"u{i}"))[1] for i in range(8)]
        for conv in convs:
            await queue(store, conv, "one", "two")
        batches = await asyncio.gather(
            *(store.claim_outbox(f"s{n}", limit=3, lease_seconds=30) for n in range(6))
        )
        batches.append(await store.claim_outbox("late", limit=10, lease_seconds=30))  # whatever is left
        claimed = [i for batch in batches for i in batch]
        assert len(claimed) == len({i.outbound.id for i in claimed}) == 8
        assert {i.outbound.conversation_id for i in claimed} == {c.id for c in convs}
        assert all(i.outbound.text == "one" for i in claimed)

    async def test_a_claim_stamps_a_fresh_lease_token_and_expiry(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        (item,) = await queue(store, conv, "hello")
        before = utcnow()
        (claimed,) = await store.claim_outbox("s1", limit=10, lease_seconds=30)
        assert claimed.lease_token and claimed.lease_until is not None
        assert before + timedelta(seconds=29) <= claimed.lease_until <= utcnow() + timedelta(seconds=30.5)
        await store.outbox_retry(item.id, utcnow() - timedelta(seconds=1), "429", token=claimed.lease_token)
        (again,) = await store.claim_outbox("s1", limit=10, lease_seconds=30)
        assert again.lease_token and again.lease_token != claimed.lease_token

    async def test_two_senders_racing_on_one_item_record_it_once(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        (item,) = await queue(store, conv, "hello")
        (held,) = await store.claim_outbox("s1", limit=10, lease_seconds=30)
        assert held.lease_token is not None
        # The second sender has no claim (a guessed or stale token); both prove and record at once.
        renewed = await asyncio.gather(store.outbox_renew(item.id, held.lease_token, 30),
                                       store.outbox_renew(item.id, "not-the-token", 30))
        assert renewed == [True, False]
        recorded = await asyncio.gather(store.outbox_sent(item.id, "telegram:1", token=held.lease_token),
                                        store.outbox_sent(item.id, "telegram:2", token="not-the-token"))
        assert recorded == [True, False]
        stored = await store.get_outbox_item(item.id)
        assert stored is not None and stored.state is OutboxState.SENT
        assert (stored.platform_message_id, stored.attempts) == ("telegram:1", 1)
        assert not await store.outbox_renew(item.id, held.lease_token, 30)  # sent: nothing left to hold

    async def test_an_expired_then_reclaimed_lease_fences_out_its_old_holder(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        (item,) = await queue(store, conv, "hello")
        (old,) = await store.claim_outbox("s1", limit=10, lease_seconds=0.2)
        await asyncio.sleep(0.35)
        (new,) = await store.claim_outbox("s2", limit=10, lease_seconds=30)
        assert old.lease_token and new.lease_token and new.lease_token != old.lease_token
        # The old holder can neither prove its lease before sending nor record any result.
        assert not await store.outbox_renew(item.id, old.lease_token, 30)
        assert not await store.outbox_sent(item.id, "telegram:old", token=old.lease_token)
        assert not await store.outbox_retry(item.id, utcnow(), "late", token=old.lease_token)
        assert not await store.outbox_failed(item.id, "late", token=old.lease_token)
        stored = await store.get_outbox_item(item.id)
        assert stored is not None and (stored.state, stored.attempts) == (OutboxState.PENDING, 0)
        assert await store.outbox_sent(item.id, "telegram:new", token=new.lease_token)
        stored = await store.get_outbox_item(item.id)
        assert stored is not None and stored.platform_message_id == "telegram:new"

    async def test_renewing_a_lease_keeps_the_item_from_other_senders(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        (item,) = await queue(store, conv, "hello")
        (held,) = await store.claim_outbox("s1", limit=10, lease_seconds=0.2)
        assert held.lease_token is not None
        assert await store.outbox_renew(item.id, held.lease_token, 30)
        await asyncio.sleep(0.35)  # past the first lease; the renewed one holds
        assert await store.claim_outbox("s2", limit=10, lease_seconds=30) == []
        stored = await store.get_outbox_item(item.id)
        assert stored is not None and stored.lease_until is not None
        assert stored.lease_until > utcnow() + timedelta(seconds=25)

    async def test_a_reply_claimed_at_commit_is_fenced_too(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        await store.ingest(conv.id, inbound(1))
        (item,) = await store.pending_inbox(conv.id)
        reply = outbound(conv, "Hi!")
        commit = await store.finish_turn(conv, inbox_ids=[item.id], outbound=[reply], owner="p1", lease_seconds=30)
        if not commit.claimed:
            return  # this store leaves replies to claim_outbox, whose claims are fenced above
        (claimed,) = commit.claimed
        assert claimed.lease_token and claimed.lease_until is not None
        assert not await store.outbox_sent(reply.id, "telegram:9", token="stale")
        assert await store.outbox_sent(reply.id, "telegram:9", token=claimed.lease_token)

    async def test_outbox_retry_counts_the_attempt_and_keeps_it_pending(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        (item,) = await queue(store, conv, "hello")
        await store.claim_outbox("s1", limit=10, lease_seconds=30)
        later = utcnow() + timedelta(seconds=30)
        await store.outbox_retry(item.id, later, "x" * 2000)
        stored = await store.get_outbox_item(item.id)
        assert stored is not None
        assert stored.state is OutboxState.PENDING and stored.attempts == 1
        assert stored.not_before is not None and abs((stored.not_before - later).total_seconds()) < 0.01
        assert stored.last_error is not None and stored.last_error.startswith("xxx") and len(stored.last_error) <= 2000

    async def test_outbox_sent_records_the_platform_id_for_receipts(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        (item,) = await queue(store, conv, "hello")
        await store.claim_outbox("s1", limit=10, lease_seconds=30)
        await store.outbox_sent(item.id, "telegram:777")
        stored = await store.get_outbox_item(item.id)
        assert stored is not None and stored.state is OutboxState.SENT
        assert stored.platform_message_id == "telegram:777"
        found = await store.find_by_platform_message("telegram", "telegram:777")
        assert found is not None and found.outbound.id == item.id
        assert await store.find_by_platform_message("whatsapp", "telegram:777") is None
        assert await store.find_by_platform_message("telegram", "telegram:778") is None

    async def test_a_receipt_is_recorded_once_on_its_messages_transcript(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        (item,) = await queue(store, conv, "hello")
        await store.outbox_sent(item.id, "telegram:777")
        receipt = DeliveryReceipt(BOT, "telegram", "telegram:777", DeliveryStatus.DELIVERED, T0, None)
        assert await store.record_receipt(receipt) is ReceiptOutcome.RECORDED
        assert await store.record_receipt(receipt) is ReceiptOutcome.DUPLICATE  # platforms resend
        read = DeliveryReceipt(BOT, "telegram", "telegram:777", DeliveryStatus.READ, T0 + timedelta(seconds=1))
        assert await store.record_receipt(read) is ReceiptOutcome.RECORDED
        events = await store.transcript(conv.id)
        assert [(e.type, e.data["status"], e.data["outbound_id"]) for e in events] == [
            ("delivery", "delivered", item.id), ("delivery", "read", item.id)]
        assert events[0].timestamp == T0

    async def test_a_receipt_that_overtakes_its_send_is_parked_and_applied_later(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        (item,) = await queue(store, conv, "hello")
        receipt = DeliveryReceipt(BOT, "telegram", "telegram:778", DeliveryStatus.SENT, T0, None)
        assert await store.record_receipt(receipt) is ReceiptOutcome.PARKED
        assert await store.record_receipt(receipt) is ReceiptOutcome.DUPLICATE
        assert await store.apply_parked_receipts() == 0  # still no message with that platform id
        await store.outbox_sent(item.id, "telegram:778")
        assert await store.apply_parked_receipts() == 1
        assert await store.apply_parked_receipts() == 0
        [event] = await store.transcript(conv.id)
        assert (event.type, event.data["status"], event.data["outbound_id"]) == ("delivery", "sent", item.id)

    async def test_outbox_failed_is_final_and_keeps_the_error(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        (item,) = await queue(store, conv, "hello")
        await store.claim_outbox("s1", limit=10, lease_seconds=30)
        await store.outbox_failed(item.id, "403 bot was blocked by the user")
        stored = await store.get_outbox_item(item.id)
        assert stored is not None and stored.state is OutboxState.FAILED
        assert stored.last_error == "403 bot was blocked by the user"
        assert await store.claim_outbox("s1", limit=10, lease_seconds=30) == []

    async def test_outbox_counts_by_state(self, store: Store) -> None:
        convs = [(await contact_and_conversation(store, f"u{i}"))[1] for i in range(4)]
        items = [(await queue(store, c, "hi"))[0] for c in convs]
        await store.claim_outbox("s1", limit=10, lease_seconds=30)
        await store.outbox_sent(items[0].id, "telegram:1")
        await store.outbox_sent(items[1].id, "telegram:2")
        await store.outbox_failed(items[2].id, "bad request")
        counts = await store.outbox_counts()
        assert counts.get(OutboxState.SENT, 0) == 2
        assert counts.get(OutboxState.FAILED, 0) == 1
        assert counts.get(OutboxState.PENDING, 0) == 1

    async def test_get_outbox_item_of_unknown_id_is_none(self, store: Store) -> None:
        assert await store.get_outbox_item("out_missing") is None

    async def test_zero_limits_return_nothing(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        await store.ingest(conv.id, inbound(1))
        await store.append_events(conv.id, [event(1)], [outbound(conv, "hi")])
        await store.audit(AuditEntry("admin", "export", conv.id, bot=BOT))
        assert await store.transcript(conv.id, limit=0) == []
        assert await store.pending_inbox(conv.id, limit=0) == []
        assert await store.conversations_with_pending_inbox(limit=0) == []
        assert await store.list_conversations(BOT, limit=0) == []
        assert await store.claim_outbox("s1", limit=0, lease_seconds=30) == []
        assert await store.audit_log(limit=0) == []

    # -- hot path: accept_inbound, next_turn, finish_turn -------------------------------
    async def test_accept_inbound_creates_contact_and_conversation_then_reuses_them(self, store: Store) -> None:
        first = await store.accept_inbound(replace(inbound(1), display_name="Ada"))
        assert first is not None and first.stored is True
        (contact,) = await store.find_contacts(BOT, identity=identity("u1"))
        assert contact.display_name == "Ada" and contact.last_channel == "telegram"
        conv = await store.get_conversation(first.conversation_id)
        assert conv is not None and conv.contact_id == contact.id and conv.bot == BOT
        assert (await store.conversation_for(BOT, contact.id)).id == first.conversation_id
        second = await store.accept_inbound(inbound(2))
        assert second is not None and second.stored is True
        assert second.conversation_id == first.conversation_id
        assert [c.id for c in await store.find_contacts(BOT, identity=identity("u1"))] == [contact.id]
        assert await store.count_conversations(BOT) == 1
        pending = await store.pending_inbox(first.conversation_id)
        assert [p.inbound.platform_message_id for p in pending] == ["telegram:u1:1", "telegram:u1:2"]
        assert all(p.conversation_id == first.conversation_id for p in pending)
        other = await store.accept_inbound(inbound(1, user="u2"))
        assert other is not None and other.stored and other.conversation_id != first.conversation_id
        assert await store.count_conversations(BOT) == 2

    async def test_accept_inbound_uses_an_existing_contact_and_conversation(self, store: Store) -> None:
        contact, conv = await contact_and_conversation(store, "u1")
        accepted = await store.accept_inbound(inbound(1))
        assert accepted is not None and accepted.conversation_id == conv.id and accepted.stored
        assert [p.inbound.text for p in await store.pending_inbox(conv.id)] == ["message 1"]
        assert [c.id for c in await store.find_contacts(BOT, identity=identity("u1"))] == [contact.id]

    async def test_accept_inbound_of_a_duplicate_platform_id_stores_nothing(self, store: Store) -> None:
        first = await store.accept_inbound(inbound(1))
        again = await store.accept_inbound(inbound(1, text="resent by the platform"))
        assert first is not None and first.stored is True
        assert again is not None and again.stored is False
        assert again.conversation_id == first.conversation_id
        assert [p.inbound.text for p in await store.pending_inbox(first.conversation_id)] == ["message 1"]

    async def test_concurrent_accepts_of_one_new_message_store_it_once(self, store: Store) -> None:
        results = await asyncio.gather(*(store.accept_inbound(inbound(1)) for _ in range(6)))
        assert all(r is not None for r in results)
        assert [r.stored for r in results if r is not None].count(True) == 1
        assert len({r.conversation_id for r in results if r is not None}) == 1
        assert len(await store.find_contacts(BOT, identity=identity("u1"))) == 1
        assert await store.count_conversations(BOT) == 1
        assert len(await store.pending_inbox(results[0].conversation_id)) == 1  # type: ignore[union-attr]

    async def test_accept_inbound_with_an_unverified_phone_only_resolves_the_contact(self, store: Store) -> None:
        phone = "4915112345678"
        message = inbound(1, channel="whatsapp", user=phone)
        assert await store.accept_inbound(message, phone=phone) is None
        (contact,) = await store.find_contacts(BOT, identity=identity(phone, "whatsapp"))
        assert contact.phone is None
        assert await store.count_conversations(BOT) == 0  # nothing but the contact was written
        assert await store.conversations_with_pending_inbox() == []
        # another verified phone than the one sent is not the contact's either
        await store.save_contact(replace(contact, phone="4900000000"))
        assert await store.accept_inbound(message, phone=phone) is None
        assert await store.conversations_with_pending_inbox() == []
        # once the caller has linked the number, the message is accepted
        await store.save_contact(replace(contact, phone=phone))
        accepted = await store.accept_inbound(message, phone=phone)
        assert accepted is not None and accepted.stored is True
        assert (await store.conversation_for(BOT, contact.id)).id == accepted.conversation_id
        assert [p.inbound.platform_message_id for p in await store.pending_inbox(accepted.conversation_id)] == [
            message.platform_message_id
        ]
        # without a phone to verify, the message is accepted whatever the contact's phone is
        plain = await store.accept_inbound(inbound(2, channel="whatsapp", user=phone))
        assert plain is not None and plain.stored and plain.conversation_id == accepted.conversation_id

    async def test_next_turn_reads_the_oldest_pending_message_under_the_lease(self, store: Store) -> None:
        contact, conv = await contact_and_conversation(store)
        await store.ingest(conv.id, inbound(1))
        await store.ingest(conv.id, inbound(2))
        lease = f"turn:{conv.id}"
        state = await store.next_turn(conv.id, lease=lease, owner="w1", lease_seconds=30, history=10)
        assert state is not None and state.item is not None
        assert state.item.inbound == inbound(1) and state.item.conversation_id == conv.id
        assert state.conversation == await store.get_conversation(conv.id)
        assert state.contact == await store.get_contact(contact.id)
        assert state.events == [] and state.since_seq is None
        # a second owner is kept out, by next_turn and by the plain lease alike
        assert await store.next_turn(conv.id, lease=lease, owner="w2", lease_seconds=30, history=10) is None
        assert not await store.acquire_lease(lease, "w2", 30)
        # the holder renews and still sees the same message until it is committed
        again = await store.next_turn(conv.id, lease=lease, owner="w1", lease_seconds=30, history=10)
        assert again is not None and again.item is not None and again.item.id == state.item.id
        saved = await store.commit_turn(state.conversation, inbox_ids=[state.item.id], events=[event(1)])
        second = await store.next_turn(conv.id, lease=lease, owner="w1", lease_seconds=30, history=10)
        assert second is not None and second.item is not None and second.item.inbound == inbound(2)
        assert second.conversation == saved
        assert await store.next_turn(conv.id, lease=lease, owner="w2", lease_seconds=30, history=10) is None
        await store.commit_turn(saved, inbox_ids=[second.item.id])
        done = await store.next_turn(conv.id, lease=lease, owner="w1", lease_seconds=30, history=10)
        assert done is not None and done.item is None  # nothing pending: the lease is released
        assert await store.acquire_lease(lease, "w2", 30)
        await store.release_lease(lease, "w2")
        await store.ingest(conv.id, inbound(3))
        taken = await store.next_turn(conv.id, lease=lease, owner="w2", lease_seconds=30, history=10)
        assert taken is not None and taken.item is not None and taken.item.inbound == inbound(3)
        assert await store.next_turn(conv.id, lease=lease, owner="w1", lease_seconds=30, history=10) is None

    async def test_next_turn_with_nothing_pending_keeps_another_owners_lease(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        lease = f"turn:{conv.id}"
        assert await store.acquire_lease(lease, "w1", 30)
        assert await store.next_turn(conv.id, lease=lease, owner="w2", lease_seconds=30, history=10) is None
        assert not await store.acquire_lease(lease, "w2", 30)

    async def test_next_turn_lease_goes_to_another_owner_when_it_expires(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        await store.ingest(conv.id, inbound(1))
        lease = f"turn:{conv.id}"
        first = await store.next_turn(conv.id, lease=lease, owner="w1", lease_seconds=0.2, history=10)
        assert first is not None and first.item is not None
        assert await store.next_turn(conv.id, lease=lease, owner="w2", lease_seconds=30, history=10) is None
        await asyncio.sleep(0.35)
        taken = await store.next_turn(conv.id, lease=lease, owner="w2", lease_seconds=30, history=10)
        assert taken is not None and taken.item is not None and taken.item.id == first.item.id
        assert await store.next_turn(conv.id, lease=lease, owner="w1", lease_seconds=30, history=10) is None

    async def test_next_turn_reads_the_newest_history_events(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        await store.append_events(conv.id, [event(n) for n in range(1, 8)])
        await store.ingest(conv.id, inbound(1))
        lease = f"turn:{conv.id}"
        state = await store.next_turn(conv.id, lease=lease, owner="w1", lease_seconds=30, history=3)
        assert state is not None and state.since_seq is None
        assert [e.seq for e in state.events] == [5, 6, 7]
        assert state.events == (await store.transcript(conv.id))[-3:]
        wide = await store.next_turn(conv.id, lease=lease, owner="w1", lease_seconds=30, history=50)
        assert wide is not None and [e.seq for e in wide.events] == [1, 2, 3, 4, 5, 6, 7]

    async def _turn_with_cached_window(self, store: Store) -> tuple[Conversation, str]:
        """A conversation whose transcript is 1..5, then a committed turn appending 6, 7; one more message."""
        _, conv = await contact_and_conversation(store)
        await store.append_events(conv.id, [event(n) for n in range(1, 6)])
        await store.ingest(conv.id, inbound(1))
        lease = f"turn:{conv.id}"
        state = await store.next_turn(conv.id, lease=lease, owner="w1", lease_seconds=30, history=3)
        assert state is not None and state.item is not None and state.conversation is not None
        assert [e.seq for e in state.events] == [3, 4, 5]
        saved = await store.commit_turn(
            state.conversation, inbox_ids=[state.item.id], events=[event(6, "turn in"), event(7, "turn out")]
        )
        await store.ingest(conv.id, inbound(2))
        return saved, lease

    async def test_next_turn_with_a_current_cached_window_reads_only_newer_events(self, store: Store) -> None:
        saved, lease = await self._turn_with_cached_window(store)
        state = await store.next_turn(saved.id, lease=lease, owner="w1", lease_seconds=30, history=3,
                                      cached=(saved.version, 5))
        assert state is not None and state.item is not None and state.item.inbound == inbound(2)
        assert state.since_seq == 5
        assert [(e.seq, e.data["text"]) for e in state.events] == [(6, "turn in"), (7, "turn out")]
        assert state.conversation == saved
        # events appended outside a turn (receipts, notes) keep the version: they come along
        await store.append_events(saved.id, [event(8, kind="delivery")])
        later = await store.next_turn(saved.id, lease=lease, owner="w1", lease_seconds=30, history=3,
                                      cached=(saved.version, 7))
        assert later is not None and later.since_seq == 7 and [e.seq for e in later.events] == [8]
        nothing_new = await store.next_turn(saved.id, lease=lease, owner="w1", lease_seconds=30, history=3,
                                            cached=(saved.version, 8))
        assert nothing_new is not None and nothing_new.since_seq == 8 and nothing_new.events == []

    async def test_next_turn_with_a_stale_cached_window_reads_the_full_window(self, store: Store) -> None:
        saved, lease = await self._turn_with_cached_window(store)
        for cached in ((saved.version - 1, 5), (saved.version + 1, 5)):
            state = await store.next_turn(saved.id, lease=lease, owner="w1", lease_seconds=30, history=3,
                                          cached=cached)
            assert state is not None and state.item is not None
            assert state.since_seq is None, cached
            assert [e.seq for e in state.events] == [5, 6, 7], cached
        # a change by someone else (an agent, a merge) moves the version on: the window is reloaded
        moved = await store.save_conversation(saved.evolve(language="de"))
        state = await store.next_turn(saved.id, lease=lease, owner="w1", lease_seconds=30, history=3,
                                      cached=(saved.version, 7))
        assert state is not None and state.since_seq is None and [e.seq for e in state.events] == [5, 6, 7]
        assert state.conversation == moved

    async def test_finish_turn_commits_like_commit_turn(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        await store.ingest(conv.id, inbound(1))
        await store.ingest(conv.id, inbound(2))
        items = await store.pending_inbox(conv.id)
        first, second = outbound(conv, "Hi!"), outbound(conv, "How can I help?")
        commit = await store.finish_turn(
            conv.evolve(language="en", slots={"greeted": True}),
            inbox_ids=[i.id for i in items],
            events=[event(1, "message 1"), event(2, "Hi!", kind="bot")],
            outbound=[first, second],
            owner="s1",
            lease_seconds=30,
        )
        saved, claimed = commit.conversation, commit.claimed
        assert saved.version == 1 and saved.slots == {"greeted": True} and saved.language == "en"
        assert await store.get_conversation(conv.id) == saved
        assert await store.pending_inbox(conv.id) == []
        transcript = await store.transcript(conv.id)
        assert [(e.seq, e.type, e.data["text"]) for e in transcript] == [(1, "user", "message 1"), (2, "bot", "Hi!")]
        for reply in (first, second):
            queued = await store.get_outbox_item(reply.id)
            assert queued is not None and queued.state is OutboxState.PENDING and queued.outbound == reply
        assert [(i.outbound, i.state, i.attempts) for i in claimed] in ([], [(first, OutboxState.PENDING, 0)])
        # a claimed item is leased to s1: no other sender (nor s1's own poll) takes it again,
        # and the second reply waits for the first either way
        others = await store.claim_outbox("s2", limit=10, lease_seconds=30)
        assert [i.outbound.id for i in others] == ([] if claimed else [first.id])
        assert await store.claim_outbox("s1", limit=10, lease_seconds=30) == []
        await store.outbox_sent(first.id, "telegram:1")
        assert [i.outbound.id for i in await store.claim_outbox("s2", limit=10, lease_seconds=30)] == [second.id]

    async def test_finish_turn_lease_expires_like_a_claim(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        await store.ingest(conv.id, inbound(1))
        (item,) = await store.pending_inbox(conv.id)
        reply = outbound(conv, "Hi!")
        commit = await store.finish_turn(
            conv, inbox_ids=[item.id], outbound=[reply], owner="s1", lease_seconds=0.2
        )
        claimed = commit.claimed
        if claimed:
            assert [i.outbound.id for i in claimed] == [reply.id]
            assert await store.claim_outbox("s2", limit=10, lease_seconds=30) == []
            await asyncio.sleep(0.35)  # s1 died before sending: the item goes to another sender
        reclaimed = await store.claim_outbox("s2", limit=10, lease_seconds=30)
        assert [i.outbound.id for i in reclaimed] == [reply.id]

    async def test_finish_turn_without_replies_claims_nothing(self, store: Store) -> None:
        _, a = await contact_and_conversation(store, "u1")
        _, b = await contact_and_conversation(store, "u2")
        (waiting,) = await queue(store, b, "b1")  # another conversation's reply is not this turn's
        await store.ingest(a.id, inbound(1))
        (item,) = await store.pending_inbox(a.id)
        commit = await store.finish_turn(
            a, inbox_ids=[item.id], events=[event(1)], owner="s1", lease_seconds=30
        )
        saved, claimed = commit.conversation, commit.claimed
        assert claimed == [] and saved.version == a.version + 1
        assert [i.outbound.id for i in await store.claim_outbox("s2", limit=10, lease_seconds=30)] == [waiting.id]

    @pytest.mark.parametrize("older_state", ["pending", "leased", "retrying"])
    async def test_finish_turn_keeps_the_order_behind_an_older_reply(
        self, store: Store, older_state: str
    ) -> None:
        _, conv = await contact_and_conversation(store)
        (older,) = await queue(store, conv, "older reply")
        if older_state == "leased":
            assert len(await store.claim_outbox("s0", limit=10, lease_seconds=30)) == 1
        elif older_state == "retrying":
            assert len(await store.claim_outbox("s0", limit=10, lease_seconds=30)) == 1
            await store.outbox_retry(older.id, utcnow() + timedelta(seconds=0.3), "429")
        await store.ingest(conv.id, inbound(1))
        (item,) = await store.pending_inbox(conv.id)
        newer, newest = outbound(conv, "newer"), outbound(conv, "newest")
        commit = await store.finish_turn(
            conv, inbox_ids=[item.id], events=[event(1)], outbound=[newer, newest], owner="s1", lease_seconds=30
        )
        saved, claimed = commit.conversation, commit.claimed
        assert claimed == []  # the older reply goes first
        assert saved.version == conv.version + 1 and await store.pending_inbox(conv.id) == []
        newer_item = await store.get_outbox_item(newer.id)
        assert newer_item is not None and newer_item.state is OutboxState.PENDING
        if older_state == "retrying":
            await asyncio.sleep(0.35)
        if older_state == "leased":
            assert await store.claim_outbox("s2", limit=10, lease_seconds=30) == []
        else:
            assert [i.outbound.id for i in await store.claim_outbox("s2", limit=10, lease_seconds=30)] == [older.id]
        # nothing newer was leased: once the older one is sent, the newer one is claimable at once
        await store.outbox_sent(older.id, "telegram:1")
        assert [i.outbound.id for i in await store.claim_outbox("s2", limit=10, lease_seconds=30)] == [newer.id]

    async def test_finish_turn_after_the_older_reply_was_sent(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        (older,) = await queue(store, conv, "older reply")
        await store.claim_outbox("s0", limit=10, lease_seconds=30)
        await store.outbox_sent(older.id, "telegram:1")
        await store.ingest(conv.id, inbound(1))
        (item,) = await store.pending_inbox(conv.id)
        reply = outbound(conv, "newer")
        commit = await store.finish_turn(
            conv, inbox_ids=[item.id], outbound=[reply], owner="s1", lease_seconds=30
        )
        claimed = commit.claimed
        assert [i.outbound.id for i in claimed] in ([], [reply.id])
        others = await store.claim_outbox("s2", limit=10, lease_seconds=30)
        assert [i.outbound.id for i in others] == ([] if claimed else [reply.id])

    async def test_finish_turn_with_a_stale_version_writes_and_claims_nothing(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        await store.ingest(conv.id, inbound(1))
        (item,) = await store.pending_inbox(conv.id)
        await store.save_conversation(conv.evolve(language="de"))  # someone else moved on
        reply = outbound(conv, "stale reply")
        with pytest.raises(ConcurrencyConflict):
            await store.finish_turn(
                conv.evolve(language="fr"), inbox_ids=[item.id], events=[event(1)], outbound=[reply],
                owner="s1", lease_seconds=30,
            )
        assert await store.transcript(conv.id) == []
        assert await store.get_outbox_item(reply.id) is None
        assert sum((await store.outbox_counts()).values()) == 0
        assert await store.claim_outbox("s2", limit=10, lease_seconds=30) == []
        assert [p.id for p in await store.pending_inbox(conv.id)] == [item.id]
        stored = await store.get_conversation(conv.id)
        assert stored is not None and stored.language == "de" and stored.version == 1

    async def test_finish_turn_of_an_already_processed_message_writes_and_claims_nothing(
        self, store: Store
    ) -> None:
        _, conv = await contact_and_conversation(store)
        await store.ingest(conv.id, inbound(1))
        (item,) = await store.pending_inbox(conv.id)
        saved = await store.commit_turn(conv, inbox_ids=[item.id], events=[event(1, "first answer")])
        late = outbound(conv, "second answer to the same message")
        with pytest.raises(ConcurrencyConflict):
            await store.finish_turn(
                saved, inbox_ids=[item.id], events=[event(1, "again")], outbound=[late], owner="s1", lease_seconds=30
            )
        assert [e.data["text"] for e in await store.transcript(conv.id)] == ["first answer"]
        assert await store.get_outbox_item(late.id) is None
        assert sum((await store.outbox_counts()).values()) == 0
        stored = await store.get_conversation(conv.id)
        assert stored is not None and stored.version == saved.version

    async def test_concurrent_finish_turn_commits_and_claims_one_turn(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        await store.ingest(conv.id, inbound(1))
        (item,) = await store.pending_inbox(conv.id)
        replies = [outbound(conv, f"reply {n}") for n in range(3)]
        results = await asyncio.gather(
            *(store.finish_turn(conv, inbox_ids=[item.id], events=[event(n, f"turn {n}")],
                                outbound=[replies[n]], owner=f"s{n}", lease_seconds=30)
              for n in range(3)),
            return_exceptions=True,
        )
        assert sum(isinstance(r, ConcurrencyConflict) for r in results) == 2
        winner = next(n for n, r in enumerate(results) if not isinstance(r, BaseException))
        won = results[winner]
        assert isinstance(won, TurnCommit)
        saved, claimed = won.conversation, won.claimed
        assert saved == await store.get_conversation(conv.id)
        assert [i.outbound.id for i in claimed] in ([], [replies[winner].id])
        assert [e.data["text"] for e in await store.transcript(conv.id)] == [f"turn {winner}"]
        assert [await store.get_outbox_item(r.id) is not None for r in replies] == [n == winner for n in range(3)]
        others = await store.claim_outbox("late", limit=10, lease_seconds=30)
        assert [i.outbound.id for i in others] == ([] if claimed else [replies[winner].id])

    async def test_finish_turn_releases_the_turn_lease_with_nothing_left_pending(self, store: Store) -> None:
        conv, lease, state = await turn_started(store)
        assert state.item is not None and state.conversation is not None
        commit = await store.finish_turn(state.conversation, inbox_ids=[state.item.id], events=[event(1)],
                                         owner="w1", lease_seconds=30, release=lease)
        assert commit.released and commit.conversation.version == conv.version + 1
        assert await store.acquire_lease(lease, "w2", 30)  # free for the next turn, whoever takes it

    async def test_finish_turn_tells_the_events_as_stored_or_nothing(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        await store.append_events(conv.id, [event(0, "earlier note", kind="note")])
        await store.ingest(conv.id, inbound(1))
        (item,) = await store.pending_inbox(conv.id)
        commit = await store.finish_turn(conv, inbox_ids=[item.id], events=[event(1), event(2, "Hi!", kind="bot")],
                                         owner="w1", lease_seconds=30)
        transcript = await store.transcript(conv.id)
        assert [(e.seq, e.type) for e in transcript] == [(1, "note"), (2, "user"), (3, "bot")]
        assert commit.events in ([], transcript[1:])

    async def test_finish_turn_keeps_the_turn_lease_while_messages_wait(self, store: Store) -> None:
        conv, lease, state = await turn_started(store)
        assert state.item is not None and state.conversation is not None
        await store.ingest(conv.id, inbound(2))  # arrived during the turn
        commit = await store.finish_turn(state.conversation, inbox_ids=[state.item.id], events=[event(1)],
                                         owner="w1", lease_seconds=30, release=lease)
        assert not commit.released
        assert not await store.acquire_lease(lease, "w2", 30)
        following = await store.next_turn(conv.id, lease=lease, owner="w1", lease_seconds=30, history=10)
        assert following is not None and following.item is not None
        assert following.item.inbound.platform_message_id == inbound(2).platform_message_id

    async def test_finish_turn_without_release_or_claim_keeps_the_lease_and_leaves_replies_queued(
        self, store: Store
    ) -> None:
        conv, lease, state = await turn_started(store)
        assert state.item is not None and state.conversation is not None
        reply = outbound(conv, "Hi!")
        commit = await store.finish_turn(state.conversation, inbox_ids=[state.item.id], outbound=[reply],
                                         owner="w1", lease_seconds=30, claim=False)
        assert commit.claimed == [] and not commit.released
        assert not await store.acquire_lease(lease, "w2", 30)
        assert [i.outbound.id for i in await store.claim_outbox("s2", limit=10, lease_seconds=30)] == [reply.id]

    # -- leases ------------------------------------------------------------------------
    async def test_lease_is_exclusive_between_owners(self, store: Store) -> None:
        assert await store.acquire_lease("telegram-poller:acme", "p1", 30)
        assert not await store.acquire_lease("telegram-poller:acme", "p2", 30)
        assert await store.acquire_lease("other-lease", "p2", 30)

    async def test_owner_renews_its_lease(self, store: Store) -> None:
        assert await store.acquire_lease("poller", "p1", 0.3)
        await asyncio.sleep(0.2)
        assert await store.acquire_lease("poller", "p1", 0.3)  # renewed until now + 0.3
        await asyncio.sleep(0.2)
        assert not await store.acquire_lease("poller", "p2", 30)

    async def test_expired_lease_goes_to_another_owner(self, store: Store) -> None:
        assert await store.acquire_lease("poller", "p1", 0.2)
        await asyncio.sleep(0.35)
        assert await store.acquire_lease("poller", "p2", 30)
        assert not await store.acquire_lease("poller", "p1", 30)

    async def test_release_frees_the_lease_only_for_its_owner(self, store: Store) -> None:
        assert await store.acquire_lease("poller", "p1", 30)
        await store.release_lease("poller", "p2")
        assert not await store.acquire_lease("poller", "p2", 30)
        await store.release_lease("poller", "p1")
        assert await store.acquire_lease("poller", "p2", 30)

    async def test_concurrent_acquires_have_one_winner(self, store: Store) -> None:
        results = await asyncio.gather(*(store.acquire_lease("poller", f"p{n}", 30) for n in range(6)))
        assert results.count(True) == 1

    # -- remember and kv -----------------------------------------------------------------
    async def test_remember_is_true_only_the_first_time(self, store: Store) -> None:
        assert await store.remember("slack:event:Ev1", 60)
        assert not await store.remember("slack:event:Ev1", 60)
        assert await store.remember("slack:event:Ev2", 60)

    async def test_remember_forgets_after_the_ttl(self, store: Store) -> None:
        assert await store.remember("k", 0.2)
        await asyncio.sleep(0.35)
        assert await store.remember("k", 60)
        assert not await store.remember("k", 60)

    async def test_concurrent_remember_has_one_first(self, store: Store) -> None:
        results = await asyncio.gather(*(store.remember("slack:event:Ev9", 60) for _ in range(6)))
        assert results.count(True) == 1

    @pytest.mark.parametrize(
        "value", [{"offset": 17, "nested": {"a": [1, 2.5, None, True]}, "$weird.key": "x"}, [1, "two"], "text", 42, 0.5,
                  False],
    )
    async def test_kv_round_trips_json_values(self, store: Store, value: Any) -> None:
        await store.kv_set("telegram:offset:acme", value)
        assert await store.kv_get("telegram:offset:acme") == value

    async def test_kv_set_overwrites_and_delete_removes(self, store: Store) -> None:
        assert await store.kv_get("missing") is None
        await store.kv_set("k", {"v": 1})
        await store.kv_set("k", {"v": 2})
        assert await store.kv_get("k") == {"v": 2}
        await store.kv_delete("k")
        assert await store.kv_get("k") is None
        await store.kv_delete("k")  # deleting twice is fine

    async def test_kv_value_expires_after_its_ttl(self, store: Store) -> None:
        await store.kv_set("short", "x", ttl_seconds=0.2)
        await store.kv_set("long", "y", ttl_seconds=60)
        assert await store.kv_get("short") == "x"
        await asyncio.sleep(0.35)
        assert await store.kv_get("short") is None
        assert await store.kv_get("long") == "y"
        await store.kv_set("short", "z")  # no ttl: kept
        assert await store.kv_get("short") == "z"

    # -- privacy ---------------------------------------------------------------------------
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

    # -- tenants ---------------------------------------------------------------------------
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
