"""Conversation turns: each conversation's messages processed one at a time, in order, once.

Within a process one task drains a conversation's inbox; across processes a
store lease (``turn:<conversation>``) gives one process the conversation at a
time, and ``commit_turn``'s version check makes a lost lease harmless (the
commit fails, nothing is written, the other process redoes the turn). A sweeper
picks up conversations left pending by a crash or by another process.

A turn that fails (an exception other than a lost race or an unreachable store) is
counted on its inbox item and retried with exponential backoff; after
``TurnsConfig.max_attempts`` the message becomes a dead letter: the customer gets an
apology once, the dead-letter listeners (the desks) are told, and the conversation
moves on to its next message. Only failures are counted, so the hot path writes
nothing extra; a message that kills the whole process is not counted.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Protocol

import structlog

from core import i18n, metrics
from core.clock import Clock
from core.deadlines import Deadlines
from core.engine import Engine, Reply, TurnInput, TurnOutput
from core.errors import ConcurrencyConflict, StoreError, StoreUnavailable
from core.model import Author, Conversation, Event, Inbound, Outbound
from core.pipeline.config import TurnsConfig
from core.pipeline.hooks import (
    AfterCommit,
    InCommit,
    Interceptor,
    PostProcessor,
    Preparer,
    TurnContext,
)
from core.store.base import DeadLetter, OutboxItem, Store, TurnState
from core.store.ports.turns import run_after_commit
from core.store.records import TurnWrite

log = structlog.get_logger(__name__)

# The engine sees a window of the transcript: enough for story memoisation (Rasa's
# max_history counts turns), fallback streaks and repeated questions; slots and the
# active form come from the conversation record. Loading more costs time per turn.
HISTORY_LIMIT = 60
WINDOW_CACHE_SIZE = 10_000
MAX_CONFLICTS = 5  # commits of one message that lost a race before the drain gives up
DEAD_LETTER_GAUGE_SECONDS = 10.0  # how often the sweeper refreshes the dead-letter gauge

class TurnFailed(Exception):
    """A turn could not run here (unknown bot, conversation gone): counted like a crash."""


class DeadLetterListener(Protocol):
    async def dead_lettered(self, letter: DeadLetter, customer_told: bool) -> None:
        """A customer message failed for good; ``customer_told``: an apology is queued."""


def _typing_done(message: Inbound, task: asyncio.Task[None]) -> None:
    """A typing indicator that failed is worth a warning, never a failed turn."""
    if not task.cancelled() and task.exception() is not None:
        metrics.ERRORS.labels("typing").inc()
        log.warning("turn.typing_failed", bot=message.bot, channel=message.channel, error=str(task.exception()))


class _Step(enum.Enum):
    """What the turn loop does after one turn."""

    NEXT = "next"  # committed; read the next pending message
    DONE = "done"  # committed, nothing left pending: the commit released the lease
    RETRY = "retry"  # the commit lost a race: read again and retry
    STOP = "stop"  # the message cannot be processed here: leave it to a later sweep


@dataclass(frozen=True, slots=True)
class _Window:
    """A conversation's recent transcript as of a version this process committed."""

    version: int
    events: list[Event]

    @property
    def last_seq(self) -> int:
        return self.events[-1].seq if self.events else 0


@dataclass
class BotRuntime:
    """What the runner needs of one bot."""

    name: str
    engine: Engine
    config: Any  # core.config.BotConfig
    interceptors: list[Interceptor] = field(default_factory=list)
    preparers: list[Preparer] = field(default_factory=list)
    post: list[PostProcessor] = field(default_factory=list)
    in_commit: list[InCommit] = field(default_factory=list)
    after: list[AfterCommit] = field(default_factory=list)


