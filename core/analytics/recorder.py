"""`CaseRecorder`: turns what the farm commits into case updates (`core.store.ports.analytics`).

It reads the committed transcript events, never the text: a customer turn (an in-commit
hook), an agent action (a `HandoffService` observer) and a dead letter (a dead-letter
listener) each become one `CaseUpdate`. A turn's update rides along with the turn's commit
(`AnalyticsStore.turn_write`: inside the turn's unit of work on SQLite, right after it on
MongoDB) and is written only if the turn is; the others are recorded after the commit they
describe. A failure to record is logged and counted and never touches the conversation.

What counts (``docs/kpis.md``): every turn is one customer message; ``bot`` events written
by the bot (not system notices) are bot messages, those with ``author: agent`` agent
messages; a fallback turn is one the NLU fell back on or where the core fallback ran
(`core.handoff.hooks.is_fallback_turn`); a frustration peak is a customer message whose
frustration score reached the bot's ``handoff.frustration_threshold``; the first ``handoff``
event of a case gives its reason and intent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import structlog

from core import metrics
from core.engine import TurnOutput
from core.handoff.hooks import is_fallback_turn
from core.handoff.mood import SIGNAL_KEY
from core.model import Conversation, Event, utcnow
from core.pipeline.hooks import TurnContext
from core.store.base import DeadLetter
from core.store.ports.analytics import AnalyticsStore, CaseUpdate
from core.store.records import TurnWrite

log = structlog.get_logger(__name__)

DEFAULT_EXPIRY_SECONDS = 3600.0  # Rasa's default session expiry (60 minutes)
# Intents that say nothing about what a case is about; the case's topic is its first other intent.
NOT_A_TOPIC = frozenset({
    "greet", "goodbye", "affirm", "deny", "thankyou", "thanks", "bot_challenge", "nlu_fallback", "human_handoff",
    "csat", "back_to_bot", "out_of_scope", "chitchat", "mood_great", "mood_unhappy",
})
_AGENT_DONE = frozenset({"close", "back_to_bot"})


def session_expiry_seconds(engine: Any) -> float:
    """The bot's session expiry (its domain's ``session_config``), in seconds."""
    minutes = getattr(getattr(engine, "domain", None), "session_expiration_minutes", None)
    return float(minutes) * 60.0 if isinstance(minutes, int | float) else DEFAULT_EXPIRY_SECONDS


def _intent(event: Event) -> str | None:
    name = ((event.data.get("parse_data") or {}).get("intent") or {}).get("name")
    return str(name) if name else None


def _author(event: Event) -> str | None:
    meta = event.data.get("metadata")
    return str(meta.get("author") or "bot") if isinstance(meta, dict) else "bot"


def turn_update(bot: str, conversation: Conversation, channel: str, events: Sequence[Event], *, at: datetime,
                expiry_seconds: float, frustration_peak: bool) -> CaseUpdate:
    """The case update of one committed customer turn (pure: events in, figures out)."""
    rating: Event | None = None
    handoff: Event | None = None
    topic: str | None = None
    back = False
    bot_messages = 0
    for e in events:  # one pass (this runs for every turn)
        kind = e.type
        if kind == "bot":
            bot_messages += _author(e) == "bot"
        elif kind == "user":
            if topic is None and (i := _intent(e)) and i not in NOT_A_TOPIC:
                topic = i
        elif kind == "status":
            back = back or (e.data.get("status") == "bot" and e.data.get("previous") in ("waiting", "agent"))
        elif kind == "csat":
            rating = e if rating is None else rating
        elif kind == "handoff" and handoff is None and e.data.get("reason"):
            handoff = e
    reason = str(handoff.data["reason"]) if handoff is not None else None
    handoff_intent = None
    if handoff is not None:
        handoff_intent = handoff.data.get("detail") if reason == "intent" else handoff.data.get("intent")
    return CaseUpdate(
        bot=bot, conversation_id=conversation.id, at=at, opens=rating is None, expiry_seconds=expiry_seconds,
        channel=channel, language=conversation.language, intent=topic, customer_messages=1,
        bot_messages=bot_messages,
        fallbacks=1 if is_fallback_turn(events) else 0,
        frustration_peaks=1 if frustration_peak or reason == "frustration" else 0,
        handoff_reason=reason, handoff_intent=str(handoff_intent) if handoff_intent else None,
        agent_done=back, csat=int(rating.data["score"]) if rating is not None else None,
    )


def agent_update(conversation: Conversation, events: Sequence[Event], *, at: datetime) -> CaseUpdate | None:
    """The case update of one committed agent action (claim, reply, close, back to the bot, transfer)."""
    statuses = [e for e in events if e.type == "status"]
    claim = next((e for e in statuses if e.data.get("status") == "agent"), None)
    claimed_by = (claim.data.get("to_agent") or claim.data.get("agent_id")) if claim is not None else None
    replies = sum(1 for e in events if e.type == "bot" and _author(e) == "agent")
    done = any(e.data.get("action") in _AGENT_DONE for e in statuses)
    closed = any(e.data.get("action") == "close" for e in statuses)
    if not (claimed_by or replies or done):
        return None
    return CaseUpdate(bot=conversation.bot, conversation_id=conversation.id, at=at,
                      claimed_by=str(claimed_by) if claimed_by else None, agent_replied=replies > 0,
                      agent_messages=replies, agent_done=done, closed=closed)


def _actor(events: Sequence[Event]) -> str | None:
    for event in events:
        agent = event.data.get("agent_id") or (event.data.get("metadata") or {}).get("agent_id")
        if agent:
            return str(agent)
    return None


class CaseRecorder:
    """Records cases: an `InCommit` hook for turns, a handoff observer, a dead-letter listener.

    ``expiry``: each bot's session expiry in seconds (a bot missing there: read from its engine's
    domain on its first turn, `DEFAULT_EXPIRY_SECONDS` until then); ``thresholds``: each bot's
    frustration threshold (``handoff.frustration_threshold``).
    """

    def __init__(self, store: AnalyticsStore, expiry: Mapping[str, float], thresholds: Mapping[str, float], *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.expiry = dict(expiry)
        self.thresholds = dict(thresholds)
        self.clock = clock

    async def _record(self, update: CaseUpdate) -> None:
        try:
            await self.store.record_case(update)
        except Exception:
            metrics.ERRORS.labels("analytics").inc()
            log.exception("analytics.record_failed", bot=update.bot, conversation=update.conversation_id)

    # -- InCommit ---------------------------------------------------------------------
    def write(self, ctx: TurnContext, output: TurnOutput, events: Sequence[Event]) -> TurnWrite:
        """The turn's case update, as a write that rides along with the turn's commit."""
        message = ctx.turn.message
        if message.bot not in self.expiry:  # learnt from the bot's engine (its domain) on its first turn
            self.expiry[message.bot] = session_expiry_seconds(ctx.engine)
        signal = ctx.state.get(SIGNAL_KEY)
        threshold = self.thresholds.get(message.bot)
        exceeds = getattr(signal, "exceeds", None)
        peak = bool(threshold is not None and callable(exceeds) and exceeds(threshold))
        return self.store.turn_write(turn_update(
            message.bot, output.conversation, message.channel, events, at=self.clock(),
            expiry_seconds=self.expiry.get(message.bot, DEFAULT_EXPIRY_SECONDS), frustration_peak=peak,
        ))

    # -- HandoffService observer ------------------------------------------------------
    async def agent_action(self, conversation: Conversation, events: Sequence[Event]) -> None:
        at = self.clock()
        update = agent_update(conversation, events, at=at)
        if update is not None:
            await self._record(update)
        agent = _actor(events)
        if agent is not None:
            try:
                await self.store.agent_seen(conversation.bot, agent, at)
            except Exception:
                metrics.ERRORS.labels("analytics").inc()
                log.exception("analytics.agent_seen_failed", bot=conversation.bot)

    # -- DeadLetterListener -----------------------------------------------------------
    async def dead_lettered(self, letter: DeadLetter, customer_told: bool) -> None:
        message = letter.item.inbound
        await self._record(CaseUpdate(
            bot=letter.bot, conversation_id=letter.item.conversation_id, at=self.clock(), opens=True,
            expiry_seconds=self.expiry.get(letter.bot, DEFAULT_EXPIRY_SECONDS), channel=message.channel,
            customer_messages=1, bot_messages=1 if customer_told else 0, dead_letters=1,
        ))
