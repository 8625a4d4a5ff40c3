"""The handoff's turn hooks: decide when a person takes over, and keep the bot quiet meanwhile.

- `HandoffInterceptor` (first interceptor, so it works from any state, mid-form too):
  an explicit request for a person (request words in any form, or a handoff button)
  hands off at once; a question about what answers ("Bist du ein Mensch?") gets the
  honest answer without a handoff (the bot's own ``bot_challenge`` answer when its NLU
  knows the question, else its ``utter_iamabot`` response, else a built-in text); while
  waiting / with an agent, customer messages are relayed to
  the desk and the bot says nothing, except for the customer's own commands ("bot",
  "zurück zum Bot", "/restart", asking to delete their data); after a Close it takes
  the CSAT answer.
- `HandoffPostProcessor`: after the engine, hands off for the engine's own request
  (``TurnOutput.handoff``: requested / fallback / action), "always human" intents,
  repeated fallbacks and frustration. Each trigger is the recorded reason. A repeated
  question is looked for only in the ongoing issue (`issue_texts`); button presses are
  not scored.
- `HandoffAfterCommit`: once the turn is durable, tells the desks (open / relay /
  status / CSAT) through the `HandoffService`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import structlog

from core.engine import Reply, TurnOutput, Understanding
from core.handoff import messages
from core.handoff.assist import prepare_suggestions
from core.handoff.frustration import HISTORY_WINDOW
from core.handoff.messages import (
    BACK_TO_BOT_PAYLOAD,
    CALLBACK_PAYLOAD,
    CSAT_PAYLOAD,
    EMAIL_PAYLOAD,
    KEEP_WAITING_PAYLOAD,
)
from core.handoff.service import HANDED_OFF, HandoffPlan, HandoffService
from core.handoff.triggers import asks_for_human, asks_what_i_am, frustration_score
from core.language.turn import catalogue, remember, turn_language, with_language_event
from core.model import ConversationStatus, Event
from core.pipeline.hooks import TurnContext

log = structlog.get_logger(__name__)

STATE = "handoff"
HANDOFF_PAYLOADS = ("/human_handoff", "/handoff", "/human", "/agent")
FALLBACK_INTENT = "nlu_fallback"
ERASURE_INTENTS = frozenset({"forget_me", "forget_contact", "delete_data", "delete_my_data", "erase_data",
                             "request_deletion"})
_ERASURE = re.compile(
    r"\b(l(ö|oe)sch\w*|entfern\w*)\b.{0,40}\b(meine|alle)?\s*daten\b|\bdaten\b.{0,30}\bl(ö|oe)sch"
    r"|\b(delete|erase|remove|forget)\b.{0,20}\b(my|all)\b.{0,10}\b(data|account|information)\b"
    r"|\bforget me\b|\bvergiss(t|en sie)? mich\b|^/forget$",
    re.IGNORECASE,
)
_BACK_TO_BOT = re.compile(
    r"^(/?bot|(zur(ü|ue)ck )?zum bot|(ich will |i want to go )?(go )?back to (the )?bot|wieder (zum )?bot)"
    r"( bitte| please)?$",
    re.IGNORECASE,
)
_RESTART = re.compile(r"^(/restart|/neustart|restart|neustart|neu starten)$", re.IGNORECASE)
IDENTITY_INTENT = "bot_challenge"  # Rasa's name for "are you a bot?"
IDENTITY_RESPONSE = "utter_iamabot"
_CSAT_TEXT = re.compile(r"^\s*([1-5])\s*(/\s*5)?\s*(sterne?|stars?|points?|punkte?)?\s*[.!]?\s*$", re.IGNORECASE)


def _plain(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[!?.,;:„“\"'()]+", " ", text)).strip().lower()


def is_back_to_bot(text: str, payload: str | None) -> bool:
    return payload == BACK_TO_BOT_PAYLOAD or bool(_BACK_TO_BOT.match(_plain(text))) and len(text) < 60


def is_restart(text: str, payload: str | None) -> bool:
    return (payload or "").startswith("/restart") or bool(_RESTART.match(text.strip()))


def csat_score(text: str, payload: str | None) -> int | None:
    """The 1-5 rating in a CSAT button payload (``/csat{"score":4}``) or a typed digit."""
    if payload and payload.startswith(CSAT_PAYLOAD):
        try:
            value = json.loads(payload[len(CSAT_PAYLOAD):] or "{}").get("score")
        except (ValueError, AttributeError):
            return None
        return value if isinstance(value, int) and 1 <= value <= 5 else None
    match = _CSAT_TEXT.match(text or "")
    return int(match.group(1)) if match and not payload else None


def _user_event(ctx: TurnContext, intent: str | None, confidence: float = 1.0,
                understanding: Understanding | None = None) -> Event:
    message = ctx.turn.message
    data: dict[str, Any] = {
        "text": message.text,
        "message_id": message.platform_message_id,
        "input_channel": message.channel,
        "parse_data": {"text": message.text, "intent": {"name": intent, "confidence": confidence},
                       "entities": list(understanding.entities) if understanding else []},
    }
    if message.button_payload:
        data["payload"] = message.button_payload
    if message.attachments:
        data["attachments"] = [{"kind": a.kind, "name": a.name, "mime_type": a.mime_type, "url": a.url,
                                "file_id": a.file_id, "size": a.size} for a in message.attachments]
    return Event("user", data, channel=message.channel)


def _understand(ctx: TurnContext) -> Understanding | None:
    text = ctx.turn.message.text
    if not text:
        return None
    try:
        return ctx.engine.understand(text)
    except Exception:  # NLU is a nicety for relayed messages; never lose the message over it
        log.exception("handoff.understand_failed", conversation=ctx.turn.conversation.id)
        return None


def _latest_intent(events: Sequence[Event], skip: frozenset[str]) -> str | None:
    """The customer's last topic: the newest user intent that is not a handoff/fallback."""
    for event in reversed(events):
        if event.type != "user":
            continue
        name = ((event.data.get("parse_data") or {}).get("intent") or {}).get("name")
        if name and name not in skip:
            return str(name)
    return None