def reply_events(replies: Sequence[Reply], outbound: Sequence[Outbound], channel: str) -> list[Event]:
    """Rasa ``bot`` events for what was sent, linked to the outbox by ``outbound_id``."""
    events = []
    for reply, out in zip(replies, outbound, strict=True):
        data: dict[str, Any] = {
            "text": reply.text,
            "data": {"buttons": [{"title": b.title, "payload": b.payload} for b in reply.buttons]},
            "metadata": {"outbound_id": out.id, "author": out.author.kind},
        }
        if reply.response:
            data["metadata"]["utter_action"] = reply.response
        if out.author.name:
            data["metadata"]["author_name"] = out.author.name
        events.append(Event("bot", data, channel=channel))
    return events


def to_outbound(replies: Sequence[Reply], conversation_id: str, message: Inbound, author: Author) -> list[Outbound]:
    return [
        Outbound(
            conversation_id=conversation_id,
            bot=message.bot,
            channel=message.channel,
            chat_id=message.chat_id,
            text=r.text,
            buttons=r.buttons,
            attachments=r.attachments,
            author=author,
        )
        for r in replies
        if r.text or r.buttons or r.attachments
    ]


def merge_events(engine_events: Sequence[Event], bot_events: Sequence[Event]) -> list[Event]:
    """Engine events without its own ``bot`` events, ours placed before the final action_listen."""
    kept = [e for e in engine_events if e.type != "bot"]
    if kept and kept[-1].type == "action" and kept[-1].data.get("name") == "action_listen":
        return [*kept[:-1], *bot_events, kept[-1]]
    return [*kept, *bot_events]


class Outbox(Protocol):
    """Where a committed turn's replies go: the outbox sender (`core.delivery.sender.OutboxSender`)."""

    def notify(self) -> None:
        """New items are queued in the store: claim them now rather than at the next poll."""

    def submit(self, items: list[OutboxItem], more: bool = False) -> None:
        """Send these items, leased to this process when their turn committed; ``more``: others wait behind."""


class Typing(Protocol):
    """Where the typing indicator goes: straight to the adapter (`core.pipeline.channels.ChannelRegistry`)."""

    async def typing(self, message: Inbound) -> None: ...


class AtRestHook(Protocol):
    """What is stored of a turn differs from what the turn saw (core.privacy.at_rest.AtRest)."""

    def seal_inbound(self, message: Inbound) -> Inbound:
        """The message as it waits in the inbox (ingest stores this)."""

    def inbound(self, message: Inbound) -> Inbound: ...

    def conversation(self, conversation: Conversation) -> Conversation: ...

    def commit(self, conversation: Conversation, events: Sequence[Event],
               outbound: Sequence[Outbound]) -> tuple[Conversation, list[Event], list[Outbound]]: ...


