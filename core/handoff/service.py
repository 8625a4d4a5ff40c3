"""The handoff service: agents' actions (`core.desk.DeskActions`) and the desks' side of a handoff.

Every change goes through the store in one atomic `commit_turn` (conversation with its
version check, transcript events, outbound messages), so a racing customer turn or a
second farm process can never half-apply an agent action. Desks are told afterwards;
a failing desk is logged and counted and never blocks the others or the customer.

Transcript vocabulary written here: ``bot`` (agent replies with metadata ``author:
agent``, ``author_name``, ``agent_id``, ``outbound_id``; system notices with ``author:
system``), ``note`` (internal, never sent), ``status`` (claim / back to bot / close),
``handoff`` (re-pings, callback wishes) and ``delivery``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from core import metrics
from core.desk import (
    DeadLetterNotice,
    Desk,
    HandoffSummary,
    event_intent,
    handoff_trigger,
    is_note,
    note_text,
)
from core.errors import ConcurrencyConflict, NotFound, SwitchboardError
from core.handoff import messages
from core.handoff.assist import Assistance, assistance
from core.handoff.config import HandoffConfig
from core.handoff.hours import BusinessHours
from core.handoff.media import attachment_data
from core.i18n import Catalogue, for_bot
from core.model import (
    BOT,
    Attachment,
    Author,
    Button,
    Contact,
    Conversation,
    ConversationStatus,
    Event,
    Outbound,
)
from core.privacy.erasure import record_copy
from core.privacy.masking import Masker
from core.store.base import AuditEntry, DeadLetter, OutboxItem, Store

log = structlog.get_logger(__name__)

HANDED_OFF = (ConversationStatus.WAITING, ConversationStatus.AGENT)
SUMMARY_MESSAGES = 10
CSAT_TTL_SECONDS = 7 * 86400
REPING_LEASE = "handoff:repinger"

Observer = Callable[[Conversation, Sequence[Event]], Awaitable[None]]
"""Hears an agent action's committed conversation and events (e.g. the case analytics); must not raise."""

AgentPolicy = Callable[[str, str], bool]
"""(agent id such as ``web:anna`` or ``slack:U123``, bot) -> may this agent serve this bot?"""


class HandoffError(SwitchboardError):
    """An agent action that cannot be done in the conversation's current state."""


class AgentNotAllowed(HandoffError):
    """The agent is not configured for this bot (tenant isolation) or not an agent at all."""


class BotSettings(Protocol):
    """What the service reads of a bot's config (core.config.BotConfig)."""

    default_language: str
    handoff: HandoffConfig


@dataclass(frozen=True, slots=True)
class HandoffPlan:
    """What a turn decided about a new handoff; the after-commit hook hands it to `opened`."""

    reason: str
    detail: str | None = None
    intent: str | None = None
    sentiment: float | None = None
    open_now: bool = True


@dataclass(frozen=True, slots=True)
class QueueEntry:
    conversation: Conversation
    contact: Contact | None
    reason: str | None
    since: datetime | None
    last_text: str | None


@dataclass(frozen=True, slots=True)
class ConversationView:
    """A conversation as an agent sees it: state, summary and the (masked) transcript."""

    conversation: Conversation
    contact: Contact | None
    summary: HandoffSummary
    transcript: Sequence[Event] = field(default_factory=tuple)