_NOT_A_TOPIC = frozenset({"human_handoff", FALLBACK_INTENT})


def _topic(ctx: TurnContext, output: TurnOutput) -> str | None:
    """The customer's topic for a handoff (read only when one is planned: most turns plan none)."""
    return _latest_intent(output.events, _NOT_A_TOPIC) or _latest_intent(ctx.turn.history, _NOT_A_TOPIC)


# Events that end one issue: a handoff, any status change (closed, back to bot), a rating, a restart.
ISSUE_BOUNDARIES = frozenset({"handoff", "status", "csat", "restart"})
_SESSION_START = "action_session_start"


def _is_button_press(event: Event) -> bool:
    return bool(event.data.get("payload")) or str(event.data.get("text") or "").startswith("/")


def issue_texts(events: Sequence[Event], limit: int) -> list[str]:
    """The customer's last ``limit`` typed messages of the ongoing issue, oldest first.

    The issue starts after the newest handoff, status change, rating or restart, and with
    the session (the user event a ``session_started`` follows opens the new session);
    button presses are not typed messages. Polite closings end an issue too; the scorer
    cuts there (`core.handoff.frustration`).
    """
    texts: list[str] = []
    session_started = False
    for event in reversed(events):
        if event.type in ISSUE_BOUNDARIES:
            break
        if event.type == "session_started":
            session_started = True
        elif event.type == "user":
            if event.data.get("text") and not _is_button_press(event):
                texts.append(str(event.data["text"]))
            if session_started or len(texts) == limit:
                break
        elif session_started and not (event.type == "action" and event.data.get("name") == _SESSION_START):
            break  # the session started before this user event: it belongs to the old one
    return texts[::-1]


def _turns(events: Sequence[Event]) -> list[list[Event]]:
    """Events grouped per user turn (a user event and what followed it)."""
    turns: list[list[Event]] = []
    for event in events:
        if event.type == "user":
            turns.append([event])
        elif turns:
            turns[-1].append(event)
    return turns


def is_fallback_turn(events: Sequence[Event]) -> bool:
    """The customer was not understood: the NLU fell back, or the core fallback ran.

    ``action_two_stage_fallback`` also runs to close its loop when the customer rephrased
    successfully; such a turn was understood and does not count.
    """
    for event in events:
        if event.type == "action" and event.data.get("name") == "action_default_fallback":
            return True
        if event.type == "user":
            intent = ((event.data.get("parse_data") or {}).get("intent") or {}).get("name")
            if intent == FALLBACK_INTENT:
                return True
    return False


def fallback_streak(history: Sequence[Event], current: Sequence[Event]) -> int:
    """Consecutive fallback turns ending with this one (a handoff or status change resets it)."""
    if not is_fallback_turn(current):
        return 0
    streak = 1
    for turn in reversed(_turns(history)):
        if any(e.type in ("status", "handoff") for e in turn) or not is_fallback_turn(turn):
            break
        streak += 1
    return streak


