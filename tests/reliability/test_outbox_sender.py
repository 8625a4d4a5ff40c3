"""The outbox sender against a real SQLite store and a scripted adapter: retry_after, backoff,
permanent failures, rate limits, and taking over a crashed process's leases."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

import pytest

from core import metrics
from core.delivery.config import ChannelRateLimit, DeliveryConfig
from core.delivery.sender import OutboxSender
from core.errors import ChannelError, RateLimited, RecipientUnavailable, TransientError
from core.model import Identity, Inbound, Outbound
from core.ports import Capabilities, RateLimits
from core.store.base import OutboxItem, OutboxState
from core.store.sqlite import SQLiteStore
from tests.store.contract_support import advance
from tests.support.clock import FakeClock
from tests.support.wait import eventually

pytestmark = pytest.mark.timeout(30)

BOT = "demo"


class ScriptedChannel:
    """An adapter whose next sends fail as scripted; records when each send was tried."""

    name: ClassVar[str] = "scripted"
    capabilities: ClassVar[Capabilities] = Capabilities()
    rate_limits: ClassVar[RateLimits] = RateLimits(per_bot=1000, per_chat=1000, per_chat_burst=1000)

    def __init__(self, script: Sequence[ChannelError] = ()) -> None:
        self.bot = BOT
        self.script = list(script)
        self.attempts: list[tuple[float, str]] = []
        self.delivered: list[str] = []

    async def send(self, message: Outbound) -> str:
        self.attempts.append((time.monotonic(), message.text))
        if self.script:
            raise self.script.pop(0)
        self.delivered.append(message.text)
        return f"scripted:{len(self.delivered)}"


class CountingStore(SQLiteStore):
    """The SQLite store, counting the sender's polls (`claim_outbox` calls that returned)."""

    claims = 0

    async def claim_outbox(self, owner: str, *, limit: int, lease_seconds: float) -> list[OutboxItem]:
        items = await super().claim_outbox(owner, limit=limit, lease_seconds=lease_seconds)
        self.claims += 1
        return items


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[CountingStore]:
    store = CountingStore(tmp_path / "outbox.db", clock=FakeClock())
    await store.open()
    yield store
    await store.close()


async def queue(store: SQLiteStore, chat: str, *texts: str) -> list[Outbound]:
    contact = await store.resolve_contact(BOT, Identity("scripted", chat, chat))
    conversation = await store.conversation_for(BOT, contact.id)
    out = [Outbound(conversation.id, BOT, "scripted", chat, text=t) for t in texts]
    await store.append_events(conversation.id, [], out)
    return out


def config(**overrides: object) -> DeliveryConfig:
    values: dict[str, object] = {"poll_interval": 0.02, "backoff_initial": 0.05, "backoff_max": 0.2,
                                 "max_attempts": 3}
    values.update(overrides)
    return DeliveryConfig.model_validate(values)


async def run_sender(store: SQLiteStore, channel: ScriptedChannel, cfg: DeliveryConfig, *,
                     timeout: float = 10.0) -> OutboxSender:
    sender = OutboxSender(store, {(BOT, "scripted"): channel}, cfg, owner="test")
    await sender.start()
    try:
        assert await sender.drain(timeout=timeout), "outbox did not drain"
    finally:
        await sender.stop()
    return sender


async def test_rate_limit_storm_then_server_error_is_retried_not_failed(store: SQLiteStore) -> None:
    # Every 429 counts as an attempt in the store; three of them exhaust max_attempts=3,
    # yet the 5xx that follows is still retried because the message is young.
    channel = ScriptedChannel([RateLimited("429", 0.05)] * 3 + [TransientError("502")])
    [out] = await queue(store, "c1", "hello")
    await run_sender(store, channel, config())
    item = await store.get_outbox_item(out.id)
    assert item is not None and item.state is OutboxState.SENT
    assert channel.delivered == ["hello"] and len(channel.attempts) == 5


async def test_retry_after_is_honoured_before_the_next_attempt(store: SQLiteStore) -> None:
    channel = ScriptedChannel([RateLimited("429", 0.4)])
    await queue(store, "c1", "hello")
    await run_sender(store, channel, config())
    (first, _), (second, _) = channel.attempts
    assert second - first >= 0.4