class TurnRunner:
    """Runs turns: ``outbox`` takes the replies (None: committed, not claimed, for tests), ``typing``
    shows the bot typing when a turn takes longer than ``typing_delay``."""

    def __init__(
        self,
        store: Store,
        bots: Mapping[str, BotRuntime],
        *,
        owner: str,
        outbox: Outbox | None = None,
        typing: Typing | None = None,
        lease_seconds: float = 30.0,
        send_lease_seconds: float = 30.0,
        sweep_interval: float = 2.0,
        typing_delay: float = 0.4,
        config: TurnsConfig | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self.clock = clock or store.clock  # backoff is stored and compared by the store's clock
        self.bots = bots
        self.owner = owner
        self.outbox = outbox
        self.typing = typing
        self.lease_seconds = lease_seconds
        self.send_lease_seconds = send_lease_seconds
        self.sweep_interval = sweep_interval
        self.typing_delay = typing_delay
        self._active: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._stopping = False
        self._windows: OrderedDict[str, _Window] = OrderedDict()
        self.config = config or TurnsConfig()
        self.dead_letter_listeners: list[DeadLetterListener] = []
        self._retries: dict[str, asyncio.TimerHandle] = {}  # conversation -> its next retry
        # Conversations scheduled while `config.concurrency` drains run: started as drains end.
        self._waiting: OrderedDict[str, None] = OrderedDict()
        self._deadlines = Deadlines()
        self._typing_tasks: set[asyncio.Task[None]] = set()  # indicators on their way; cancelled on stop
        self.at_rest: AtRestHook | None = None  # from the plugins' `PluginParts.at_rest`, set by the farm

    # -- scheduling ---------------------------------------------------------------------
    def schedule(self, conversation_id: str) -> None:
        """Make sure the conversation's pending messages get processed soon."""
        if self._stopping:
            return
        if conversation_id in self._active:
            self._again.add(conversation_id)
            return
        if len(self._active) >= self.config.concurrency:
            self._waiting[conversation_id] = None  # bounded: one task per running conversation only
            return
        task = asyncio.get_running_loop().create_task(self._drain(conversation_id))
        self._active[conversation_id] = task
        task.add_done_callback(functools.partial(self._done, conversation_id))

    def _done(self, conversation_id: str, task: asyncio.Task[None]) -> None:
        self._active.pop(conversation_id, None)
        if not task.cancelled() and task.exception() is not None:
            metrics.ERRORS.labels("turns").inc()
            log.error("turn.drain_failed", conversation=conversation_id, exc_info=task.exception())
        if conversation_id in self._again:
            self._again.discard(conversation_id)
            self.schedule(conversation_id)
        while self._waiting and len(self._active) < self.config.concurrency and not self._stopping:
            waiting, _ = self._waiting.popitem(last=False)
            self.schedule(waiting)

    async def start(self) -> None:
        self._stopping = False
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    def _retry_at(self, conversation_id: str, delay: float) -> None:
        """Schedule the conversation again once its backing-off message is due (the sweeper is
        the safety net: it finds the conversation too, in this or another process)."""
        if conversation_id in self._retries or self._stopping:
            return

        def fire() -> None:
            self._retries.pop(conversation_id, None)
            self.schedule(conversation_id)

        self._retries[conversation_id] = asyncio.get_running_loop().call_later(max(0.0, delay), fire)

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop taking work and drain the turns in flight (graceful shutdown)."""
        self._stopping = True
        for handle in self._retries.values():
            handle.cancel()
        self._retries.clear()
        self._waiting.clear()  # still pending in the store: the next start (or another process) takes them
        if self._sweeper:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        if self._active:
            _, pending = await asyncio.wait(list(self._active.values()), timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for task in list(self._typing_tasks):
            task.cancel()
        await asyncio.gather(*self._typing_tasks, return_exceptions=True)
        await self._deadlines.close()

    async def _sweep(self) -> None:
        gauge_at = 0.0
        while True:
            try:
                for conversation_id in await self.store.conversations_with_pending_inbox(limit=200):
                    self.schedule(conversation_id)
                if time.monotonic() >= gauge_at:
                    gauge_at = time.monotonic() + DEAD_LETTER_GAUGE_SECONDS
                    await self.refresh_dead_letters()
            except StoreError as exc:
                log.warning("turn.sweep_failed", error=str(exc))
            await asyncio.sleep(self.sweep_interval)

    async def refresh_dead_letters(self) -> None:
        """Set the dead-letter gauge of /metrics from the store (every process sees them all)."""
        metrics.DEAD_LETTERS_WAITING.set(await self.store.count_dead_letters())

    async def idle(self) -> None:
        """Wait until no turn is in flight (tests and benchmarks)."""
        while self._active or self._waiting:
            if not self._active:  # cannot happen while running; be safe: start the waiting ones
                self.schedule(self._waiting.popitem(last=False)[0])
                continue
            await asyncio.gather(*list(self._active.values()), return_exceptions=True)

    # -- processing ---------------------------------------------------------------------
    async def _drain(self, conversation_id: str) -> None:
        lease = f"turn:{conversation_id}"
        conflicts: dict[int, int] = {}
        holding = False
        try:
            while not self._stopping:
                # One store call per turn: it takes or renews the lease (so a slow turn never
                # outlives it and no other process works on the conversation meanwhile) and
                # reads the next message with everything the turn needs. With nothing left
                # it releases the lease; so does the commit of the last pending message.
                window = self._windows.get(conversation_id)
                state = await self.store.next_turn(
                    conversation_id, lease=lease, owner=self.owner, lease_seconds=self.lease_seconds,
                    history=HISTORY_LIMIT, cached=(window.version, window.last_seq) if window else None,
                )
                if state is None or state.item is None:
                    holding = False
                    if state is not None and state.retry_at is not None:  # the next message backs off
                        self._retry_at(conversation_id, (state.retry_at - self.clock.now()).total_seconds() + 0.01)
                    return  # another process has it (the sweeper retries if it dies), or all done
                holding = True
                step = await self._process(state, window, lease)
                if step is _Step.DONE:
                    holding = False
                    return
                if step is _Step.STOP:
                    return
                if step is _Step.RETRY:
                    self._windows.pop(conversation_id, None)
                    count = conflicts[state.item.id] = conflicts.get(state.item.id, 0) + 1
                    if count >= MAX_CONFLICTS:
                        raise ConcurrencyConflict(f"conversation {conversation_id}: gave up after repeated conflicts")
                    log.info("turn.conflict_retry", conversation=conversation_id, attempt=count)
        finally:
            if holding:
                try:
                    await self.store.release_lease(lease, self.owner)
                except StoreError as exc:
                    log.warning("turn.release_failed", conversation=conversation_id, error=str(exc))

    async def _process(self, state: TurnState, window: _Window | None, lease: str) -> _Step:
        """Run one turn under ``lease``; a failed one is retried later or dead-lettered."""
        assert state.item is not None
        message = state.item.inbound
        bot = self.bots.get(message.bot)
        try:
            if bot is None:
                raise TurnFailed(f"unknown bot {message.bot!r}")
            if state.conversation is None or state.contact is None:
                raise TurnFailed("conversation or contact gone")
            # A typing indicator only when the answer takes long enough for a person to wonder;
            # fast turns would pay one extra platform call per message for nothing.
            typing = asyncio.get_running_loop().call_later(self.typing_delay, self._show_typing, message)
            try:
                return await self._turn(state, window, bot, lease)
            finally:
                typing.cancel()
        except (ConcurrencyConflict, StoreUnavailable):
            raise  # a lost race or an unreachable store says nothing about the message
        except Exception as exc:  # noqa: BLE001 - counted, retried, then dead-lettered
            return await self._failed(state, bot, exc)

    def _show_typing(self, message: Inbound) -> None:
        if self.typing is None or self._stopping:
            return
        task = asyncio.get_running_loop().create_task(self.typing.typing(message))
        self._typing_tasks.add(task)
        task.add_done_callback(self._typing_tasks.discard)
        task.add_done_callback(functools.partial(_typing_done, message))

    def _backoff(self, attempts: int) -> float:
        return float(min(self.config.backoff_max, self.config.backoff_initial * 2 ** (max(1, attempts) - 1)))

    async def _failed(self, state: TurnState, bot: BotRuntime | None, exc: Exception) -> _Step:
        """Count the failed turn; retry it after a backoff, or park the message as a dead letter."""
        item = state.item
        assert item is not None
        attempts = item.attempts + 1
        error = f"{type(exc).__name__}: {exc}"[:500]
        metrics.ERRORS.labels("turns").inc()
        log.error("turn.failed", conversation=item.conversation_id, inbox=item.id, bot=item.inbound.bot,
                  attempt=attempts, of=self.config.max_attempts, exc_info=exc)
        self._windows.pop(item.conversation_id, None)
        if attempts < self.config.max_attempts:
            delay = self._backoff(attempts)
            if await self.store.inbox_retry(item.id, self.clock.now() + timedelta(seconds=delay), error):
                self._retry_at(item.conversation_id, delay + 0.01)
            return _Step.STOP  # the lease is released; later messages wait behind this one
        await self._dead_letter(state, bot, error, attempts)
        return _Step.NEXT  # the conversation moves on to its next message

    async def _dead_letter(self, state: TurnState, bot: BotRuntime | None, error: str, attempts: int) -> None:
        item, conversation = state.item, state.conversation
        assert item is not None
        message = item.inbound
        events: list[Event] = []
        outbound: list[Outbound] = []
        if conversation is not None:
            events.append(Event("error", {"component": "turn", "dead_letter": item.id, "attempts": attempts,
                                          "error": error}, channel=message.channel))
            if bot is not None and item.replays == 0:  # told once, not again after a replay fails
                default = getattr(bot.config, "default_language", "en")
                reply = Reply(text=i18n.for_bot(bot.config).text("unprocessable", conversation.language or default))
                outbound = to_outbound([reply], conversation.id, message, Author())
                events.extend(reply_events([reply], outbound, message.channel))
        if not await self.store.dead_letter(item.id, error, events=events, outbound=outbound):
            return  # no longer pending: another process finished or parked it
        metrics.DEAD_LETTERS.labels(message.bot).inc()
        metrics.DEAD_LETTERS_WAITING.inc()
        log.error("turn.dead_lettered", conversation=item.conversation_id, inbox=item.id, bot=message.bot,
                  attempts=attempts)
        if outbound and self.outbox is not None:
            self.outbox.notify()
        letter = DeadLetter(replace(item, attempts=attempts, not_before=None, last_error=error), message.bot, error,
                            self.clock.now())
        for listener in self.dead_letter_listeners:
            try:
                await listener.dead_lettered(letter, bool(outbound))
            except Exception:
                metrics.ERRORS.labels("dead_letter_listener").inc()
                log.exception("turn.dead_letter_listener_failed", listener=type(listener).__name__)

    @staticmethod
    def _history(state: TurnState, window: _Window | None) -> list[Event]:
        """The last HISTORY_LIMIT events: the cached window plus what was appended since, when
        the store found the window current (same version), else what the store read."""
        if state.since_seq is None or window is None:
            return state.events
        return [*window.events, *state.events][-HISTORY_LIMIT:]

    def _remember_window(self, saved: Conversation, history: list[Event]) -> None:
        # The next turn reads only what was appended after the window (after_seq): a few
        # rows or none instead of sixty.
        self._windows[saved.id] = _Window(saved.version, history)
        self._windows.move_to_end(saved.id)
        if len(self._windows) > WINDOW_CACHE_SIZE:
            self._windows.popitem(last=False)

    async def _turn(self, state: TurnState, window: _Window | None, bot: BotRuntime, lease: str) -> _Step:
        started = time.perf_counter()
        item, conversation, contact = state.item, state.conversation, state.contact
        assert item is not None and conversation is not None and contact is not None
        message = item.inbound
        if self.at_rest is not None:  # the turn sees the original text and sensitive slots, in memory
            message, conversation = self.at_rest.inbound(message), self.at_rest.conversation(conversation)
        history = self._history(state, window)
        ctx = TurnContext(TurnInput(conversation, contact, message, history), bot.engine, bot.config)
        try:
            with self._deadlines.within(self.config.timeout_seconds):
                output = await self._run_hooks(bot, ctx)
        except (ConcurrencyConflict, StoreError):
            raise
        except Exception:
            # A broken action or model must not wedge the conversation: record the
            # message, apologise, and move on (the error is logged and counted).
            metrics.ERRORS.labels("engine").inc()
            log.exception("turn.engine_failed", conversation=conversation.id, bot=message.bot)
            output = self._failure_output(ctx)
        author = Author()
        outbound = to_outbound(output.replies, conversation.id, message, author)
        replies = [r for r in output.replies if r.text or r.buttons or r.attachments]
        events = merge_events(output.events, reply_events(replies, outbound, message.channel))
        events = [e if e.channel else Event(e.type, e.data, message.channel, e.timestamp) for e in events]
        at_rest = output.conversation
        if self.at_rest is not None:  # what is stored: masked texts, sealed sensitive slots
            at_rest, events, outbound = self.at_rest.commit(output.conversation, events, outbound)
        try:
            # One store call: the commit, the first reply claimed for this process's sender,
            # and the lease released if this was the last pending message (unless an
            # after-commit hook still has work, which it does under the lease).
            # The in-commit hooks' writes ride along (in the same unit where the store can).
            after = [hook for hook in bot.after if hook.has_work(ctx, output)]
            commit = await self.store.finish_turn(
                at_rest, inbox_ids=[item.id], events=events, outbound=outbound,
                owner=self.owner, lease_seconds=self.send_lease_seconds,
                claim=self.outbox is not None, release=None if after else lease,
                also=self._ride_along(bot, ctx, output, events),
            )
        except ConcurrencyConflict:
            return _Step.RETRY
        stored = commit.events
        if stored and stored[0].seq == (history[-1].seq if history else 0) + 1:
            # Nothing was appended between the history read and the commit: the window
            # stays current with the turn's own events, and the next turn reads none back.
            history = [*history, *stored][-HISTORY_LIMIT:]
        self._remember_window(commit.conversation, history)
        if self.outbox is not None and commit.claimed:
            self.outbox.submit(commit.claimed, len(outbound) > len(commit.claimed))  # (items, more queued behind)
        elif self.outbox is not None and outbound:
            self.outbox.notify()
        metrics.child(metrics.TURNS, message.bot, "handoff" if output.handoff else "ok").inc()
        metrics.child(metrics.TURN_SECONDS, message.bot).observe(time.perf_counter() - started)
        for hook in after:  # only the hooks that said they have work: most turns await none
            try:
                await hook.committed(ctx, output, events)
            except Exception:
                metrics.ERRORS.labels("after_commit").inc()
                log.exception("turn.after_commit_failed", hook=type(hook).__name__, conversation=conversation.id)
        # Ride-along writes the store could not hold in the commit (MongoDB): last, as an
        # after-commit hook would, so the replies and the desks never wait for them.
        if commit.later:
            await run_after_commit(commit.later, conversation.id)
        return _Step.DONE if commit.released else _Step.NEXT

    @staticmethod
    def _ride_along(bot: BotRuntime, ctx: TurnContext, output: TurnOutput, events: Sequence[Event]) -> list[TurnWrite]:
        """The in-commit hooks' writes for this commit; a hook that fails is logged and counted, the turn goes on."""
        writes = []
        for hook in bot.in_commit:
            try:
                write = hook.write(ctx, output, events)
            except Exception:
                metrics.ERRORS.labels("in_commit").inc()
                log.exception("turn.in_commit_failed", hook=type(hook).__name__, conversation=output.conversation.id)
                continue
            if write is not None:
                writes.append(write)
        return writes

    @staticmethod
    def _failure_output(ctx: TurnContext) -> TurnOutput:
        turn = ctx.turn
        language = turn.conversation.language or getattr(ctx.bot_config, "default_language", "en")
        text = i18n.for_bot(ctx.bot_config).text("error", language)
        user = Event("user", {"text": turn.message.text, "message_id": turn.message.platform_message_id,
                              "parse_data": {"intent": {"name": None, "confidence": 0.0}, "entities": []}})
        return TurnOutput(events=(user, Event("error", {"component": "engine"})), replies=(Reply(text=text),),
                          conversation=turn.conversation)

    @staticmethod
    def _prepared(bot: BotRuntime, ctx: TurnContext) -> TurnInput:
        """The engine's input with the preparers' slot values on the conversation."""
        slots: dict[str, Any] = {}
        for preparer in bot.preparers:
            slots.update(preparer.prepare(ctx))
        turn = ctx.turn
        if not slots or all(turn.conversation.slots.get(k) == v for k, v in slots.items()):
            return turn
        return replace(turn, conversation=turn.conversation.evolve(slots={**turn.conversation.slots, **slots}))

    async def _run_hooks(self, bot: BotRuntime, ctx: TurnContext) -> TurnOutput:
        output: TurnOutput | None = None
        for interceptor in bot.interceptors:
            output = await interceptor.intercept(ctx)
            if output is not None:
                break
        if output is None:
            output = await bot.engine.handle(self._prepared(bot, ctx))
        for post in bot.post:
            output = await post.process(ctx, output)
        return output