class HandoffInterceptor:
    """Runs first: explicit requests for a person, the quiet relay while handed off, CSAT answers."""

    def __init__(self, service: HandoffService) -> None:
        self.service = service

    async def intercept(self, ctx: TurnContext) -> TurnOutput | None:
        conversation = ctx.turn.conversation
        message = ctx.turn.message
        text = (message.text or "").strip()
        payload = message.button_payload
        if conversation.status in HANDED_OFF:
            return await self._handed_off(ctx, text, payload)
        # The rating question follows a close, and the status stays closed until the next
        # handoff, so other conversations need no look-up.
        pending = await self.service.csat_pending(conversation.id) if conversation.status is ConversationStatus.CLOSED else None
        if pending is not None:
            score = csat_score(text, payload)
            if score is not None:
                return self._csat(ctx, score, pending)
            ctx.state[STATE] = {"action": "csat_skipped"}
        config = self.service.config(conversation.bot)
        if (payload or "").split("{")[0] in HANDOFF_PAYLOADS or (
                not payload and asks_for_human(text, config.request_words)):
            user = _user_event(ctx, "human_handoff")
            plan = HandoffPlan(reason="requested", intent=_latest_intent(
                ctx.turn.history, frozenset({"human_handoff", FALLBACK_INTENT})))
            return await self.service_handoff(
                ctx, TurnOutput(events=(user,), replies=(), conversation=remember(ctx, conversation)), plan)
        if not payload and asks_what_i_am(text):
            return self._identity(ctx, config.request_words)
        return None

    def _identity(self, ctx: TurnContext, request_words: Sequence[str]) -> TurnOutput | None:
        """The honest answer to "are you a bot?": the bot's own if its NLU knows the question."""
        understanding = _understand(ctx)
        if understanding is not None and understanding.intent == IDENTITY_INTENT:
            return None  # the bot answers it itself (its rules, its wording, forms carry on)
        conversation = remember(ctx, ctx.turn.conversation)
        language = turn_language(ctx)
        replies: list[Reply] = []
        try:
            replies = ctx.engine.render(IDENTITY_RESPONSE, conversation.evolve(language=language),
                                        ctx.turn.message.channel)
        except Exception:  # a bot without that response: the built-in text says the same
            log.exception("handoff.identity_render_failed", conversation=conversation.id)
        if not replies:
            texts = catalogue(ctx)
            words = [w.strip() for w in request_words if w.strip()]
            preferred = texts.raw("handoff_word", language)
            word = preferred if preferred.lower() in (w.lower() for w in words) else (words[0] if words else preferred)
            replies = [Reply(text=texts.text("identity_answer", language, word=word))]
        ctx.state.setdefault(STATE, {"action": "identity"})  # a skipped rating stays recorded
        log.info("handoff.identity_question", conversation=conversation.id,
                 nlu_intent=understanding.intent if understanding else None)
        return TurnOutput(
            events=with_language_event(ctx, (_user_event(ctx, IDENTITY_INTENT, 1.0, understanding),
                                             Event("action", {"name": "action_listen"}))),
            replies=tuple(replies), conversation=conversation,  # the intent is bot_challenge, whatever NLU said
        )

    async def service_handoff(self, ctx: TurnContext, output: TurnOutput, plan: HandoffPlan) -> TurnOutput:
        return await _checked(self.service, ctx, handoff_output(self.service, ctx, output, plan))

    async def _handed_off(self, ctx: TurnContext, text: str, payload: str | None) -> TurnOutput | None:
        conversation = remember(ctx, ctx.turn.conversation)  # a customer who switches language is followed
        language = turn_language(ctx)
        texts = catalogue(ctx)
        if is_back_to_bot(text, payload):
            user = _user_event(ctx, "back_to_bot")
            status = _status_event(conversation.status, ConversationStatus.BOT, "customer_back_to_bot")
            ctx.state[STATE] = {"action": "status", "detail": "the customer went back to the bot"}
            return TurnOutput(
                events=(user, status, Event("action", {"name": "action_listen"})),
                replies=(Reply(text=messages.text("customer_back_to_bot", language, texts)),),
                conversation=conversation.evolve(status=ConversationStatus.BOT, assigned_agent=None),
            )
        if is_restart(text, payload):
            ctx.state[STATE] = {"action": "release", "detail": "the customer restarted the conversation"}
            return None
        understanding = _understand(ctx)
        if _ERASURE.search(text) or (understanding is not None and understanding.intent in ERASURE_INTENTS):
            ctx.state[STATE] = {"action": "release", "detail": "the customer asked to delete their data"}
            return None
        if payload in (CALLBACK_PAYLOAD, EMAIL_PAYLOAD, KEEP_WAITING_PAYLOAD):
            wish = {CALLBACK_PAYLOAD: "callback", EMAIL_PAYLOAD: "email", KEEP_WAITING_PAYLOAD: "wait"}[payload]
            ctx.state[STATE] = {"action": "status", "detail": {
                "callback": "the customer asks for a call back",
                "email": "the customer asks for an answer by e-mail",
                "wait": "the customer keeps waiting"}[wish]}
            return TurnOutput(
                events=(_user_event(ctx, f"handoff_{wish}"), Event("handoff", {"action": "customer_wish",
                                                                               "wish": wish})),
                replies=(Reply(text=messages.text(f"{wish}_ack" if wish != "wait" else "wait_ack", language, texts)),),
                conversation=conversation,
            )
        user = _user_event(ctx, understanding.intent if understanding else None,
                           understanding.confidence if understanding else 0.0, understanding)
        ctx.state[STATE] = {"action": "relay", "event": user}
        return TurnOutput(events=with_language_event(ctx, (user,)), replies=(), conversation=conversation,
                          understanding=understanding)

    def _csat(self, ctx: TurnContext, score: int, pending: dict[str, Any]) -> TurnOutput:
        conversation = remember(ctx, ctx.turn.conversation)
        ctx.state[STATE] = {"action": "csat", "score": score}
        return TurnOutput(
            events=(_user_event(ctx, "csat"),
                    Event("csat", {"score": score, "scale": 5, "agent_id": pending.get("agent_id"),
                                   "agent_name": pending.get("agent_name")}),
                    Event("action", {"name": "action_listen"})),
            replies=(Reply(text=messages.text("csat_thanks", turn_language(ctx), catalogue(ctx))),),
            conversation=conversation,
        )