async def test_transient_errors_back_off_exponentially_with_jitter(store: SQLiteStore) -> None:
    channel = ScriptedChannel([TransientError("500")] * 5)
    await queue(store, "c1", "hello")
    await run_sender(store, channel, config(max_attempts=10, backoff_initial=0.05, backoff_max=5.0))
    times = [t for t, _ in channel.attempts]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    steps = [0.05 * 2**i for i in range(5)]  # each wait is between half the step and the step
    assert len(gaps) == 5 and channel.delivered == ["hello"]
    for gap, step in zip(gaps, steps, strict=True):
        assert step / 2 <= gap <= step + 0.15, (gaps, steps)


async def test_permanent_failure_is_final_visible_in_transcript_and_metrics(store: SQLiteStore) -> None:
    channel = ScriptedChannel([RecipientUnavailable("403 blocked")])
    [out, _] = await queue(store, "c1", "lost", "next")
    failed_before = metrics.OUTBOUND.labels(BOT, "scripted", "failed")._value.get()
    sender = OutboxSender(store, {(BOT, "scripted"): channel}, config(metrics_interval=0.05), owner="test")
    await sender.start()
    try:
        assert await sender.drain(timeout=10)
        # the sender refreshes the outbox gauge on its own
        await eventually(lambda: metrics.OUTBOX.labels("failed")._value.get() >= 1)
    finally:
        await sender.stop()
    item = await store.get_outbox_item(out.id)
    assert item is not None and item.state is OutboxState.FAILED and "blocked" in (item.last_error or "")
    assert channel.delivered == ["next"], "a failed message must not block the conversation"
    events = await store.transcript(out.conversation_id)
    assert any(e.type == "delivery" and e.data["status"] == "failed" and e.data["outbound_id"] == out.id
               for e in events)
    assert metrics.OUTBOUND.labels(BOT, "scripted", "failed")._value.get() == failed_before + 1


async def test_retryable_failure_becomes_final_after_attempts_and_min_retry_time(store: SQLiteStore) -> None:
    channel = ScriptedChannel([TransientError("500")] * 10)
    [out] = await queue(store, "c1", "doomed")
    await run_sender(store, channel, config(max_attempts=3, min_retry_seconds=0.0))
    item = await store.get_outbox_item(out.id)
    assert item is not None and item.state is OutboxState.FAILED and item.attempts == 3


async def test_per_chat_limit_spaces_the_messages_of_one_chat(store: SQLiteStore) -> None:
    channel = ScriptedChannel()
    await queue(store, "c1", *[f"m{i}" for i in range(5)])
    limits = {"scripted": ChannelRateLimit(per_chat=10, per_chat_burst=1)}
    await run_sender(store, channel, config(rate_limits=limits))
    times = [t for t, _ in channel.attempts]
    assert channel.delivered == [f"m{i}" for i in range(5)]
    assert times[-1] - times[0] >= 0.35  # 4 gaps of 0.1 s


async def test_per_bot_limit_caps_the_send_rate_across_chats(store: SQLiteStore) -> None:
    channel = ScriptedChannel()
    for i in range(40):
        await queue(store, f"chat{i}", f"m{i}")
    limits = {"scripted": ChannelRateLimit(per_bot=20)}
    await run_sender(store, channel, config(rate_limits=limits))
    times = sorted(t for t, _ in channel.attempts)
    assert len(channel.delivered) == 40
    assert times[-1] - times[0] >= 0.8  # a burst of 20, then 20 per second


