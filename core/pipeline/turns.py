"""Conversation turns: each conversation's messages processed one at a time, in order, once.

Within a process one task drains a conversation's inbox; across processes a
store lease (``turn:<conversation>``) gives one process the conversation at a
time, and ``commit_turn``'s version check makes a lost lease harmless (the
commit fails, nothing is written, the other process redoes the turn). A sweeper
picks up conversations left pending by a crash or by another process.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from core import metrics
from core.engine import Engine, Reply, TurnInput, TurnOutput
from core.errors import ConcurrencyConflict, StoreError
from core.model import Author, Conversation, Event, Inbound, Outbound
from core.pipeline.hooks import AfterCommit, Interceptor, PostProcessor, TurnContext
from core.store.base import InboxItem, Store

log = structlog.get_logger(__name__)

# The engine sees a window of the transcript: enough for story memoisation (Rasa's
# max_history counts turns), fallback streaks and repeated questions; slots and the
# active form come from the conversation record. Loading more costs time per turn.
HISTORY_LIMIT = 60
WINDOW_CACHE_SIZE = 10_000


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
    post: list[PostProcessor] = field(default_factory=list)
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


class TurnRunner:
    def __init__(
        self,
        store: Store,
        bots: Mapping[str, BotRuntime],
        *,
        owner: str,
        on_outbound: Callable[[], None] = lambda: None,
        on_typing: Callable[[Inbound], None] = lambda m: None,
        lease_seconds: float = 30.0,
        sweep_interval: float = 2.0,
        typing_delay: float = 0.4,
    ) -> None:
        self.store = store
        self.bots = bots
        self.owner = owner
        self.on_outbound = on_outbound
        self.on_typing = on_typing
        self.lease_seconds = lease_seconds
        self.sweep_interval = sweep_interval
        self.typing_delay = typing_delay
        self._active: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._stopping = False
        self._windows: OrderedDict[str, _Window] = OrderedDict()

    # -- scheduling ---------------------------------------------------------------------
    def schedule(self, conversation_id: str) -> None:
        """Make sure the conversation's pending messages get processed soon."""
        if self._stopping:
            return
        if conversation_id in self._active:
            self._again.add(conversation_id)
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

    async def start(self) -> None:
        self._stopping = False
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop taking work and drain the turns in flight (graceful shutdown)."""
        self._stopping = True
        if self._sweeper:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        if self._active:
            _, pending = await asyncio.wait(list(self._active.values()), timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _sweep(self) -> None:
        while True:
            try:
                for conversation_id in await self.store.conversations_with_pending_inbox(limit=200):
                    self.schedule(conversation_id)
            except StoreError as exc:
                log.warning("turn.sweep_failed", error=str(exc))
            await asyncio.sleep(self.sweep_interval)

    async def idle(self) -> None:
        """Wait until no turn is in flight (tests and benchmarks)."""
        while self._active:
            await asyncio.gather(*list(self._active.values()), return_exceptions=True)

    # -- processing ---------------------------------------------------------------------
    async def _drain(self, conversation_id: str) -> None:
        lease = f"turn:{conversation_id}"
        if not await self.store.acquire_lease(lease, self.owner, self.lease_seconds):
            return  # another process has it; the sweeper retries if it dies
        try:
            fresh = True  # the lease was just taken; every later turn renews it first
            while not self._stopping:
                items = await self.store.pending_inbox(conversation_id, limit=20)
                if not items:
                    break
                for item in items:
                    if self._stopping:
                        return
                    # Renew before every turn, so a slow batch never outlives the lease and
                    # another process never works on the same conversation at the same time.
                    if not fresh and not await self.store.acquire_lease(lease, self.owner, self.lease_seconds):
                        return
                    fresh = False
                    await self._process(item)
        finally:
            try:
                await self.store.release_lease(lease, self.owner)
            except StoreError as exc:
                log.warning("turn.release_failed", conversation=conversation_id, error=str(exc))

    async def _process(self, item: InboxItem) -> None:
        started = time.perf_counter()
        message = item.inbound
        bot = self.bots.get(message.bot)
        if bot is None:
            log.error("turn.unknown_bot", bot=message.bot)
            return
        # A typing indicator only when the answer takes long enough for a person to wonder;
        # fast turns would pay one extra platform call per message for nothing.
        typing = asyncio.get_running_loop().call_later(self.typing_delay, self.on_typing, message)
        try:
            await self._turn(item, bot, started)
        finally:
            typing.cancel()

    async def _history(self, conversation: Conversation) -> list[Event]:
        """The last HISTORY_LIMIT events; from memory plus what was appended since, when this
        process committed the conversation's last turn (same version), else from the store."""
        window = self._windows.get(conversation.id)
        if window is None or window.version != conversation.version:
            return await self.store.transcript(conversation.id, limit=HISTORY_LIMIT)
        newer = await self.store.transcript(conversation.id, after_seq=window.last_seq)
        return [*window.events, *newer][-HISTORY_LIMIT:]

    def _remember_window(self, saved: Conversation, history: list[Event]) -> None:
        # The turn's own events get their seq from the store; the next turn reads them
        # (and anything appended meanwhile) with after_seq, a few rows instead of sixty.
        self._windows[saved.id] = _Window(saved.version, history)
        self._windows.move_to_end(saved.id)
        if len(self._windows) > WINDOW_CACHE_SIZE:
            self._windows.popitem(last=False)

    async def _turn(self, item: InboxItem, bot: BotRuntime, started: float) -> None:
        message = item.inbound
        for attempt in range(5):
            conversation = await self.store.get_conversation(item.conversation_id)
            if conversation is None:
                log.warning("turn.conversation_gone", conversation=item.conversation_id)
                return
            contact = await self.store.get_contact(conversation.contact_id)
            if contact is None:
                return
            history = await self._history(conversation)
            ctx = TurnContext(TurnInput(conversation, contact, message, history), bot.engine, bot.config)
            try:
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
            try:
                saved = await self.store.commit_turn(
                    output.conversation, inbox_ids=[item.id], events=events, outbound=outbound
                )
            except ConcurrencyConflict:
                self._windows.pop(conversation.id, None)
                pending = await self.store.pending_inbox(conversation.id, limit=50)
                if all(p.id != item.id for p in pending):
                    log.info("turn.already_processed", conversation=conversation.id)
                    return  # another process committed this message meanwhile
                log.info("turn.conflict_retry", conversation=conversation.id, attempt=attempt)
                continue
            self._remember_window(saved, history)
            if outbound:
                self.on_outbound()
            metrics.TURNS.labels(message.bot, "handoff" if output.handoff else "ok").inc()
            metrics.TURN_SECONDS.labels(message.bot).observe(time.perf_counter() - started)
            for hook in bot.after:
                try:
                    await hook.committed(ctx, output, events)
                except Exception:
                    metrics.ERRORS.labels("after_commit").inc()
                    log.exception("turn.after_commit_failed", hook=type(hook).__name__, conversation=conversation.id)
            return
        raise ConcurrencyConflict(f"conversation {item.conversation_id}: gave up after repeated conflicts")

    @staticmethod
    def _failure_output(ctx: TurnContext) -> TurnOutput:
        turn = ctx.turn
        german = (turn.conversation.language or getattr(ctx.bot_config, "default_language", "en")) == "de"
        text = (
            "Entschuldigung, da ist etwas schiefgelaufen. Schreiben Sie \"Mensch\", um mit einer Person zu sprechen."
            if german
            else "Sorry, something went wrong on our side. Type \"human\" to talk to a person."
        )
        user = Event("user", {"text": turn.message.text, "message_id": turn.message.platform_message_id,
                              "parse_data": {"intent": {"name": None, "confidence": 0.0}, "entities": []}})
        return TurnOutput(events=(user, Event("error", {"component": "engine"})), replies=(Reply(text=text),),
                          conversation=turn.conversation)

    async def _run_hooks(self, bot: BotRuntime, ctx: TurnContext) -> TurnOutput:
        output: TurnOutput | None = None
        for interceptor in bot.interceptors:
            output = await interceptor.intercept(ctx)
            if output is not None:
                break
        if output is None:
            output = await bot.engine.handle(ctx.turn)
        for post in bot.post:
            output = await post.process(ctx, output)
        return output