def _status_event(previous: ConversationStatus, status: ConversationStatus, action: str) -> Event:
    return Event("status", {"status": status.value, "previous": previous.value, "action": action,
                            "agent_id": None, "agent_name": None})


async def _checked(service: HandoffService, ctx: TurnContext, output: TurnOutput) -> TurnOutput:
    """Marks a handoff that no desk can bring to a person now (``unreachable``), for
    `core.handoff.no_desk.NoDeskPostProcessor` to answer honestly; out of hours the notice
    already says when someone will answer."""
    state = ctx.state.get(STATE) or {}
    plan = state.get("plan")
    if state.get("action") == "open" and isinstance(plan, HandoffPlan) and plan.open_now \
            and service.desks and not await service.reachable(output.conversation.bot):
        state["unreachable"] = True
        log.warning("handoff.desks_unreachable", conversation=output.conversation.id)
    return output


def handoff_output(service: HandoffService, ctx: TurnContext, output: TurnOutput, plan: HandoffPlan) -> TurnOutput:
    """``output`` turned into a handoff: the honest message instead of the bot's replies, status waiting.

    A form in progress is ended (its slots stay for the agent); the plan goes to the
    after-commit hook, which opens the desk thread.
    """
    conversation = output.conversation
    bot = conversation.bot
    config = service.config(bot)
    now = service.clock()
    hours = service.hours(bot)
    open_now = hours.is_open(now)
    plan = replace(plan, open_now=open_now)
    language = turn_language(ctx)  # the language of this turn, as the engine chose it (or would have)
    notice = messages.handoff_text(language, minutes=max(1, config.expected_wait_minutes),
                                   opening=hours.next_opening(now), now=now, open_now=open_now,
                                   catalogue=catalogue(ctx))
    opening = hours.next_opening(now)
    extra: list[Event] = []
    if conversation.active_form or ctx.turn.conversation.active_form:
        extra.append(Event("active_loop", {"name": None}))
    extra.append(Event("handoff", {
        "reason": plan.reason, "detail": plan.detail, "intent": plan.intent, "sentiment": plan.sentiment,
        "open": open_now, "back_at": None if open_now or opening is None else opening.isoformat(),
        "previous_agent": ctx.turn.contact.last_agent,
    }))
    extra.append(_status_event(ctx.turn.conversation.status, ConversationStatus.WAITING, "handoff"))
    events = [e for e in output.events if e.type != "bot"]
    if events and events[-1].type == "action" and events[-1].data.get("name") == "action_listen":
        events = [*events[:-1], *extra, events[-1]]
    else:
        events = [*events, *extra, Event("action", {"name": "action_listen"})]
    ctx.state[STATE] = {"action": "open", "plan": plan}
    log.info("handoff.triggered", conversation=conversation.id, reason=plan.reason, open_now=open_now)
    return replace(
        output,
        events=with_language_event(ctx, tuple(events)),
        replies=(Reply(text=notice),),
        conversation=remember(ctx, conversation).evolve(status=ConversationStatus.WAITING, assigned_agent=None,
                                                        active_form=None, handoff_reason=plan.reason),
    )