async def test_restart_takes_over_the_leases_of_a_crashed_process_at_once(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    crashed = SQLiteStore(path)
    await crashed.open()
    out = await queue(crashed, "c1", "one", "two")
    assert [i.outbound.id for i in await crashed.claim_outbox("dead-process", limit=10, lease_seconds=300)] \
        == [out[0].id]
    await crashed.close()  # like SIGKILL: the lease stays in the file, the OS lock goes away
    restarted = SQLiteStore(path)
    await restarted.open()
    try:
        channel = ScriptedChannel()
        started = time.monotonic()
        await run_sender(restarted, channel, config(), timeout=5)
        assert channel.delivered == ["one", "two"]
        assert time.monotonic() - started < 5  # not after the 300 s lease
    finally:
        await restarted.close()


async def test_a_second_opener_of_a_live_store_does_not_steal_leases(tmp_path: Path) -> None:
    path = tmp_path / "live.db"
    farm = SQLiteStore(path)
    await farm.open()
    try:
        [out] = await queue(farm, "c1", "one")
        await farm.claim_outbox("farm", limit=10, lease_seconds=300)
        reader = SQLiteStore(path)  # e.g. `switchboard export` while the farm runs
        await reader.open()
        try:
            assert await reader.claim_outbox("other", limit=10, lease_seconds=30) == []
        finally:
            await reader.close()
        assert await farm.claim_outbox("other", limit=10, lease_seconds=30) == []
        assert (await farm.get_outbox_item(out.id)) is not None
    finally:
        await farm.close()


# -- replies claimed at commit (`OutboxSender.submit`) ----------------------------------

async def turn(store: SQLiteStore, chat: str, *texts: str, n: int = 1,
               owner: str = "test") -> tuple[list[Outbound], list[OutboxItem]]:
    """Commit a turn answering message ``n`` of ``chat`` with ``texts``, claiming like the farm does."""
    contact = await store.resolve_contact(BOT, Identity("scripted", chat, chat))
    conversation = await store.conversation_for(BOT, contact.id)
    assert await store.ingest(conversation.id, Inbound(BOT, "scripted", chat, chat, f"scripted:{chat}:{n}",
                                                       text=f"question {n}"))
    (item,) = await store.pending_inbox(conversation.id)
    out = [Outbound(conversation.id, BOT, "scripted", chat, text=t) for t in texts]
    commit = await store.finish_turn(
        conversation, inbox_ids=[item.id], outbound=out, owner=owner, lease_seconds=30
    )
    claimed = commit.claimed
    return out, claimed


async def until(condition: Callable[[], bool], timeout: float) -> bool:
    try:
        await eventually(condition, timeout=timeout)
    except AssertionError:
        return False
    return True


async def idle(sender_store: CountingStore, polls: int = 1) -> None:
    """Wait until the sender polled ``polls`` more times: it then waits for work (its poll interval)."""
    target = sender_store.claims + polls
    await eventually(lambda: sender_store.claims >= target)


class SlowChannel(ScriptedChannel):
    """Each send takes ``delay`` seconds; records whether two sends to one chat overlapped."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.busy: set[str] = set()
        self.overlapped = False

    async def send(self, message: Outbound) -> str:
        if message.chat_id in self.busy:
            self.overlapped = True
        self.busy.add(message.chat_id)
        try:
            await asyncio.sleep(self.delay)
            return await super().send(message)
        finally:
            self.busy.discard(message.chat_id)


async def test_a_reply_claimed_at_commit_is_sent_once_without_waiting_for_the_poll(store: SQLiteStore) -> None:
    channel = ScriptedChannel()
    sender = OutboxSender(store, {(BOT, "scripted"): channel}, config(poll_interval=5.0), owner="test")
    await sender.start()
    try:
        await idle(store)  # the first poll found nothing: the sender now waits up to 5 s
        [out], claimed = await turn(store, "c1", "hello")
        assert [i.outbound.id for i in claimed] == [out.id], "SQLite claims the head reply at commit"
        started = time.monotonic()
        sender.submit(claimed)
        assert await until(lambda: channel.delivered == ["hello"], timeout=1.0), channel.attempts
        assert time.monotonic() - started < 1.0
        assert await until(lambda: not sender._inflight, timeout=1.0)
        item = await store.get_outbox_item(out.id)
        assert item is not None and item.state is OutboxState.SENT and item.platform_message_id == "scripted:1"
        polls = store.claims
        sender.notify()  # a poll now must not find it again
        await eventually(lambda: store.claims > polls)
    finally:
        await sender.stop(timeout=2)
    assert channel.delivered == ["hello"] and len(channel.attempts) == 1


async def test_the_second_reply_of_a_turn_is_claimed_and_sent_after_the_first(store: SQLiteStore) -> None:
    channel = SlowChannel(delay=0.05)
    sender = OutboxSender(store, {(BOT, "scripted"): channel}, config(poll_interval=5.0), owner="test")
    await sender.start()
    try:
        await idle(store)
        out, claimed = await turn(store, "c1", "one", "two", "three")
        assert [i.outbound.id for i in claimed] == [out[0].id]
        assert await store.claim_outbox("other", limit=10, lease_seconds=30) == []  # "two" waits behind "one"
        sender.submit(claimed, more=True)
        assert await until(lambda: len(channel.delivered) == 3, timeout=1.5), channel.delivered
    finally:
        await sender.stop(timeout=2)
    assert channel.delivered == ["one", "two", "three"]
    assert not channel.overlapped, "a conversation's replies must go out one after the other"
    for o in out:
        item = await store.get_outbox_item(o.id)
        assert item is not None and item.state is OutboxState.SENT


async def test_stop_sends_replies_submitted_but_not_started(store: SQLiteStore) -> None:
    channel = ScriptedChannel()
    sender = OutboxSender(store, {(BOT, "scripted"): channel}, config(poll_interval=5.0), owner="test")
    await sender.start()
    await idle(store)  # the loop is idle, waiting for work
    [a1, a2], claimed_a = await turn(store, "c1", "a1", "a2")
    [b1], claimed_b = await turn(store, "c2", "b1")
    assert len(claimed_a) == len(claimed_b) == 1
    sender.submit(claimed_a, more=True)
    sender.submit(claimed_b)
    assert channel.attempts == []  # nothing started yet: no await since submit
    await asyncio.wait_for(sender.stop(timeout=2), timeout=3)
    assert sorted(channel.delivered) == ["a1", "b1"]
    for o in (a1, b1):
        item = await store.get_outbox_item(o.id)
        assert item is not None and item.state is OutboxState.SENT
    # the reply queued behind was not sent while stopping, and is not left leased either:
    # another process (or the next start) takes it at once
    waiting = await store.get_outbox_item(a2.id)
    assert waiting is not None and waiting.state is OutboxState.PENDING
    assert [i.outbound.id for i in await store.claim_outbox("next", limit=10, lease_seconds=30)] == [a2.id]


async def test_stop_sends_submitted_replies_while_every_worker_is_busy(store: SQLiteStore) -> None:
    channel = SlowChannel(delay=0.2)
    sender = OutboxSender(store, {(BOT, "scripted"): channel}, config(poll_interval=5.0, workers=1), owner="test")
    await sender.start()
    try:
        await idle(store)
        _, first = await turn(store, "c1", "busy")
        sender.submit(first)
        assert await until(lambda: len(channel.attempts) == 0 and bool(channel.busy), timeout=1.0)
        _, second = await turn(store, "c2", "queued")
        sender.submit(second)
        for _ in range(10):  # the loop gets its turns; "busy" is still being sent
            await asyncio.sleep(0)
        assert channel.delivered == []  # "queued" waits for the only worker
    finally:
        await asyncio.wait_for(sender.stop(timeout=2), timeout=3)
    assert channel.delivered == ["busy", "queued"]


async def test_a_due_retry_is_not_starved_by_a_stream_of_submitted_replies(store: SQLiteStore) -> None:
    channel = ScriptedChannel([RateLimited("429", 0.05)])  # the first send is told to come back in 50 ms
    await queue(store, "c0", "late")
    sender = OutboxSender(store, {(BOT, "scripted"): channel}, config(poll_interval=0.1), owner="test")
    await sender.start()
    try:
        assert await until(lambda: len(channel.attempts) == 1, timeout=1.0)
        streamed = 0

        async def one_more_reply() -> bool:  # single-reply turns without a pause, each claimed at commit
            nonlocal streamed
            _, claimed = await turn(store, f"s{streamed}", f"r{streamed}")
            streamed += 1
            sender.submit(claimed)
            return "late" in channel.delivered

        # due after 50 ms and found by the next poll at the latest, while the stream goes on
        await eventually(one_more_reply, timeout=5.0, message=lambda: str(channel.delivered))
        assert streamed > 1
    finally:
        await sender.stop(timeout=2)


# -- fenced leases and send timeouts ------------------------------------------------------

async def test_a_sender_whose_claim_was_taken_over_does_not_send_it_again(store: SQLiteStore) -> None:
    """Two senders, one item: the first claim waited past its lease (a slow worker or rate
    limit) and another sender claimed and sent the item; the first must not send it too."""
    [out] = await queue(store, "c1", "hello")
    [stale] = await store.claim_outbox("slow-process", limit=10, lease_seconds=10)
    advance(store, 11)
    channel = ScriptedChannel()
    # The other process: takes the expired claim over and sends it (at once: no takeover grace here).
    await run_sender(store, channel, config(takeover_grace_seconds=0))
    assert channel.delivered == ["hello"]
    late = OutboxSender(store, {(BOT, "scripted"): channel}, config(poll_interval=5.0), owner="slow-process")
    await late.start()
    try:
        late.submit([stale])
        assert await until(lambda: not late._ready and not late._inflight, timeout=2.0)
    finally:
        await late.stop(timeout=2)
    assert channel.delivered == ["hello"], "the stale claim was sent a second time"
    item = await store.get_outbox_item(out.id)
    assert item is not None and item.state is OutboxState.SENT and item.attempts == 1


async def test_an_old_claim_still_held_is_renewed_and_sent(store: CountingStore) -> None:
    await queue(store, "c1", "hello")
    [held] = await store.claim_outbox("test", limit=10, lease_seconds=10)
    channel = ScriptedChannel()
    sender = OutboxSender(store, {(BOT, "scripted"): channel}, config(poll_interval=5.0), owner="test")
    await sender.start()
    try:
        await eventually(lambda: store.claims >= 2)  # its first poll found nothing; the next is 5 s away
        advance(store, 11)  # expired, but nobody claimed it since: the token still proves it
        sender.submit([held])
        assert await until(lambda: channel.delivered == ["hello"], timeout=2.0)
        item = await store.get_outbox_item(held.outbound.id)
        assert item is not None and (item.state, item.in_doubt) == (OutboxState.SENT, 0)
    finally:
        await sender.stop(timeout=2)


class SlowRenewStore(SQLiteStore):
    """A store whose lease renewals answer late (an overloaded database): its clock moves on
    2.5 s while each renewal is under way."""

    def __init__(self, path: Path) -> None:
        self.fake_clock = FakeClock()
        super().__init__(path, clock=self.fake_clock)

    async def outbox_renew(self, outbound_id: str, token: str, lease_seconds: float) -> bool:
        renewed = await super().outbox_renew(outbound_id, token, lease_seconds)
        self.fake_clock.advance(2.5)  # the answer arrives late: more than half of the test's 4 s lease
        return renewed


async def test_a_renewal_that_took_half_the_lease_does_not_send(tmp_path: Path) -> None:
    """Less than half the renewed lease left: the send could outlive it, and another sender send it too."""
    store = SlowRenewStore(tmp_path / "slow.db")
    await store.open()
    try:
        [out] = await queue(store, "c1", "hello")
        [held] = await store.claim_outbox("test", limit=10, lease_seconds=1.5)  # under half left: renewed
        channel = ScriptedChannel()
        cfg = config(poll_interval=5.0, lease_seconds=4.0, send_timeout=0.1)
        sender = OutboxSender(store, {(BOT, "scripted"): channel}, cfg, owner="test")
        await sender.start()
        try:
            sender.submit([held])
            assert await until(lambda: not sender._ready and not sender._inflight, timeout=2.0)
        finally:
            await sender.stop(timeout=2)
        assert channel.delivered == []
        item = await store.get_outbox_item(out.id)
        assert item is not None and item.state is OutboxState.PENDING
    finally:
        await store.close()


class HangingChannel(ScriptedChannel):
    """The first send never answers (a platform that accepted the connection and hung)."""

    async def send(self, message: Outbound) -> str:
        if not self.attempts:
            self.attempts.append((time.monotonic(), message.text))
            await asyncio.Event().wait()
        return await super().send(message)


async def test_a_hanging_send_times_out_and_is_retried(store: SQLiteStore) -> None:
    [out] = await queue(store, "c1", "hello")
    channel = HangingChannel()
    await run_sender(store, channel, config(send_timeout=0.2), timeout=5.0)
    assert channel.delivered == ["hello"] and len(channel.attempts) == 2
    item = await store.get_outbox_item(out.id)
    assert item is not None and item.state is OutboxState.SENT and item.attempts == 2
    assert item.last_error is not None and "timed out" in item.last_error


# -- heartbeats: a live sender's claims do not run out while it works on them -------------

LEASE = 3.0


class SlowWritesStore(SQLiteStore):
    """An overloaded database shared by two farm processes: each result write (`outbox_sent`)
    lands a lease and a half after it was issued. Its clock moves on a quarter of the lease at
    a time; after each step, the leases still held get the time a heartbeat needs to renew
    them (bounded: without a heartbeat nothing renews them) and every sender polls again."""

    def __init__(self, path: Path) -> None:
        self.fake_clock = FakeClock()
        super().__init__(path, clock=self.fake_clock)
        self.polls: dict[str, int] = {}
        self.ids: list[str] = []  # the replies under test
        self._one_at_a_time = asyncio.Lock()

    async def claim_outbox(self, owner: str, *, limit: int, lease_seconds: float) -> list[OutboxItem]:
        items = await super().claim_outbox(owner, limit=limit, lease_seconds=lease_seconds)
        self.polls[owner] = self.polls.get(owner, 0) + 1
        return items

    async def _held_leases_fresh(self, ids: list[str]) -> bool:
        """Whether every item of ``ids`` still leased has more than half a lease left."""
        for outbound_id in ids:
            item = await self.get_outbox_item(outbound_id)
            if item is None or item.state is not OutboxState.PENDING or item.lease_until is None:
                continue  # recorded, or not leased
            if (item.lease_until - self.fake_clock.now()).total_seconds() <= LEASE / 2:
                return False
        return True

    async def _every_sender_polled(self) -> None:
        polled = dict(self.polls)
        await eventually(lambda: all(self.polls[o] > n for o, n in polled.items()))

    async def outbox_sent(self, outbound_id: str, platform_message_id: str, *, token: str | None = None) -> bool:
        async with self._one_at_a_time:
            for _ in range(6):
                self.fake_clock.advance(LEASE / 4)
                await until(lambda: self._held_leases_fresh(self.ids), timeout=1.0)
                await self._every_sender_polled()
            return await super().outbox_sent(outbound_id, platform_message_id, token=token)


async def test_two_senders_on_a_slow_store_send_every_reply_once(tmp_path: Path) -> None:
    """Two processes share a store so slow that recording a send takes longer than the lease
    (seen on an overloaded MongoDB): each sender's heartbeat keeps its claims alive, so the
    other never takes over an item still being sent or recorded and sends it again."""
    store = SlowWritesStore(tmp_path / "slow.db")
    await store.open()
    try:
        out = [o for chat in ("c1", "c2") for o in await queue(store, chat, f"{chat}-one", f"{chat}-two")]
        store.ids = [o.id for o in out]
        channel = ScriptedChannel()
        cfg = config(lease_seconds=LEASE, send_timeout=0.5)
        store.polls = {"p1": 0, "p2": 0}
        senders = [OutboxSender(store, {(BOT, "scripted"): channel}, cfg, owner=owner) for owner in store.polls]
        for sender in senders:
            await sender.start()

        async def all_sent_or_one_twice() -> bool:
            if len(channel.delivered) > len(set(channel.delivered)):
                return True
            return (await store.outbox_counts())[OutboxState.PENDING] == 0 and not any(s._inflight for s in senders)

        try:
            await eventually(all_sent_or_one_twice, timeout=25, message=lambda: str(channel.delivered))
        finally:
            for sender in senders:
                await sender.stop(timeout=2)
        assert sorted(channel.delivered) == sorted(o.text for o in out), "a reply was sent twice (or not at all)"
        for o in out:
            item = await store.get_outbox_item(o.id)
            assert item is not None and (item.state, item.in_doubt, item.attempts) == (OutboxState.SENT, 0, 1)
    finally:
        await store.close()


class LateSentStore(SQLiteStore):
    """An overloaded database shared by two farm processes: the first "sent" written and every
    lease renewal sit in it until the test lets them through (`gate.set()`)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, clock=FakeClock())
        self.gate = asyncio.Event()
        self.polls: dict[str, int] = {}
        self.held_sent = 0  # result writes waiting at the gate

    async def claim_outbox(self, owner: str, *, limit: int, lease_seconds: float) -> list[OutboxItem]:
        items = await super().claim_outbox(owner, limit=limit, lease_seconds=lease_seconds)
        self.polls[owner] = self.polls.get(owner, 0) + 1
        return items

    async def outbox_renew(self, outbound_id: str, token: str, lease_seconds: float) -> bool:
        await self.gate.wait()
        return await super().outbox_renew(outbound_id, token, lease_seconds)

    async def outbox_sent(self, outbound_id: str, platform_message_id: str, *, token: str | None = None) -> bool:
        if platform_message_id == "scripted:1":  # the first send's record
            self.held_sent += 1
            await self.gate.wait()
        return await super().outbox_sent(outbound_id, platform_message_id, token=token)


