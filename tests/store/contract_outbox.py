"""The store contract for `OutboxStore` and `ReceiptStore`: claims, fenced leases, order, receipts (run on every backend by ``test_store_contract.py``)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from core.model import (
    Attachment,
    Author,
    Button,
    DeliveryReceipt,
    DeliveryStatus,
)
from core.store.base import AuditEntry, OutboxState, ReceiptOutcome, Store
from tests.store.contract_support import (
    BOT,
    T0,
    advance,
    contact_and_conversation,
    event,
    inbound,
    outbound,
    queue,
)


class OutboxContract:
    """Behaviour every store must show for `OutboxStore` and `ReceiptStore`; tests need an async ``store`` fixture."""

    # -- outbox --------------------------------------------------------------------------
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
        await store.outbox_retry(claimed.outbound.id, store.clock.now() + timedelta(hours=1), "429 retry later")
        assert await store.claim_outbox("s1", limit=10, lease_seconds=30) == []  # not due, and a2 must wait
        await store.outbox_retry(a1.id, store.clock.now() - timedelta(seconds=1), "429 retry later")
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
        assert len(await store.claim_outbox("s1", limit=10, lease_seconds=10)) == 1
        advance(store, 9)
        assert await store.claim_outbox("s2", limit=10, lease_seconds=30) == []
        advance(store, 2)
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
        before = store.clock.now()
        (claimed,) = await store.claim_outbox("s1", limit=10, lease_seconds=30)
        assert claimed.lease_token and claimed.lease_until is not None
        assert before + timedelta(seconds=29) <= claimed.lease_until <= store.clock.now() + timedelta(seconds=30.5)
        await store.outbox_retry(item.id, store.clock.now() - timedelta(seconds=1), "429", token=claimed.lease_token)
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
        # A "sent" is a fact whoever sent it: the first to land is recorded, the other refused.
        recorded = await asyncio.gather(store.outbox_sent(item.id, "telegram:1", token=held.lease_token),
                                        store.outbox_sent(item.id, "telegram:2", token="not-the-token"))
        assert sorted(recorded) == [False, True]
        stored = await store.get_outbox_item(item.id)
        assert stored is not None and stored.state is OutboxState.SENT
        assert (stored.platform_message_id, stored.attempts) == ("telegram:1" if recorded[0] else "telegram:2", 1)
        assert not await store.outbox_renew(item.id, held.lease_token, 30)  # sent: nothing left to hold

    async def test_an_expired_then_reclaimed_lease_fences_out_its_old_holder(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        (item,) = await queue(store, conv, "hello")
        (old,) = await store.claim_outbox("s1", limit=10, lease_seconds=10)
        advance(store, 11)
        (new,) = await store.claim_outbox("s2", limit=10, lease_seconds=30)
        assert old.lease_token and new.lease_token and new.lease_token != old.lease_token
        # The old holder can neither prove its lease before sending nor release or fail the item
        # (a "sent" of the old holder is a fact, recorded: see the test below).
        assert not await store.outbox_renew(item.id, old.lease_token, 30)
        assert not await store.outbox_retry(item.id, store.clock.now(), "late", token=old.lease_token)
        assert not await store.outbox_failed(item.id, "late", token=old.lease_token)
        stored = await store.get_outbox_item(item.id)
        assert stored is not None and (stored.state, stored.attempts, stored.lease_token) == \
            (OutboxState.PENDING, 0, new.lease_token)
        assert await store.outbox_sent(item.id, "telegram:new", token=new.lease_token)
        stored = await store.get_outbox_item(item.id)
        assert stored is not None and stored.platform_message_id == "telegram:new"

    async def test_a_superseded_holders_late_sent_is_recorded_while_the_item_has_no_result(
        self, store: Store
    ) -> None:
        # The old holder sent the reply, but its "sent" landed after its lease ran out and another
        # sender took the claim over (a store slower than the lease): the send happened.
        _, conv = await contact_and_conversation(store)
        (item,) = await queue(store, conv, "hello")
        (old,) = await store.claim_outbox("s1", limit=10, lease_seconds=10)
        advance(store, 11)
        (new,) = await store.claim_outbox("s2", limit=10, lease_seconds=30)
        assert old.lease_token and new.lease_token and new.taken_over
        assert await store.outbox_sent(item.id, "telegram:old", token=old.lease_token)
        stored = await store.get_outbox_item(item.id)
        assert stored is not None
        assert (stored.state, stored.platform_message_id, stored.attempts, stored.lease_token, stored.in_doubt) == \
            (OutboxState.SENT, "telegram:old", 1, None, 1)
        # The new holder's proof before sending fails: it does not send the reply again.
        assert not await store.outbox_renew(item.id, new.lease_token, 30)
        assert not await store.outbox_sent(item.id, "telegram:new", token=new.lease_token)
        assert not await store.outbox_failed(item.id, "late", token=new.lease_token)
        stored = await store.get_outbox_item(item.id)
        assert stored is not None and (stored.state, stored.platform_message_id) == (OutboxState.SENT, "telegram:old")
        assert await store.claim_outbox("s3", limit=10, lease_seconds=30) == []

    async def test_a_superseded_holders_late_sent_does_not_overwrite_a_result(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        _, other = await contact_and_conversation(store, user="u2")
        (sent,) = await queue(store, conv, "one")
        (failed,) = await queue(store, other, "two")
        olds = {i.outbound.id: i for i in await store.claim_outbox("s1", limit=10, lease_seconds=10)}
        advance(store, 11)
        news = {i.outbound.id: i for i in await store.claim_outbox("s2", limit=10, lease_seconds=30)}
        assert set(olds) == set(news) == {sent.id, failed.id}
        # The newer holders recorded their results first: the old holders' late "sent" changes nothing.
        assert await store.outbox_sent(sent.id, "telegram:new", token=news[sent.id].lease_token)
        assert await store.outbox_failed(failed.id, "403 blocked", token=news[failed.id].lease_token)
        for outbound_id, state, platform_id in ((sent.id, OutboxState.SENT, "telegram:new"),
                                                (failed.id, OutboxState.FAILED, None)):
            assert not await store.outbox_sent(outbound_id, "telegram:old", token=olds[outbound_id].lease_token)
            stored = await store.get_outbox_item(outbound_id)
            assert stored is not None and (stored.state, stored.platform_message_id, stored.attempts) == \
                (state, platform_id, 1)

    async def test_a_claim_that_ends_without_a_result_leaves_the_item_in_doubt(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        (item,) = await queue(store, conv, "hello")
        (first,) = await store.claim_outbox("s1", limit=10, lease_seconds=0)  # its sender dies: nothing recorded
        assert first.in_doubt == 0
        assert not first.taken_over
        (second,) = await store.claim_outbox("s2", limit=10, lease_seconds=30)
        assert second.in_doubt == 1  # the first claim may have sent it: known as "maybe sent"
        assert second.taken_over  # this claim took the first one over (its "sent" may still land)
        # A claim that ends with a result (here a retry) adds no doubt, and the next claim takes nothing over.
        assert await store.outbox_retry(item.id, store.clock.now() - timedelta(seconds=1), "429", token=second.lease_token)
        (third,) = await store.claim_outbox("s2", limit=10, lease_seconds=30)
        assert third.in_doubt == 1 and not third.taken_over
        assert await store.outbox_sent(item.id, "telegram:1", token=third.lease_token)
        stored = await store.get_outbox_item(item.id)
        assert stored is not None and (stored.state, stored.in_doubt) == (OutboxState.SENT, 1)

    async def test_a_reply_sent_without_trouble_is_never_in_doubt(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        (item,) = await queue(store, conv, "hello")
        (claimed,) = await store.claim_outbox("s1", limit=10, lease_seconds=30)
        assert await store.outbox_sent(item.id, "telegram:1", token=claimed.lease_token)
        stored = await store.get_outbox_item(item.id)
        assert stored is not None and (stored.state, stored.in_doubt) == (OutboxState.SENT, 0)

    async def test_renewing_a_lease_keeps_the_item_from_other_senders(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        (item,) = await queue(store, conv, "hello")
        (held,) = await store.claim_outbox("s1", limit=10, lease_seconds=10)
        assert held.lease_token is not None
        assert await store.outbox_renew(item.id, held.lease_token, 30)
        advance(store, 11)  # past the first lease; the renewed one holds
        assert await store.claim_outbox("s2", limit=10, lease_seconds=30) == []
        stored = await store.get_outbox_item(item.id)
        assert stored is not None and stored.lease_until is not None
        assert stored.lease_until > store.clock.now() + timedelta(seconds=15)

    async def test_a_renewal_that_lands_after_a_later_one_does_not_shorten_the_lease(self, store: Store) -> None:
        # A sender's heartbeat does not wait for a slow store: an earlier renewal may land last.
        _, conv = await contact_and_conversation(store)
        (item,) = await queue(store, conv, "hello")
        (held,) = await store.claim_outbox("s1", limit=10, lease_seconds=10)
        assert held.lease_token is not None
        assert await store.outbox_renew(item.id, held.lease_token, 60)
        assert await store.outbox_renew(item.id, held.lease_token, 30)  # proves the claim, shortens nothing
        advance(store, 40)
        assert await store.claim_outbox("s2", limit=10, lease_seconds=30) == []
        stored = await store.get_outbox_item(item.id)
        assert stored is not None and stored.lease_token == held.lease_token

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
        # (A "sent" is recorded whichever holder sent it, as long as the item has no result.)
        assert not await store.outbox_renew(reply.id, "stale", 30)
        assert not await store.outbox_retry(reply.id, store.clock.now(), "late", token="stale")
        assert not await store.outbox_failed(reply.id, "late", token="stale")
        assert await store.outbox_sent(reply.id, "telegram:9", token=claimed.lease_token)

    async def test_outbox_retry_counts_the_attempt_and_keeps_it_pending(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        (item,) = await queue(store, conv, "hello")
        await store.claim_outbox("s1", limit=10, lease_seconds=30)
        later = store.clock.now() + timedelta(seconds=30)
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
