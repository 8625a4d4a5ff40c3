"""The store contract for `TurnUnitOfWork`: accept_inbound, next_turn, finish_turn (run on every backend by ``test_store_contract.py``)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest

from core import metrics
from core.errors import ConcurrencyConflict
from core.model import (
    Conversation,
)
from core.store.base import OutboxState, Store, TurnCommit
from core.store.ports.analytics import CaseQuery, CaseUpdate
from core.store.ports.turns import run_after_commit
from tests.store.contract_support import (
    BOT,
    OTHER_BOT,
    T0,
    advance,
    contact_and_conversation,
    event,
    identity,
    inbound,
    outbound,
    queue,
    turn_started,
)


def case_of_a_turn(conversation_id: str, **changes: object) -> CaseUpdate:
    """A customer turn's case update (`core.analytics.recorder.turn_update` makes these)."""
    return CaseUpdate(bot=BOT, conversation_id=conversation_id, at=T0, opens=True, channel="telegram",
                      customer_messages=1, **changes)  # type: ignore[arg-type]


def analytics_errors() -> float:
    return metrics.ERRORS.labels("analytics")._value.get()


class TurnUnitOfWorkContract:
    """Behaviour every store must show for `TurnUnitOfWork`; tests need an async ``store`` fixture."""

    # -- hot path: accept_inbound, next_turn, finish_turn --------------------------------
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
        first = await store.next_turn(conv.id, lease=lease, owner="w1", lease_seconds=10, history=10)
        assert first is not None and first.item is not None
        assert await store.next_turn(conv.id, lease=lease, owner="w2", lease_seconds=30, history=10) is None
        advance(store, 11)
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
            conv, inbox_ids=[item.id], outbound=[reply], owner="s1", lease_seconds=10
        )
        claimed = commit.claimed
        if claimed:
            assert [i.outbound.id for i in claimed] == [reply.id]
            assert await store.claim_outbox("s2", limit=10, lease_seconds=30) == []
            advance(store, 11)  # s1 died before sending: the item goes to another sender
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
            await store.outbox_retry(older.id, store.clock.now() + timedelta(seconds=10), "429")
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
            advance(store, 11)
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

    # -- writes that ride along with a turn's commit (finish_turn's ``also``) ----------------
    async def test_a_ride_along_write_is_committed_with_the_turn(self, store: Store) -> None:
        conv, lease, state = await turn_started(store)
        assert state.item is not None and state.conversation is not None
        commit = await store.finish_turn(state.conversation, inbox_ids=[state.item.id], events=[event(1)],
                                         owner="w1", lease_seconds=30, release=lease,
                                         also=[store.turn_write(case_of_a_turn(conv.id, bot_messages=1))])
        await run_after_commit(commit.later, conv.id)  # what the store could not hold in the commit, if any
        assert commit.released and [e.seq for e in await store.transcript(conv.id)] == [1]
        (cell,) = await store.case_cells(CaseQuery(bot=BOT))
        assert (cell.cases, cell.customer_messages, cell.bot_messages) == (1, 1, 1)

    async def test_a_ride_along_write_of_a_turn_that_loses_its_race_is_not_written(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        await store.ingest(conv.id, inbound(1))
        (item,) = await store.pending_inbox(conv.id)
        await store.save_conversation(conv.evolve(language="de"))  # someone else moved on
        with pytest.raises(ConcurrencyConflict):
            await store.finish_turn(conv, inbox_ids=[item.id], events=[event(1)], owner="s1", lease_seconds=30,
                                    also=[store.turn_write(case_of_a_turn(conv.id))])
        assert await store.case_cells(CaseQuery(bot=BOT)) == []

    async def test_a_failing_ride_along_write_does_not_lose_the_turn_nor_the_writes_after_it(
        self, store: Store
    ) -> None:
        conv, lease, state = await turn_started(store)
        assert state.item is not None and state.conversation is not None
        errors = analytics_errors()
        unwritable = store.turn_write(case_of_a_turn(conv.id, language=object()))  # no store can encode it
        commit = await store.finish_turn(state.conversation, inbox_ids=[state.item.id], events=[event(1)],
                                         owner="w1", lease_seconds=30, release=lease,
                                         also=[unwritable, store.turn_write(replace(case_of_a_turn("other"), bot=OTHER_BOT))])
        await run_after_commit(commit.later, conv.id)
        assert commit.released and commit.conversation.version == 1
        assert [e.seq for e in await store.transcript(conv.id)] == [1]
        assert await store.pending_inbox(conv.id) == []
        assert analytics_errors() == errors + 1
        assert await store.case_cells(CaseQuery(bot=BOT)) == []  # the failed write added no figure
        (cell,) = await store.case_cells(CaseQuery(bot=OTHER_BOT))  # the write after it went through
        assert (cell.cases, cell.customer_messages) == (1, 1)