async def _first_sender_sent_and_lease_ran_out(store: LateSentStore, channel: ScriptedChannel) -> OutboxSender:
    """p1 claims and sends "hello"; its "sent" (and its renewals) sit in the store until the lease
    has run out. p1 then polls only every 20 s, so it does not take the item over itself."""
    p1 = OutboxSender(store, {(BOT, "scripted"): channel},
                      config(poll_interval=20.0, lease_seconds=30, send_timeout=10), owner="p1")
    await p1.start()
    await eventually(lambda: channel.delivered == ["hello"] and store.held_sent == 1)
    await eventually(lambda: store.polls["p1"] >= 2)  # polled after its claim (nothing), next in 20 s
    advance(store, 31)  # p1's lease runs out: its renewals are still stuck in the store
    return p1


async def test_a_sender_taking_over_waits_for_the_late_sent_and_does_not_send_again(tmp_path: Path) -> None:
    """Two processes, a store slower than the lease: p1 sent the reply but its "sent" lands after
    the lease ran out and p2 took the claim over. p2 waits the takeover grace, finds the reply
    recorded sent by p1, and does not send it a second time."""
    store = LateSentStore(tmp_path / "late.db")
    await store.open()
    try:
        [out] = await queue(store, "c1", "hello")
        channel = ScriptedChannel()
        found_before = metrics.OUTBOUND.labels(BOT, "scripted", "takeover_found_sent")._value.get()
        p1 = await _first_sender_sent_and_lease_ran_out(store, channel)
        p2 = OutboxSender(store, {(BOT, "scripted"): channel},
                          config(lease_seconds=30, send_timeout=10), owner="p2")  # grace: the lease, 30 s
        await p2.start()
        try:
            await eventually_item(store, out.id, lambda item: item.in_doubt == 1)  # p2 took the claim over
            store.gate.set()  # p1's "sent" lands, during p2's grace
            await eventually_item(store, out.id, lambda item: item.state is OutboxState.SENT)
            advance(store, 31)  # p2's grace is over
            await eventually(lambda: metrics.OUTBOUND.labels(BOT, "scripted", "takeover_found_sent")._value.get()
                             == found_before + 1, message=lambda: f"sent {channel.delivered}")
            await eventually(lambda: not p2._inflight)
        finally:
            await p2.stop(timeout=2)
            await p1.stop(timeout=2)
        assert channel.delivered == ["hello"], "p2 sent the reply p1 had sent"
        item = await store.get_outbox_item(out.id)
        assert item is not None and (item.state, item.platform_message_id, item.in_doubt) == \
            (OutboxState.SENT, "scripted:1", 1)
    finally:
        await store.close()