class HandoffPostProcessor:
    """After the engine: its own handoff request, always-human intents, fallbacks, frustration."""

    def __init__(self, service: HandoffService) -> None:
        self.service = service

    async def process(self, ctx: TurnContext, output: TurnOutput) -> TurnOutput:
        state = ctx.state.get(STATE) or {}
        if state.get("action") in ("open", "relay", "status", "csat", "identity"):
            return output
        conversation = ctx.turn.conversation
        if state.get("action") == "release":
            if output.conversation.status in HANDED_OFF:
                status = _status_event(output.conversation.status, ConversationStatus.BOT, "customer_command")
                output = replace(output, events=(*output.events, status),
                                 conversation=output.conversation.evolve(status=ConversationStatus.BOT,
                                                                         assigned_agent=None))
            return output
        if conversation.status in HANDED_OFF:
            return output
        plan = self._trigger(ctx, output)
        if plan is None:
            return output
        return await _checked(self.service, ctx, handoff_output(self.service, ctx, output, plan))

    def _trigger(self, ctx: TurnContext, output: TurnOutput) -> HandoffPlan | None:
        config = self.service.config(ctx.turn.conversation.bot)
        understanding = output.understanding
        intent = understanding.intent if understanding else _latest_intent(output.events, frozenset())
        message = ctx.turn.message
        text = "" if message.button_payload else message.text or ""  # a button's title is our own text
        new_session = any(e.type == "session_started" for e in output.events)
        if "frustration_signal" in ctx.state and not new_session:  # scored before the engine (MoodPreparer)
            signal = ctx.state["frustration_signal"]
        else:
            signal = frustration_score(text, self._earlier_in_issue(ctx, output)) if text else None
        sentiment = -round(signal.score, 2) if signal is not None else None
        if output.handoff is not None:
            return HandoffPlan(reason=output.handoff.reason, detail=output.handoff.detail, intent=_topic(ctx, output),
                               sentiment=sentiment)
        if intent and intent in config.always_human_intents:
            return HandoffPlan(reason="intent", detail=intent, intent=intent, sentiment=sentiment)
        limit = config.fallbacks_before_handoff
        if limit > 0 and fallback_streak(ctx.turn.history, output.events) >= limit:
            return HandoffPlan(reason="fallback", detail=f"{limit} fallbacks in a row", intent=_topic(ctx, output),
                               sentiment=sentiment)
        if signal is not None and signal.exceeds(config.frustration_threshold):
            return HandoffPlan(reason="frustration", detail=", ".join(signal.reasons) or None, intent=_topic(ctx, output),
                               sentiment=sentiment)
        return None

    @staticmethod
    def _earlier_in_issue(ctx: TurnContext, output: TurnOutput) -> list[str]:
        """What the customer wrote before in this issue (none if this message opened a new session)."""
        if any(e.type == "session_started" for e in output.events):
            return []
        return issue_texts(ctx.turn.history, HISTORY_WINDOW)


class HandoffAfterCommit:
    """Tells the desks once the turn is durable (a desk never hears of a turn that was rolled back)."""

    ACTIONS = frozenset({"open", "relay", "status", "release", "csat", "csat_skipped"})  # those `committed` handles

    def __init__(self, service: HandoffService) -> None:
        self.service = service

    def has_work(self, ctx: TurnContext, output: TurnOutput) -> bool:
        return (ctx.state.get(STATE) or {}).get("action") in self.ACTIONS

    async def committed(self, ctx: TurnContext, output: TurnOutput, events: Sequence[Event]) -> None:
        state = ctx.state.get(STATE) or {}
        action = state.get("action")
        conversation = output.conversation
        message = ctx.turn.message
        if action in ("open", "relay") and message.text and not message.button_payload:
            # Before the desks hear of it: the Slack thread shows the suggestions with the message.
            await prepare_suggestions(self.service.store, ctx.engine, conversation, message.channel, message.text,
                                      output.understanding)
        if action == "open":
            await self.service.opened(conversation.id, state["plan"])
        elif action == "relay":
            relayed = next((e for e in events if e.type == "user"), state["event"])
            await self.service.relay(conversation, relayed)
        elif action in ("status", "release"):
            await self.service.notify(await self._fresh(conversation.id, conversation), state.get("detail"))
        elif action == "csat":
            await self.service.csat_done(conversation, int(state["score"]))
        elif action == "csat_skipped":
            await self.service.csat_done(conversation, None)

    async def _fresh(self, conversation_id: str, fallback: Any) -> Any:
        return await self.service.store.get_conversation(conversation_id) or fallback
