"""The outbox sender: delivers queued messages through the adapters, exactly in order per conversation.

Claims due items from the store (one per conversation at a time, leased) or takes
those a turn claimed when it committed (`submit`), waits for the send-rate limits, calls the adapter, and records the result:
``RateLimited`` → retry after the platform's ``retry_after``; transient errors →
exponential backoff with jitter; permanent errors →
``failed`` (visible to agents, counted in metrics). Resumes after a restart
because everything it needs is in the store.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

import structlog

from core import metrics
from core.clock import Clock
from core.deadlines import Deadlines
from core.delivery.config import DeliveryConfig
from core.delivery.ratelimit import SendLimiter
from core.errors import ChannelError, OutsideServiceWindow, RateLimited, StoreError, TransientError
from core.model import Event, Outbound
from core.ports import Channel
from core.store.base import OutboxItem, OutboxState, Store

log = structlog.get_logger(__name__)


class DeliveryListener(Protocol):
    async def delivery_failed(self, item: OutboxItem, error: str) -> None: ...

    async def service_window_closed(self, item: OutboxItem) -> None: ...


# How often the heartbeat reads the clock for leases due a renewal. It reads the clock
# (rather than sleeping a third of the lease) so that a renewal is due by the sender's clock,
# whichever clock that is; a renewal goes out at most this late.
_HEARTBEAT_TICK = 0.25


@dataclass(eq=False)
class _Hold:
    """An item this sender works on (being sent or recorded), its lease kept alive by the heartbeat."""

    item: OutboxItem
    token: str
    task: asyncio.Task[None]
    until: float  # wall time (`Clock.time`) the lease surely runs to: the latest confirmed stamp + lease
    next_beat: float  # wall time the next renewal is due
    recording: bool = False  # the result is being written: the fenced write decides, nothing to cancel
    waiting: bool = False  # a takeover in its grace (`_after_grace`): nothing is being sent yet
    lost: bool = False  # a renewal found the token gone (recorded sent by the earlier holder, or claimed)


class OutboxSender:
    def __init__(
        self,
        store: Store,
        channels: Mapping[tuple[str, str], Channel],
        config: DeliveryConfig,
        *,
        owner: str,
        listeners: list[DeliveryListener] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        # Lease ages and retry times are read from the store's clock (unless given another):
        # the store stamps and expires the leases by it.
        self.clock = clock or store.clock
        self.channels = channels
        self.config = config
        self.owner = owner
        self.listeners = listeners or []
        self.limiter = SendLimiter(config.rate_limits)
        self._wake = asyncio.Event()
        self._claim = True  # whether the loop should ask the store for due items
        self._claimed_at = 0.0  # monotonic time of the last claim_outbox
        # Items a turn claimed at commit: (item, more queued behind it, monotonic time of the claim).
        self._ready: collections.deque[tuple[OutboxItem, bool, float]] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self._metrics_task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(config.workers)
        self._stopping = False
        self._deadlines = Deadlines()
        # The items in flight that hold a lease, by lease token (one item may be held twice: a
        # claim that ran out while its send hung, and this sender's own claim of it since).
        self._holds: dict[str, _Hold] = {}
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._beats: set[asyncio.Task[None]] = set()  # renewals under way
        self._waiting: set[asyncio.Task[None]] = set()  # takeovers in their grace (`_after_grace`)

    def notify(self) -> None:
        """New items were queued: look now rather than at the next poll."""
        self._claim = True
        self._wake.set()

    def submit(self, items: list[OutboxItem], more: bool = False) -> None:
        """Send ``items``, already leased to this sender (claimed when their turn committed).

        ``more``: their conversation has further items queued behind them, to be claimed
        once these are sent.
        """
        now = self.clock.monotonic()
        self._ready.extend((item, more, now) for item in items)
        self._wake.set()

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._loop())
        self._metrics_task = asyncio.get_running_loop().create_task(self._metrics_loop())
        self._heartbeat_task = asyncio.get_running_loop().create_task(self._heartbeat())

    async def _metrics_loop(self) -> None:
        """Keep the outbox gauge (pending / sent / failed) current for /metrics, and record
        delivery receipts that arrived before their message's platform id was stored."""
        while not self._stopping:
            try:
                await self.refresh_metrics()
                if await self.store.apply_parked_receipts():
                    log.info("outbox.parked_receipts_recorded")
            except StoreError as exc:
                log.warning("outbox.metrics_failed", error=str(exc))
            await asyncio.sleep(self.config.metrics_interval)

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; send what turns claimed before the stop; wait up to ``timeout`` in all."""
        self._stopping = True
        self._wake.set()
        deadline = time.monotonic() + timeout
        if self._task:
            await asyncio.wait([self._task], timeout=timeout)  # it may be waiting for a worker
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        waiting = list(self._waiting)  # takeovers in their grace stay leased: claimed again later
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                while self._ready:  # claimed by turns that committed before the stop: send them too
                    await self._start(self._ready[0][0], claim_after=False)
                    self._ready.popleft()
        # Whatever is left stays leased: another process (or the next start) sends it.
        if self._inflight:
            _, pending = await asyncio.wait(list(self._inflight), timeout=max(0.0, deadline - time.monotonic()))
            for task in pending:  # still leased: another process (or the next start) sends them
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._metrics_task:
            self._metrics_task.cancel()
            await asyncio.gather(self._metrics_task, return_exceptions=True)
        if self._heartbeat_task:  # nothing is in flight any more
            self._heartbeat_task.cancel()
            await asyncio.gather(self._heartbeat_task, return_exceptions=True)
        beats = list(self._beats)  # renewals still under way (a slow store)
        for beat in beats:
            beat.cancel()
        await asyncio.gather(*beats, return_exceptions=True)
        await self._deadlines.close()

    async def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            claimed = 0
            try:
                while self._ready:
                    item, more, claimed_at = self._ready[0]
                    if self.clock.monotonic() - claimed_at <= self.config.lease_seconds / 2:
                        await self._start(item, claim_after=more)  # waits for a free worker
                    else:
                        # Waited too long for a worker: its lease may run out mid-send and
                        # another sender claim it too. Leave it to expire and be claimed again.
                        log.warning("outbox.claim_too_old", outbound=item.outbound.id)
                    self._ready.popleft()
                # Due retries and expired leases are found by claiming at least every poll
                # interval, however busy the submitted replies keep the loop.
                if self._claim or time.monotonic() - self._claimed_at >= self.config.poll_interval:
                    self._claim = False
                    self._claimed_at = time.monotonic()
                    free = max(1, min(self.config.batch, self.config.workers - len(self._inflight)))
                    items = await self.store.claim_outbox(
                        self.owner, limit=free, lease_seconds=self.config.lease_seconds
                    )
                    claimed = len(items)
                    for item in items:
                        if item.taken_over and self.config.takeover_grace_seconds > 0:
                            self._take_over(item)  # sent after the grace, without a worker meanwhile
                        else:
                            await self._start(item, claim_after=True)
            except Exception as exc:
                self._claim = True
                if isinstance(exc, StoreError):
                    log.warning("outbox.claim_failed", error=str(exc))
                else:
                    metrics.ERRORS.labels("outbox").inc()
                    log.exception("outbox.loop_error")
                with contextlib.suppress(TimeoutError):  # the store is struggling: not straight back
                    await asyncio.wait_for(self._wake.wait(), timeout=self.config.poll_interval)
                continue
            if claimed:
                # Items of the same conversations become claimable as sends finish, and new
                # items when a turn queues them (notify): whichever comes first, not a fixed
                # 50 ms later (that wait was the p99 latency under steady load).
                self._claim = True
                await asyncio.sleep(0)
                if self._inflight and not self._wake.is_set():
                    woken = asyncio.ensure_future(self._wake.wait())
                    await asyncio.wait([*self._inflight, woken], timeout=0.05,
                                       return_when=asyncio.FIRST_COMPLETED)
                    woken.cancel()
                continue
            if self._ready or self._claim:
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.config.poll_interval)
            except TimeoutError:
                self._claim = True  # retries come due, other processes' leases expire

    async def _start(self, item: OutboxItem, *, claim_after: bool) -> None:
        await self._slots.acquire()
        self._launch(item, claim_after=claim_after)

    def _launch(self, item: OutboxItem, *, claim_after: bool, prove: bool = False) -> None:
        """Send ``item`` in a worker (its slot acquired by the caller)."""
        task = asyncio.get_running_loop().create_task(self._deliver(item, prove=prove))
        self._inflight.add(task)
        task.add_done_callback(functools.partial(self._finished, claim_after))

    def _take_over(self, item: OutboxItem) -> None:
        """Send ``item``, whose earlier claim ran out without a result, once the takeover grace is over.

        The earlier sender may have sent it and its "sent" sit in a slow store behind the lease
        (`outbox_sent` records a superseded holder's send). Its own task waits the grace,
        holding no worker (those keep sending other items), so an outage that leaves many
        items in doubt does not stall the rest.
        """
        task = asyncio.get_running_loop().create_task(self._after_grace(item))
        self._waiting.add(task)
        task.add_done_callback(self._grace_ended)

    def _grace_ended(self, task: asyncio.Task[None]) -> None:
        self._waiting.discard(task)
        if not task.cancelled() and task.exception() is not None:
            metrics.ERRORS.labels("outbox").inc()
            log.error("outbox.takeover_crashed", exc_info=task.exception())

    async def _after_grace(self, item: OutboxItem) -> None:
        """Keep the claim of a taken-over ``item`` alive (`_heartbeat`) for the takeover grace, by the
        sender's clock, then hand it to a worker, which proves the claim in the store right before
        sending (`_work`): a late "sent" of the earlier holder clears the token, so it is not sent again."""
        task = asyncio.current_task()
        assert item.lease_token is not None and task is not None  # claimed: every claim has a token
        out = item.outbound
        grace = self.config.takeover_grace_seconds
        hold = self._hold(item, task)
        hold.waiting = True
        self._holds[hold.token] = hold
        log.info("outbox.takeover_grace", outbound=out.id, channel=out.channel, in_doubt=item.in_doubt,
                 seconds=grace)
        try:
            due = self.clock.time() + grace
            # Read the clock (not one sleep of `grace`), so the grace is over by the sender's clock.
            while not hold.lost and (left := due - self.clock.time()) > 0:
                await asyncio.sleep(min(_HEARTBEAT_TICK, left))
            if hold.lost:  # a renewal found the token gone: most likely the earlier holder's "sent" landed
                if not await self._found_sent(item):
                    metrics.ERRORS.labels("outbox_lease_lost").inc()
                    log.warning("outbox.lease_lost", outbound=out.id, channel=out.channel, during="grace")
                return
            await self._slots.acquire()  # the claim is kept alive while a worker comes free
        finally:
            del self._holds[hold.token]
            hold.next_beat = float("inf")
        # From here the worker's own hold renews the lease, from the latest stamp confirmed so far.
        self._launch(replace(item, lease_until=datetime.fromtimestamp(hold.until, UTC)), claim_after=True,
                     prove=True)

    async def _found_sent(self, item: OutboxItem) -> bool:
        """Whether a taken-over ``item`` was recorded sent by its earlier holder meanwhile (a copy saved)."""
        out = item.outbound
        try:
            stored = await self.store.get_outbox_item(out.id)
        except StoreError as exc:
            log.warning("outbox.takeover_check_failed", outbound=out.id, error=str(exc))
            return False
        if stored is None or stored.state is not OutboxState.SENT:
            return False
        metrics.OUTBOUND.labels(out.bot, out.channel, "takeover_found_sent").inc()
        log.warning("outbox.takeover_found_sent", outbound=out.id, channel=out.channel, in_doubt=item.in_doubt)
        return True

    def _finished(self, claim_after: bool, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None:
            metrics.ERRORS.labels("outbox").inc()
            log.error("outbox.deliver_crashed", exc_info=task.exception())
        if claim_after:  # the conversation's next item may be claimable now
            self._claim = True
            self._wake.set()

    def _exhausted(self, item: OutboxItem) -> bool:
        """Whether a retryable failure of ``item`` is final now.

        Attempts alone would be wrong: the store counts every 429 as an attempt, so a
        rate-limit storm followed by one 5xx would fail a message that a retry delivers.
        """
        if item.attempts + 1 < self.config.max_attempts:
            return False
        age = (self.clock.now() - item.outbound.created_at).total_seconds()
        return age >= self.config.min_retry_seconds

    def _delay(self, attempts: int) -> float:
        """Exponential backoff with "equal jitter": half the step fixed, half random.

        The step doubles from ``backoff_initial`` up to ``backoff_max``; the random half
        spreads the retries of messages that failed together (an outage) so they do not
        hit the recovering platform at the same instant, and the fixed half keeps a retry
        from coming right back.
        """
        step = min(self.config.backoff_max, self.config.backoff_initial * 2 ** (max(1, attempts) - 1))
        return float(step / 2 + random.uniform(0, step / 2))

    async def _deliver(self, item: OutboxItem, *, prove: bool = False) -> None:
        """Send ``item`` and record the result, its lease kept alive meanwhile (`_heartbeat`).

        ``prove``: prove the claim in the store right before sending, however young it is.
        """
        task = asyncio.current_task()
        if item.lease_token is None or task is None:  # not leased (no fencing to keep alive)
            await self._work(item, None)
            return
        hold = self._hold(item, task)
        self._holds[hold.token] = hold
        try:
            await self._work(item, hold, prove=prove)
        finally:
            del self._holds[hold.token]
            hold.next_beat = float("inf")

    def _hold(self, item: OutboxItem, task: asyncio.Task[None]) -> _Hold:
        assert item.lease_token is not None
        until = item.lease_until.timestamp() if item.lease_until is not None else self.clock.time()
        # The first renewal is due when a third of the lease has gone by.
        return _Hold(item, item.lease_token, task, until=until, next_beat=until - self.config.lease_seconds * 2 / 3)

    async def _work(self, item: OutboxItem, hold: _Hold | None, *, prove: bool = False) -> None:
        out = item.outbound
        channel = self.channels.get((out.bot, out.channel))
        if channel is None:
            await self._fail(item, f"no adapter for {out.bot}/{out.channel}")
            return
        await self.limiter.acquire(out.bot, out.channel, out.chat_id, channel.rate_limits)
        if hold is not None and (prove or not self._young(hold)) and not await self._renew(hold):
            return
        if item.in_doubt:
            # An earlier claim ended without a recorded result (its sender died mid-send) and
            # nobody recorded it sent during the takeover grace: the platform may have this reply
            # already. Sent again: the crash window (docs/scaling.md).
            metrics.OUTBOUND.labels(out.bot, out.channel, "in_doubt").inc()
            log.warning("outbox.send_in_doubt", outbound=out.id, channel=out.channel, in_doubt=item.in_doubt)
        try:
            platform_id = await self._send(channel, out)  # a hung call: retried like any transient failure
        except RateLimited as exc:
            metrics.OUTBOUND.labels(out.bot, out.channel, "rate_limited").inc()
            log.info("outbox.rate_limited", outbound=out.id, channel=out.channel, retry_after=exc.retry_after)
            await self._retry(item, self.clock.now() + timedelta(seconds=exc.retry_after), str(exc))
            return
        except OutsideServiceWindow as exc:
            if out.template is None:
                # Outside WhatsApp's 24 h window only a template may go out; the adapter
                # maps "default" to its configured template. The agent is told.
                for listener in self.listeners:
                    try:
                        await listener.service_window_closed(item)
                    except Exception:
                        metrics.ERRORS.labels("delivery_listener").inc()
                        log.exception("outbox.listener_failed", listener=type(listener).__name__)
                try:
                    platform_id = await self._send(channel, replace(out, template="default"))
                except ChannelError as inner:
                    await self._fail(item, f"outside service window; template failed: {inner}")
                    return
            else:
                await self._fail(item, str(exc))
                return
        except ChannelError as exc:
            if exc.retryable and not self._exhausted(item):
                delay = self._delay(item.attempts + 1)
                metrics.OUTBOUND.labels(out.bot, out.channel, "retry").inc()
                log.info("outbox.retry", outbound=out.id, channel=out.channel, delay=round(delay, 3), error=str(exc))
                await self._retry(item, self.clock.now() + timedelta(seconds=delay), str(exc))
            else:
                await self._fail(item, f"{type(exc).__name__}: {exc}")
            return
        except Exception as exc:  # an adapter bug must not lose the message: retry with backoff
            metrics.ERRORS.labels("adapter_send").inc()
            log.exception("outbox.adapter_error", outbound=out.id, channel=out.channel)
            if not self._exhausted(item):
                await self._retry(item, self.clock.now() + timedelta(seconds=self._delay(item.attempts + 1)), repr(exc))
            else:
                await self._fail(item, repr(exc))
            return
        await self._record_sent(item, platform_id)
        metrics.child(metrics.OUTBOUND, out.bot, out.channel, "sent").inc()
        metrics.child(metrics.DELIVERY_SECONDS, out.channel).observe(max(0.0, time.time() - out.created_at.timestamp()))

    def _young(self, hold: _Hold) -> bool:
        """Whether the claim proves itself: more than half of ``lease_seconds`` left (by the store's
        stamp of the claim or of the latest renewal the heartbeat had confirmed).

        Right before sending, a claim must be proved. A young one needs no round trip: another
        sender can only claim the item after the lease runs out, and the half left covers the
        send (``send_timeout``), recording the result and clock skew between processes. An
        older claim (it waited for a worker or the rate limit) is renewed in the store (`_renew`).
        """
        return hold.until - self.clock.time() > self.config.lease_seconds / 2

    async def _renew(self, hold: _Hold) -> bool:
        """Prove and extend an older claim in the store; False if another sender claimed the item
        since, or if the store took so long that less than half the renewed lease is left."""
        item = hold.item
        issued = self.clock.time()
        if await self.store.outbox_renew(item.outbound.id, hold.token, self.config.lease_seconds):
            hold.until = max(hold.until, issued + self.config.lease_seconds)
            if self._young(hold):
                return True
            # The lease runs from when the call was made: a send now could outlive it and go out
            # twice. Not sent; the item is claimed again when the lease runs out.
            metrics.ERRORS.labels("outbox_store_slow").inc()
            log.warning("outbox.renew_too_slow", outbound=item.outbound.id,
                        seconds=round(self.clock.time() - issued, 3))
            return False
        if item.taken_over and await self._found_sent(item):
            return False  # the earlier holder's "sent" landed: not sent again
        metrics.ERRORS.labels("outbox_lease_lost").inc()
        log.warning("outbox.lease_lost", outbound=item.outbound.id, channel=item.outbound.channel)
        return False

    async def _heartbeat(self) -> None:
        """Renew the leases of the items in flight every third of the lease, so that a live
        sender's claim never runs out while it sends or records (a slow store or platform).

        Each renewal is stamped when it is issued and does not wait for the one before: a
        store slower than a third of the lease still gets a fresh stamp before the lease runs
        out. A renewal that finds the token gone (another sender claimed the item) cancels the
        send. When the process dies the heartbeat stops with it, and the lease runs out as before.
        """
        third = self.config.lease_seconds / 3
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(_HEARTBEAT_TICK, third))
            now = self.clock.time()
            for hold in list(self._holds.values()):
                if now >= hold.next_beat:
                    hold.next_beat = now + third
                    beat = loop.create_task(self._beat(hold))
                    self._beats.add(beat)
                    beat.add_done_callback(self._beats.discard)

    async def _beat(self, hold: _Hold) -> None:
        out = hold.item.outbound
        issued = self.clock.time()
        try:
            renewed = await self.store.outbox_renew(out.id, hold.token, self.config.lease_seconds)
        except StoreError as exc:  # the next beat tries again; the lease may run out meanwhile
            log.warning("outbox.heartbeat_failed", outbound=out.id, error=str(exc))
            return
        except Exception:
            metrics.ERRORS.labels("outbox").inc()
            log.exception("outbox.heartbeat_error", outbound=out.id)
            return
        if renewed:
            hold.until = max(hold.until, issued + self.config.lease_seconds)
            return
        hold.next_beat = float("inf")  # the token is gone: nothing left to renew
        hold.lost = True
        if hold.waiting or hold.recording or self._holds.get(hold.token) is not hold:
            return  # its result was recorded (which clears the token), or the fenced write decides
        # Another sender claimed the item: it sends it. Stop before (or while) sending it too.
        metrics.ERRORS.labels("outbox_lease_lost").inc()
        log.warning("outbox.lease_lost", outbound=out.id, channel=out.channel, during="send")
        hold.task.cancel()

    async def _send(self, channel: Channel, out: Outbound) -> str:
        """``channel.send`` within ``send_timeout`` (a hung platform call becomes a transient error)."""
        try:
            with self._deadlines.within(self.config.send_timeout):
                return await channel.send(out)
        except TimeoutError as exc:
            raise TransientError(f"send timed out after {self.config.send_timeout:g} s") from exc

    async def _record_sent(self, item: OutboxItem, platform_id: str) -> None:
        """Mark the item sent, retrying while the store is briefly unavailable.

        The platform has the message now; if the mark is lost, the lease expires and the
        message goes out a second time (after the taker's grace). So keep trying for most of the lease.
        """
        self._recording(item)
        out = item.outbound
        deadline = time.monotonic() + self.config.lease_seconds * 0.8
        delay = 0.05
        while True:
            try:
                if not await self.store.outbox_sent(out.id, platform_id, token=item.lease_token):
                    # Another sender, claiming it since this one proved its lease (a send or a
                    # store call slower than half the lease), recorded its result first: a copy
                    # went out. (A late "sent" of this one is recorded while there is none.)
                    metrics.ERRORS.labels("outbox_lease_lost").inc()
                    log.error("outbox.sent_after_lease_lost", outbound=out.id, channel=out.channel)
                return
            except StoreError as exc:
                if time.monotonic() + delay > deadline:
                    metrics.ERRORS.labels("outbox").inc()
                    log.error("outbox.mark_sent_failed", outbound=out.id, channel=out.channel, error=str(exc))
                    raise
                log.warning("outbox.mark_sent_retry", outbound=out.id, error=str(exc), delay=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _recording(self, item: OutboxItem) -> None:
        """The result of ``item`` is being written: a renewal that finds the token gone no
        longer cancels (the write cleared it, or the write's own fencing refuses it)."""
        hold = self._holds.get(item.lease_token) if item.lease_token is not None else None
        if hold is not None:
            hold.recording = True

    async def _retry(self, item: OutboxItem, not_before: datetime, error: str) -> None:
        self._recording(item)
        await self.store.outbox_retry(item.outbound.id, not_before, error, token=item.lease_token)

    async def _fail(self, item: OutboxItem, error: str) -> None:
        self._recording(item)
        out = item.outbound
        metrics.OUTBOUND.labels(out.bot, out.channel, "failed").inc()
        log.warning("outbox.failed", outbound=out.id, channel=out.channel, error=error)
        if not await self.store.outbox_failed(out.id, error, token=item.lease_token):
            log.warning("outbox.failed_after_lease_lost", outbound=out.id, channel=out.channel)
            return  # another sender holds it now and decides
        await self.store.append_events(
            out.conversation_id,
            [Event("delivery", {"status": "failed", "outbound_id": out.id, "error": error[:300]}, channel=out.channel)],
        )
        for listener in self.listeners:
            try:
                await listener.delivery_failed(item, error)
            except Exception:
                log.exception("outbox.listener_failed")

    async def refresh_metrics(self) -> None:
        for state, count in (await self.store.outbox_counts()).items():
            metrics.OUTBOX.labels(state.value).set(count)

    async def drain(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is pending (tests, benchmarks); True if drained in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            counts = await self.store.outbox_counts()
            if counts[OutboxState.PENDING] == 0 and not self._inflight:
                return True
            self.notify()
            await asyncio.sleep(0.02)
        return False