async def test_without_a_takeover_grace_the_taker_sends_the_item_in_doubt_at_once(tmp_path: Path) -> None:
    """``takeover_grace_seconds: 0``: as before the grace, p2 sends the taken-over reply at once
    (a copy, counted in doubt), and p1's late "sent" no longer overwrites p2's record."""
    store = LateSentStore(tmp_path / "late.db")
    await store.open()
    try:
        [out] = await queue(store, "c1", "hello")
        channel = ScriptedChannel()
        p1 = await _first_sender_sent_and_lease_ran_out(store, channel)
        p2 = OutboxSender(store, {(BOT, "scripted"): channel},
                          config(lease_seconds=30, send_timeout=10, takeover_grace_seconds=0), owner="p2")
        await p2.start()
        try:
            await eventually_item(store, out.id, lambda item: item.state is OutboxState.SENT)
            assert channel.delivered == ["hello", "hello"]
            store.gate.set()  # p1's "sent" lands after p2's: refused
            await eventually(lambda: not p1._inflight)
        finally:
            await p2.stop(timeout=2)
            await p1.stop(timeout=2)
        item = await store.get_outbox_item(out.id)
        assert item is not None and (item.state, item.platform_message_id, item.in_doubt, item.attempts) == \
            (OutboxState.SENT, "scripted:2", 1, 1)
    finally:
        await store.close()


