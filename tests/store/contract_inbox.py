"""The store contract for `InboxStore`: ingest, pending items, failed turns and dead letters (run on every backend by ``test_store_contract.py``)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from core.model import (
    Attachment,
    Inbound,
    utcnow,
)
from core.store.base import OutboxState, Store
from tests.store.contract_support import (
    BOT,
    OTHER_BOT,
    T0,
    contact_and_conversation,
    event,
    inbound,
    outbound,
)


class InboxContract:
    """Behaviour every store must show for `InboxStore`; tests need an async ``store`` fixture."""

    # -- inbox ---------------------------------------------------------------------------
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

    # -- failed turns and dead letters ---------------------------------------------------
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