class HandoffService:
    """Implements `core.desk.DeskActions`; also the desks' notifier, re-pinger and delivery listener."""

    def __init__(
        self,
        store: Store,
        bots: Mapping[str, BotSettings],
        *,
        agent_policy: AgentPolicy,
        maskers: Mapping[str, Masker] | None = None,
        on_outbound: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] | None = None,
        owner: str = "handoff",
    ) -> None:
        self.store = store
        self.bots = bots
        self.agent_policy = agent_policy
        self.maskers = dict(maskers or {})
        self.on_outbound = on_outbound
        self.clock = clock or store.clock.now  # re-ping waits and business hours; the store's clock by default
        self.owner = owner
        self.desks: list[Desk] = []
        #: Called with a conversation whose handoff state changed (opened, claimed, relayed,
        #: closed...): the web chat shows the customer's waiting state live. Must not raise.
        self.watchers: list[Callable[[Conversation, str], Awaitable[None]]] = []
        #: Called with each agent action's committed conversation and events (claim, reply, close, back to
        #: the bot, transfer): e.g. the case analytics (`core.analytics`). Must not raise.
        self.observers: list[Observer] = []
        self._hours = {bot: BusinessHours.from_config(cfg.handoff) for bot, cfg in bots.items()}

    # -- configuration ------------------------------------------------------------------
    def add_desk(self, desk: Desk, *, primary: bool = False) -> None:
        """The primary desk's thread id is the one stored on the conversation."""
        if primary:
            self.desks.insert(0, desk)
        else:
            self.desks.append(desk)

    def config(self, bot: str) -> HandoffConfig:
        settings = self.bots.get(bot)
        return settings.handoff if settings is not None else HandoffConfig()

    def hours(self, bot: str) -> BusinessHours:
        if bot not in self._hours:
            self._hours[bot] = BusinessHours.from_config(self.config(bot))
        return self._hours[bot]

    def language(self, conversation: Conversation) -> str:
        settings = self.bots.get(conversation.bot)
        return conversation.language or (settings.default_language if settings else "en")

    def catalogue(self, bot: str) -> Catalogue:
        """The bot's message catalogue: built-in texts under its ``messages`` overrides."""
        return for_bot(self.bots.get(bot))

    def masker(self, bot: str) -> Masker:
        return self.maskers.get(bot) or self.maskers.setdefault(bot, Masker())

    def mask_event(self, bot: str, event: Event) -> Event:
        """The event as desks may see it: text masked, NLU internals dropped."""
        data = {k: v for k, v in event.data.items() if k not in ("parse_data", "input_channel")}
        if isinstance(data.get("text"), str):
            data["text"] = self.masker(bot).mask(data["text"])
        return replace(event, data=data)

    def may_serve(self, agent_id: str, bot: str) -> bool:
        return bool(agent_id) and self.agent_policy(agent_id, bot)

    # -- turn side: called by the hooks after the turn is committed --------------------------
    async def opened(self, conversation_id: str, plan: HandoffPlan) -> Conversation:
        """Tell the desks about a new handoff and store the primary desk's thread id."""
        conversation = await self._get(conversation_id)
        await self.store.kv_set(self._open_key(conversation_id),
                                {"since": self.clock().isoformat(), "pings": 0, "last": None})
        summary = await self.summary(conversation, plan)
        thread: str | None = None
        for desk in self.desks:
            try:
                got = await desk.open_handoff(summary)
            except Exception:
                metrics.ERRORS.labels("desk").inc()
                log.exception("handoff.desk_open_failed", desk=desk.name, conversation=conversation_id)
                continue
            if got and desk.name != "web":  # the web desk shows the store itself; others hold copies
                await record_copy(self.store, conversation_id, desk.name, got)
            thread = thread or got
        metrics.HANDOFFS.labels(conversation.bot, plan.reason).inc()
        log.info("handoff.opened", conversation=conversation_id, reason=plan.reason, thread=thread,
                 open_now=plan.open_now, sticky=summary.previous_agent is not None)
        if thread and thread != conversation.desk_thread:
            conversation = await self._update(conversation_id, lambda c, _: (c.evolve(desk_thread=thread), [], []))
        await self._watch(conversation, "opened")
        return conversation

    async def relay(self, conversation: Conversation, event: Event) -> None:
        """A customer's message while waiting or with an agent: to the desks, masked."""
        masked = self.mask_event(conversation.bot, event)
        for desk in self.desks:
            await self._desk_call(desk, "customer_message", conversation, masked)
        await self._watch(conversation, "relayed")

    async def notify(self, conversation: Conversation, detail: str | None = None) -> None:
        for desk in self.desks:
            await self._desk_call(desk, "status_changed", conversation, detail)
        await self._watch(conversation, "status")

    async def _watch(self, conversation: Conversation, change: str) -> None:
        for watcher in self.watchers:
            try:
                await watcher(conversation, change)
            except Exception:
                metrics.ERRORS.labels("desk").inc()
                log.exception("handoff.watcher_failed", conversation=conversation.id, change=change)

    async def summary(self, conversation: Conversation, plan: HandoffPlan | None = None) -> HandoffSummary:
        """Everything an agent needs; texts masked. Without ``plan``, read from the last handoff event."""
        contact = await self.store.get_contact(conversation.contact_id)
        if contact is None:
            raise NotFound(f"contact of conversation {conversation.id}")
        history = await self.store.transcript(conversation.id, limit=200)
        previous_agent = contact.last_agent
        last, trigger = handoff_trigger(history)
        if last is not None and "previous_agent" in last.data:
            previous_agent = last.data["previous_agent"]  # as it was when this handoff began
        if plan is None:
            data = last.data if last else {}
            plan = HandoffPlan(reason=str(data.get("reason") or conversation.handoff_reason or "unknown"),
                               detail=data.get("detail"), intent=data.get("intent"),
                               sentiment=data.get("sentiment"), open_now=bool(data.get("open", True)))
        messages_ = [self._summary_event(conversation.bot, e) for e in history if _is_message(e)]
        identity = contact.reply_identity()
        back_at = (last.data.get("back_at") if last else None) or None
        return HandoffSummary(
            conversation=conversation,
            contact=contact,
            channel=identity.channel if identity else (history[-1].channel or "") if history else "",
            reason=plan.reason if not plan.detail else f"{plan.reason}: {plan.detail}",
            intent=(event_intent(trigger) if trigger else None) or plan.intent,
            trigger_text=self.masker(conversation.bot).mask(str(trigger.data.get("text") or ""))
            if trigger else None,
            topic=plan.intent,
            since=last.timestamp if last else None,
            open_now=plan.open_now,
            back_at=datetime.fromisoformat(back_at) if isinstance(back_at, str) else None,
            slots={k: self.masker(conversation.bot).mask_value(v) for k, v in conversation.slots.items()},
            sentiment=plan.sentiment,
            last_messages=tuple(messages_[-SUMMARY_MESSAGES:]),
            previous_agent=previous_agent,
        )

    def _summary_event(self, bot: str, event: Event) -> Event:
        masked = self.mask_event(bot, event)
        meta = event.data.get("metadata") or {}
        if event.type == "bot" and meta.get("author") == "agent":
            return Event("agent", {"text": masked.data.get("text"), "agent_name": meta.get("author_name"),
                                   "agent_id": meta.get("agent_id")}, event.channel, event.timestamp, event.seq)
        return masked

    # -- DeskActions ------------------------------------------------------------------------
    async def claim(self, conversation_id: str, agent_id: str, agent_name: str) -> Conversation:
        conversation = await self._allowed(conversation_id, agent_id)
        if conversation.status is ConversationStatus.AGENT and conversation.assigned_agent == agent_id:
            return conversation

        def change(c: Conversation, contact: Contact) -> tuple[Conversation, list[Event], list[Outbound]]:
            if c.status is ConversationStatus.AGENT and c.assigned_agent not in (None, agent_id):
                raise HandoffError("another agent has already claimed this conversation")
            events = [self._status_event(c, ConversationStatus.AGENT, "claim", agent_id, agent_name)]
            said = self._say(c, contact, messages.text("claimed", self.language(c), self.catalogue(c.bot),
                                                       agent=agent_name),
                             author=Author("system"))
            return (c.evolve(status=ConversationStatus.AGENT, assigned_agent=agent_id),
                    [*events, *said[0]], said[1])

        saved = await self._update(conversation_id, change)
        await self._remember_agent(saved.contact_id, agent_id)
        await self.store.kv_delete(self._open_key(conversation_id))
        log.info("handoff.claimed", conversation=conversation_id, agent=agent_id)
        await self._audit(agent_id, "claim", saved)
        await self.notify(saved, f"claimed by {agent_name}")
        return saved

    async def agent_reply(self, conversation_id: str, agent_id: str, agent_name: str, text: str, *,
                          attachments: Sequence[Attachment] = ()) -> None:
        """``attachments``: the agent's files (`core.files.FileStore.put`), sent with the text as caption."""
        if is_note(text):  # the note rule (core.desk.NOTE_PREFIX), whichever desk or button sent it
            await self.internal_note(conversation_id, agent_id, agent_name, note_text(text), attachments=attachments)
            return
        text = text.strip()
        if not text and not attachments:
            raise HandoffError("the reply is empty")
        conversation = await self._allowed(conversation_id, agent_id)
        if conversation.status not in HANDED_OFF:
            raise HandoffError("the conversation is with the bot; claim it first")
        if conversation.status is ConversationStatus.WAITING:
            conversation = await self.claim(conversation_id, agent_id, agent_name)

        def change(c: Conversation, contact: Contact) -> tuple[Conversation, list[Event], list[Outbound]]:
            if c.status is not ConversationStatus.AGENT or c.assigned_agent != agent_id:
                raise HandoffError("this conversation is assigned to another agent")
            events, outbound = self._say(c, contact, text, author=Author("agent", agent_name, agent_id),
                                         attachments=attachments)
            if not outbound:
                raise HandoffError("the customer has no channel to answer on")
            return c, events, outbound

        saved = await self._update(conversation_id, change)
        log.info("handoff.agent_reply", conversation=conversation_id, agent=agent_id)
        await self._audit(agent_id, "reply", saved)
        await self._activity(saved)

    async def internal_note(self, conversation_id: str, agent_id: str, agent_name: str, text: str, *,
                            attachments: Sequence[Attachment] = ()) -> None:
        text = note_text(text)
        if not text and not attachments:
            raise HandoffError("the note is empty")
        conversation = await self._allowed(conversation_id, agent_id)
        note = Event("note", {"text": text, "agent_id": agent_id, "agent_name": agent_name,
                              **({"attachments": [attachment_data(a) for a in attachments]} if attachments else {})})
        await self.store.append_events(conversation_id, [note])
        log.info("handoff.note", conversation=conversation_id, agent=agent_id)
        await self._audit(agent_id, "note", conversation)
        await self._activity(conversation)

    async def back_to_bot(self, conversation_id: str, agent_id: str, agent_name: str) -> Conversation:
        await self._allowed(conversation_id, agent_id)

        def change(c: Conversation, contact: Contact) -> tuple[Conversation, list[Event], list[Outbound]]:
            if c.status not in HANDED_OFF:
                raise HandoffError("the conversation is already with the bot")
            said = self._say(c, contact, messages.text("agent_back_to_bot", self.language(c),
                                                       self.catalogue(c.bot), agent=agent_name),
                             author=Author("system"))
            events = [self._status_event(c, ConversationStatus.BOT, "back_to_bot", agent_id, agent_name)]
            return c.evolve(status=ConversationStatus.BOT, assigned_agent=None), [*events, *said[0]], said[1]

        saved = await self._update(conversation_id, change)
        await self.store.kv_delete(self._open_key(conversation_id))
        log.info("handoff.back_to_bot", conversation=conversation_id, agent=agent_id)
        await self._audit(agent_id, "back_to_bot", saved)
        await self.notify(saved, f"handed back to the bot by {agent_name}")
        return saved

    async def transfer(self, conversation_id: str, agent_id: str, agent_name: str, *, to_agent: str | None,
                       to_name: str | None = None, note: str = "") -> Conversation:
        """Hand a conversation to another agent (``to_agent``), or back to the queue (None), with a note.

        Only the assigned agent may transfer a claimed conversation; the new agent must be allowed
        to serve the bot. The customer is told who answers now (a transfer to the queue says nothing:
        they are still waiting for a person). The note, if any, is an internal note.
        """
        conversation = await self._allowed(conversation_id, agent_id)
        if to_agent is not None and not self.may_serve(to_agent, conversation.bot):
            raise AgentNotAllowed(f"agent {to_agent} may not serve bot {conversation.bot}")
        target = ConversationStatus.AGENT if to_agent else ConversationStatus.WAITING
        action = "transfer" if to_agent else "transfer_to_queue"

        def change(c: Conversation, contact: Contact) -> tuple[Conversation, list[Event], list[Outbound]]:
            if c.status not in HANDED_OFF:
                raise HandoffError("the conversation is not handed off")
            if c.status is ConversationStatus.AGENT and c.assigned_agent not in (None, agent_id):
                raise HandoffError("only the assigned agent can transfer this conversation")
            if to_agent is not None and to_agent == c.assigned_agent:
                raise HandoffError("the conversation is already assigned to that agent")
            status = self._status_event(c, target, action, agent_id, agent_name)
            events = [replace(status, data={**status.data, "to_agent": to_agent, "to_name": to_name})]
            if note_text(note):
                events.append(Event("note", {"text": note_text(note), "agent_id": agent_id, "agent_name": agent_name,
                                             "transfer": True}))
            said: tuple[list[Event], list[Outbound]] = ([], [])
            if to_agent is not None:
                said = self._say(c, contact, messages.text("claimed", self.language(c), agent=to_name or "—"),
                                 author=Author("system"))
            return c.evolve(status=target, assigned_agent=to_agent), [*events, *said[0]], said[1]

        saved = await self._update(conversation_id, change)
        if to_agent is None:
            await self.store.kv_set(self._open_key(conversation_id),
                                    {"since": self.clock().isoformat(), "pings": 0, "last": None})
        else:
            await self._remember_agent(saved.contact_id, to_agent)
            await self.store.kv_delete(self._open_key(conversation_id))
        log.info("handoff.transferred", conversation=conversation_id, agent=agent_id, to=to_agent or "queue")
        await self._audit(agent_id, action, saved)
        await self.notify(saved, f"transferred to {to_name or to_agent} by {agent_name}" if to_agent
                          else f"put back in the queue by {agent_name}")
        return saved

    async def close(self, conversation_id: str, agent_id: str, agent_name: str) -> Conversation:
        await self._allowed(conversation_id, agent_id)
        csat = self.config((await self._get(conversation_id)).bot).csat

        def change(c: Conversation, contact: Contact) -> tuple[Conversation, list[Event], list[Outbound]]:
            if c.status not in HANDED_OFF:
                raise HandoffError("the conversation is not handed off")
            language = self.language(c)
            events = [self._status_event(c, ConversationStatus.CLOSED, "close", agent_id, agent_name)]
            outbound: list[Outbound] = []
            for words, buttons, author in (
                (messages.text("closed", language, self.catalogue(c.bot), agent=agent_name), (), Author("system")),
                *(((messages.text("csat_question", language, self.catalogue(c.bot)), messages.csat_buttons(), BOT),)
                  if csat else ()),
            ):
                said = self._say(c, contact, words, buttons=buttons, author=author)
                events += said[0]
                outbound += said[1]
            return c.evolve(status=ConversationStatus.CLOSED, assigned_agent=None), events, outbound

        if csat:  # before the question can reach the customer
            await self.store.kv_set(self.csat_key(conversation_id),
                                    {"agent_id": agent_id, "agent_name": agent_name}, ttl_seconds=CSAT_TTL_SECONDS)
        try:
            saved = await self._update(conversation_id, change)
        except SwitchboardError:
            if csat:
                await self.store.kv_delete(self.csat_key(conversation_id))
            raise
        await self.store.kv_delete(self._open_key(conversation_id))
        log.info("handoff.closed", conversation=conversation_id, agent=agent_id)
        await self._audit(agent_id, "close", saved)
        await self.notify(saved, f"closed by {agent_name}")
        return saved

    # -- CSAT -------------------------------------------------------------------------------
    @staticmethod
    def csat_key(conversation_id: str) -> str:
        return f"handoff:csat:{conversation_id}"

    async def csat_pending(self, conversation_id: str) -> dict[str, Any] | None:
        value = await self.store.kv_get(self.csat_key(conversation_id))
        return value if isinstance(value, dict) else None

    async def csat_done(self, conversation: Conversation, score: int | None) -> None:
        """The customer answered (or moved on): forget the question, show the rating in the thread."""
        await self.store.kv_delete(self.csat_key(conversation.id))
        if score is not None:
            log.info("handoff.csat", conversation=conversation.id, score=score)
            await self.notify(conversation, f"customer rating (CSAT): {score}/5")

    # -- re-ping ----------------------------------------------------------------------------
    @staticmethod
    def _open_key(conversation_id: str) -> str:
        return f"handoff:open:{conversation_id}"

    async def reping_due(self) -> int:
        """Re-ping every unclaimed handoff waiting longer than its bot's ``repings_after_seconds``.

        Only during business hours (the wait counts from the opening); the first re-ping
        also offers the customer a call back or an e-mail. Returns how many were re-pinged.
        """
        now = self.clock()
        count = 0
        for bot in self.bots:
            config = self.config(bot)
            hours = self.hours(bot)
            if config.repings_after_seconds <= 0 or not hours.is_open(now):
                continue
            for conversation in await self.store.list_conversations(bot, [ConversationStatus.WAITING], limit=500):
                if await self._reping_one(conversation, config, hours, now):
                    count += 1
        return count

    async def _reping_one(self, conversation: Conversation, config: HandoffConfig, hours: BusinessHours,
                          now: datetime) -> bool:
        key = self._open_key(conversation.id)
        info = await self.store.kv_get(key)
        if not isinstance(info, dict):
            return False
        since = datetime.fromisoformat(info["since"])
        reference = datetime.fromisoformat(info["last"]) if info.get("last") else since
        opening = hours.next_opening(reference)
        if opening is not None and opening > reference:
            reference = opening
        if now - reference < timedelta(seconds=config.repings_after_seconds):
            return False
        pings = int(info.get("pings", 0)) + 1
        if not await self.store.remember(f"handoff:reping:{conversation.id}:{pings}", 86400):
            return False  # another process did it
        await self.store.kv_set(key, {**info, "pings": pings, "last": now.isoformat()})
        waited_seconds = max(0, round((now - since).total_seconds()))
        waited = f"{waited_seconds // 60} min" if waited_seconds >= 60 else f"{waited_seconds} s"
        events = [Event("handoff", {"action": "reping", "count": pings, "waited_seconds": waited_seconds})]
        outbound: list[Outbound] = []
        if pings == 1:
            contact = await self.store.get_contact(conversation.contact_id)
            if contact is not None:
                language = self.language(conversation)
                said = self._say(conversation, contact,
                                 messages.text("still_waiting", language, self.catalogue(conversation.bot)),
                                 buttons=messages.waiting_buttons(language, self.catalogue(conversation.bot)))
                events += said[0]
                outbound += said[1]
        await self.store.append_events(conversation.id, events, outbound)
        if outbound:
            self.on_outbound()
        log.info("handoff.repinged", conversation=conversation.id, count=pings)
        detail = f"still unclaimed after {waited} (re-ping {pings})"
        for desk in self.desks:
            method = "reping" if callable(getattr(desk, "reping", None)) else "status_changed"
            await self._desk_call(desk, method, conversation, detail)
        return True

    # -- DeliveryListener --------------------------------------------------------------------
    async def delivery_failed(self, item: OutboxItem, error: str) -> None:
        conversation = await self.store.get_conversation(item.outbound.conversation_id)
        if conversation is None or not self._agent_facing(conversation, item):
            return
        await self.notify(conversation, f"a message could not be delivered on {item.outbound.channel}: "
                                        f"{error[:200]}")

    async def dead_lettered(self, letter: DeadLetter, customer_told: bool) -> None:
        """A customer message failed for good: every desk that shows dead letters is told."""
        message = letter.item.inbound
        notice = DeadLetterNotice(
            id=letter.item.id, bot=letter.bot, conversation_id=letter.item.conversation_id, channel=message.channel,
            text=self.masker(letter.bot).mask(message.text or message.button_payload or "")[:500],
            error=letter.error, attempts=letter.item.attempts,
            customer_told=customer_told,
        )
        for desk in self.desks:
            if callable(getattr(desk, "dead_letter", None)):
                posted = await self._desk_call(desk, "dead_letter", notice)
                if isinstance(posted, str) and desk.name != "web":  # a copy of the text, erased with the rest
                    await record_copy(self.store, letter.item.conversation_id, desk.name, posted)

    async def service_window_closed(self, item: OutboxItem) -> None:
        conversation = await self.store.get_conversation(item.outbound.conversation_id)
        if conversation is None:
            return
        await self.store.append_events(conversation.id, [Event("delivery", {
            "status": "template", "outbound_id": item.outbound.id, "reason": "service_window_closed",
        }, channel=item.outbound.channel)])
        if self._agent_facing(conversation, item):
            await self.notify(conversation, "the customer's 24-hour WhatsApp window is closed: a template "
                                            "message was sent instead of your text. Free text reaches them "
                                            "again once they write back.")

    @staticmethod
    def _agent_facing(conversation: Conversation, item: OutboxItem) -> bool:
        return bool(conversation.desk_thread) and (
            conversation.status in HANDED_OFF or item.outbound.author.is_agent)

    # -- reading, for the web desk -------------------------------------------------------------
    async def queue(self, bots: Collection[str] | None = None) -> list[QueueEntry]:
        """Waiting and assigned conversations of ``bots`` (None = all), oldest wait first."""
        entries: list[QueueEntry] = []
        for bot in self.bots if bots is None else [b for b in self.bots if b in bots]:
            for conversation in await self.store.list_conversations(bot, list(HANDED_OFF), limit=500):
                contact = await self.store.get_contact(conversation.contact_id)
                info = await self.store.kv_get(self._open_key(conversation.id))
                tail = await self.store.transcript(conversation.id, limit=20)
                last_user = next((e for e in reversed(tail) if e.type == "user" and e.data.get("text")), None)
                since = datetime.fromisoformat(info["since"]) if isinstance(info, dict) else conversation.updated_at
                entries.append(QueueEntry(
                    conversation, contact, conversation.handoff_reason, since,
                    self.masker(bot).mask(str(last_user.data["text"])) if last_user else None,
                ))
        entries.sort(key=lambda e: (e.conversation.status is ConversationStatus.AGENT, e.since or self.clock()))
        return entries

    async def view(self, conversation_id: str) -> ConversationView:
        conversation = await self._get(conversation_id)
        contact = await self.store.get_contact(conversation.contact_id)
        events = await self.store.transcript(conversation_id, limit=500)
        shown = [self.mask_event(conversation.bot, e) for e in events
                 if e.type in ("user", "bot", "note", "status", "handoff", "csat", "delivery")]
        return ConversationView(conversation, contact, await self.summary(conversation), shown)

    async def reachable(self, bot: str) -> bool:
        """Can any desk bring this bot's handoff to a person now? A desk without a ``reachable``
        signal counts as reachable; the web desk asks for an online agent only with
        ``handoff.require_agent_online``; a desk whose check fails counts as unreachable."""
        presence = self.config(bot).require_agent_online
        for desk in self.desks:
            check = getattr(desk, "reachable", None)
            if not callable(check):
                return True
            try:
                if await check(bot, presence=presence):
                    return True
            except Exception:
                metrics.ERRORS.labels("desk").inc()
                log.exception("handoff.reachable_failed", desk=desk.name, bot=bot)
        return False

    async def assistance(self, conversation_id: str) -> Assistance:
        """The bot's help for the agent: suggested replies, a one-line summary, previous cases."""
        conversation = await self._get(conversation_id)
        return await assistance(self.store, await self.summary(conversation), mask=self.masker(conversation.bot).mask)

    async def viewed(self, conversation: Conversation, agent_id: str) -> None:
        """An agent opened the transcript: recorded in the audit log (who saw what, when)."""
        await self._audit(agent_id, "view", conversation)

    async def _audit(self, agent_id: str, action: str, conversation: Conversation) -> None:
        await self.store.audit(AuditEntry(actor=agent_id, action=action, target=conversation.id,
                                          detail={"contact": conversation.contact_id}, bot=conversation.bot))

    # -- helpers -----------------------------------------------------------------------------
    async def _get(self, conversation_id: str) -> Conversation:
        conversation = await self.store.get_conversation(conversation_id)
        if conversation is None:
            raise NotFound(f"conversation {conversation_id} not found")
        return conversation

    async def _allowed(self, conversation_id: str, agent_id: str) -> Conversation:
        conversation = await self._get(conversation_id)
        if not self.may_serve(agent_id, conversation.bot):
            log.warning("handoff.agent_refused", conversation=conversation_id, agent=agent_id, bot=conversation.bot)
            raise AgentNotAllowed(f"agent {agent_id} may not serve bot {conversation.bot}")
        return conversation

    async def _update(
        self,
        conversation_id: str,
        change: Callable[[Conversation, Contact], tuple[Conversation, list[Event], list[Outbound]]],
    ) -> Conversation:
        """Read, change and commit atomically; retried when a turn or another process got there first."""
        for _attempt in range(8):
            conversation = await self._get(conversation_id)
            contact = await self.store.get_contact(conversation.contact_id)
            if contact is None:
                raise NotFound(f"contact of conversation {conversation_id}")
            new, events, outbound = change(conversation, contact)
            try:
                saved = await self.store.commit_turn(new, events=events, outbound=outbound)
            except ConcurrencyConflict:
                await asyncio.sleep(0.01)
                continue
            if outbound:
                self.on_outbound()
            for observer in self.observers:
                try:
                    await observer(saved, events)
                except Exception:
                    metrics.ERRORS.labels("handoff_observer").inc()
                    log.exception("handoff.observer_failed", conversation=conversation_id)
            return saved
        raise ConcurrencyConflict(f"conversation {conversation_id}: gave up after repeated conflicts")

    async def _remember_agent(self, contact_id: str, agent_id: str) -> None:
        contact = await self.store.get_contact(contact_id)
        if contact is not None and contact.last_agent != agent_id:
            await self.store.save_contact(replace(contact, last_agent=agent_id))

    def _say(self, conversation: Conversation, contact: Contact, text: str, *,
             buttons: Sequence[Button] = (), author: Author = BOT,
             attachments: Sequence[Attachment] = ()) -> tuple[list[Event], list[Outbound]]:
        """A message to the customer on the channel they used last, with its ``bot`` transcript event."""
        identity = contact.reply_identity()
        if identity is None:
            log.warning("handoff.no_channel", conversation=conversation.id)
            return [], []
        out = Outbound(conversation_id=conversation.id, bot=conversation.bot, channel=identity.channel,
                       chat_id=identity.chat_id, text=text, buttons=tuple(buttons), author=author,
                       attachments=tuple(attachments))
        metadata: dict[str, Any] = {"outbound_id": out.id, "author": author.kind}
        if author.name:
            metadata["author_name"] = author.name
        if author.agent_id:
            metadata["agent_id"] = author.agent_id
        event = Event("bot", {"text": text, "data": {"buttons": [{"title": b.title, "payload": b.payload}
                                                               for b in buttons]},
                              "metadata": metadata}, channel=identity.channel)
        if attachments:
            event.data["attachments"] = [attachment_data(a) for a in attachments]
        return [event], [out]

    @staticmethod
    def _status_event(conversation: Conversation, status: ConversationStatus, action: str,
                      agent_id: str | None, agent_name: str | None) -> Event:
        return Event("status", {"status": status.value, "previous": conversation.status.value, "action": action,
                                "agent_id": agent_id, "agent_name": agent_name})

    async def _activity(self, conversation: Conversation) -> None:
        """Desks that show the whole transcript live (the web desk) hear about replies and notes."""
        for desk in self.desks:
            if callable(getattr(desk, "transcript_changed", None)):
                await self._desk_call(desk, "transcript_changed", conversation)

    async def _desk_call(self, desk: Desk, method: str, *args: Any) -> Any:
        try:
            return await getattr(desk, method)(*args)
        except Exception:
            metrics.ERRORS.labels("desk").inc()
            log.exception("handoff.desk_call_failed", desk=desk.name, method=method)
            return None


def _is_message(event: Event) -> bool:
    return event.type in ("user", "bot") and bool(event.data.get("text"))