async def test_a_reply_whose_sender_died_is_sent_once_the_takeover_grace_is_over(store: CountingStore) -> None:
    """The crash window: the claim of a dead sender runs out; the taker keeps the reply for the grace
    (nobody records it sent: its sender is gone) and then sends it, once, counted in doubt."""
    [out] = await queue(store, "c1", "hello")
    await store.claim_outbox("dead-process", limit=10, lease_seconds=10)
    advance(store, 11)
    channel = ScriptedChannel()
    in_doubt_before = metrics.OUTBOUND.labels(BOT, "scripted", "in_doubt")._value.get()
    sender = OutboxSender(store, {(BOT, "scripted"): channel}, config(lease_seconds=30, send_timeout=10),
                          owner="taker")
    await sender.start()
    try:
        await eventually_item(store, out.id, lambda item: item.in_doubt == 1)  # taken over
        await idle(store, polls=3)
        assert channel.delivered == [], "sent before the takeover grace was over"
        advance(store, 15)  # half the grace: the heartbeat renews the claim; still not sent
        await eventually_item(store, out.id, lambda item: item.lease_until is not None
                              and item.lease_until > store.clock.now() + timedelta(seconds=25))
        assert channel.delivered == []
        advance(store, 16)  # past the first lease (renewed) and the grace
        await eventually_item(store, out.id, lambda item: item.state is OutboxState.SENT)
    finally:
        await sender.stop(timeout=2)
    assert channel.delivered == ["hello"]
    assert metrics.OUTBOUND.labels(BOT, "scripted", "in_doubt")._value.get() == in_doubt_before + 1
    item = await store.get_outbox_item(out.id)
    assert item is not None and (item.in_doubt, item.attempts) == (1, 1)


async def test_a_sender_stopped_during_a_takeover_grace_leaves_the_reply_claimed(store: CountingStore) -> None:
    [out] = await queue(store, "c1", "hello")
    await store.claim_outbox("dead-process", limit=10, lease_seconds=10)
    advance(store, 11)
    channel = ScriptedChannel()
    sender = OutboxSender(store, {(BOT, "scripted"): channel}, config(lease_seconds=30, send_timeout=10),
                          owner="taker")
    await sender.start()
    try:
        held = await eventually_item(store, out.id, lambda item: item.in_doubt == 1)
    finally:
        await sender.stop(timeout=2)
    assert channel.delivered == [] and not sender._waiting
    item = await store.get_outbox_item(out.id)
    assert item is not None and item.state is OutboxState.PENDING and item.lease_token == held.lease_token


def test_the_takeover_grace_is_the_lease_unless_set() -> None:
    assert DeliveryConfig().takeover_grace_seconds == 30.0
    assert DeliveryConfig.model_validate({"lease_seconds": 6, "send_timeout": 2}).takeover_grace_seconds == 6.0
    assert DeliveryConfig.model_validate({"lease_seconds": 6, "send_timeout": 2,
                                          "takeover_grace_seconds": 0}).takeover_grace_seconds == 0.0
    with pytest.raises(ValueError, match="takeover_grace_seconds"):
        DeliveryConfig.model_validate({"takeover_grace_seconds": -1})


async def eventually_item(store: SQLiteStore, outbound_id: str, condition: Callable[[OutboxItem], bool]) -> OutboxItem:
    """The stored item once ``condition`` holds for it."""

    async def holds() -> OutboxItem | None:
        item = await store.get_outbox_item(outbound_id)
        return item if item is not None and condition(item) else None

    found = await eventually(holds)
    assert found is not None
    return found


class HeldRenewalsStore(SQLiteStore):
    """A store whose lease renewals wait until the test lets them through (`renewals.set()`)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, clock=FakeClock())
        self.renewals = asyncio.Event()
        self.renewing = 0

    async def outbox_renew(self, outbound_id: str, token: str, lease_seconds: float) -> bool:
        self.renewing += 1
        await self.renewals.wait()
        return await super().outbox_renew(outbound_id, token, lease_seconds)


class BlockedChannel(ScriptedChannel):
    """A send that does not answer (a hung platform); records whether it was cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.cancelled = False

    async def send(self, message: Outbound) -> str:
        self.attempts.append((time.monotonic(), message.text))
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        raise AssertionError("unreachable")


async def test_a_send_whose_lease_another_sender_took_over_is_cancelled_not_recorded(tmp_path: Path) -> None:
    store = HeldRenewalsStore(tmp_path / "held.db")
    await store.open()
    try:
        [out] = await queue(store, "c1", "hello")
        [held] = await store.claim_outbox("p1", limit=10, lease_seconds=30)
        channel = BlockedChannel()
        sender = OutboxSender(store, {(BOT, "scripted"): channel},
                              config(poll_interval=5.0, lease_seconds=30, send_timeout=10), owner="p1")
        await sender.start()  # polls once (nothing claimable), then not for 5 s
        try:
            sender.submit([held])
            await eventually(lambda: len(channel.attempts) == 1)
            advance(store, 31)  # the lease ran out (the heartbeat's renewal is held up in the store)
            await eventually(lambda: store.renewing > 0)
            [taken] = await store.claim_outbox("p2", limit=10, lease_seconds=30)
            store.renewals.set()  # the renewal lands: the token is p2's now
            await eventually(lambda: channel.cancelled and not sender._inflight, timeout=2.0)
        finally:
            await sender.stop(timeout=2)
        item = await store.get_outbox_item(out.id)
        assert item is not None and item.state is OutboxState.PENDING and item.attempts == 0
        assert item.lease_token == taken.lease_token, "p1 recorded a result for an item p2 holds"
        assert channel.delivered == []
    finally:
        await store.close()
