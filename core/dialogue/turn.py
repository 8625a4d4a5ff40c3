"""One conversation turn: predict the next action, run it, log Rasa events, until listen.

`Turn` is created per message by `RasaEngine.handle`; it holds the state being
changed and what the turn produced (events, replies, handoff, meta).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from core.dialogue.actions import ActionRejected, ActionRunner
from core.dialogue.ensemble import PolicyEnsemble
from core.dialogue.forms import ask_action, next_missing, trigger_values
from core.dialogue.responses import render_response, reply_from_message
from core.dialogue.state import LISTEN, TWO_STAGE, DialogueState
from core.engine import HandoffRequest, Reply
from core.errors import DialogueError
from core.model import Event
from core.rasa.domain import REQUESTED_SLOT, Domain

log = structlog.get_logger(__name__)

MAX_ACTIONS_PER_TURN = 10
OFFER_HUMAN = "utter_offer_human"
BUILTIN_PREFIX = "action_switchboard_"
# Switchboard's own built-ins; the un-namespaced names still work when the project has no such action.
HANDOFF_ACTIONS = ("action_switchboard_handoff", "action_handoff")
FORGET_ACTIONS = ("action_switchboard_forget_contact", "action_forget_contact")
AFFIRM_INTENTS = {"affirm"}
DEFAULT_TEXTS = {
    "utter_default": {"de": "Entschuldigung, das habe ich nicht verstanden.", "en": "Sorry, I didn't get that."},
    "utter_ask_rephrase": {"de": "Können Sie das bitte anders formulieren?", "en": "Could you rephrase that, please?"},
}


@dataclass(slots=True)
class Policies:
    ensemble: PolicyEnsemble
    handoff_intents: tuple[str, ...] = ("human_handoff",)


@dataclass(slots=True)
class Turn:
    domain: Domain
    domain_dict: dict[str, Any]
    policies: Policies
    runner: ActionRunner | None
    state: DialogueState
    sender_id: str
    channel: str
    language: str
    timestamp: datetime
    rng: random.Random
    events: list[Event] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    handoff: HandoffRequest | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    turn_slots: dict[str, Any] = field(default_factory=dict)  # slots set since the user message
    stop: bool = False
    confidence: float = 1.0
    hide_rule_turn: bool = False
    loop_rejected: bool = False  # unused: the state carries rejection; core/dialogue/testing.py's old fallback still sets it

    # ---- logging --------------------------------------------------------------------------

    def log(self, kind: str, data: dict[str, Any] | None = None) -> Event:
        event = Event(kind, data or {}, channel=self.channel, timestamp=self.timestamp)
        self.events.append(event)
        self.state.apply(event)
        if kind == "slot":
            self.turn_slots[event.data["name"]] = event.data.get("value")
        return event

    def log_action(self, name: str, policy: str | None = None, confidence: float | None = None) -> None:
        data = {"name": name, "policy": policy, "confidence": self.confidence if confidence is None else confidence}
        if self.hide_rule_turn and confidence is None:
            data["hide_rule_turn"] = True
        self.log("action", data)

    def set_slot(self, name: str, value: Any) -> None:
        self.log("slot", {"name": name, "value": value})

    def utter(self, response: str, variables: dict[str, Any] | None = None) -> bool:
        slots = {**self.state.slots, "language": self.language}
        rendered = render_response(self.domain.responses, response, slots, self.channel, self.rng, variables)
        if rendered is None:
            text = DEFAULT_TEXTS.get(response, {}).get(self.language) or DEFAULT_TEXTS.get(response, {}).get("en")
            if not text:
                return False
            rendered = reply_from_message({"text": text}, response, {})
        reply, data = rendered
        self.replies.append(reply)
        self.log("bot", data)
        return True

    def request_handoff(self, reason: str, detail: str | None = None) -> None:
        if self.handoff is None:
            self.handoff = HandoffRequest(reason=reason, detail=detail)
            log.info("dialogue.handoff", reason=reason)

    # ---- prediction -----------------------------------------------------------------------

    def predict(self) -> tuple[str, str]:
        """(action, policy name): a pending follow-up action, else the ensemble's choice."""
        if self.state.followup:
            return self.state.followup, "followup"
        prediction = self.policies.ensemble.predict(self.state)
        if prediction.loop_interrupted and self.state.active_loop and prediction.action == self.state.active_loop:
            self.log("loop_interrupted", {"is_interrupted": True})
        self.confidence = prediction.confidence
        self.hide_rule_turn = prediction.hide_rule_turn
        return prediction.action, prediction.policy

    async def run(self) -> None:
        for _ in range(MAX_ACTIONS_PER_TURN):
            action, policy = self.predict()
            if action == LISTEN or self.stop:
                break
            await self.run_action(action, policy)
            if self.stop:
                break
        else:
            log.warning("dialogue.too_many_actions", limit=MAX_ACTIONS_PER_TURN)
        self.log_action(LISTEN, "default")

    # ---- actions --------------------------------------------------------------------------

    def is_custom(self, name: str) -> bool:
        """A project's own action wins over a built-in of the same name (Rasa's default actions included)."""
        if self.runner is None or name in self.domain.forms:
            return False
        knows = self.runner.knows(name)
        if knows is not None:
            return knows
        return name in self.domain.actions and not name.startswith(BUILTIN_PREFIX)

    async def run_action(self, name: str, policy: str) -> None:
        domain = self.domain
        if name in domain.forms:
            await self.run_form(name, policy)
        elif name in domain.responses and not domain.is_custom_action(name):
            self.log_action(name, policy)
            self.utter(name)
        elif self.is_custom(name):
            await self.run_custom(name, policy)
        elif name == TWO_STAGE:
            self.run_two_stage(policy)
        elif name == "action_restart":
            self.log_action(name, policy)
            self.utter("utter_restart")
            self.log("restart")
            self.stop = True
        elif name == "action_session_start":
            await self.begin_session(policy)
            self.stop = True  # as Rasa, nothing is predicted after a session start
        elif name == "action_default_fallback":
            self.log_action(name, policy)
            self.utter("utter_default")
            self.log("rewind")
            if self.state.fallback_streak >= 2:
                self.request_handoff("fallback", "no understanding twice in a row")
            self.stop = True
        elif name == "action_deactivate_loop":
            self.log_action(name, policy)
            self.log("active_loop", {"name": None})
            if REQUESTED_SLOT in domain.slots:
                self.set_slot(REQUESTED_SLOT, None)
        elif name in ("action_default_ask_rephrase",):
            self.log_action(name, policy)
            self.utter("utter_ask_rephrase")
        elif name in HANDOFF_ACTIONS:
            self.log_action(name, policy)
            if self.state.active_loop:
                self.log("active_loop", {"name": None})
            self.request_handoff("requested")
        elif name in FORGET_ACTIONS:
            self.log_action(name, policy)
            self.meta["system_action"] = "forget_contact"
        elif name in ("action_unlikely_intent", "action_back", "action_revert_fallback_events",
                      "action_default_ask_affirmation", "action_extract_slots"):
            self.log_action(name, policy)
        else:
            await self.run_custom(name, policy)

    async def begin_session(self, policy: str = "default") -> None:
        """A new session: the project's own ``action_session_start`` if it has one, else Rasa's default."""
        if not self.is_custom("action_session_start"):
            self.start_session(policy)
            return
        try:
            events, responses = await self.call("action_session_start")
        except (ActionRejected, DialogueError) as exc:
            log.error("dialogue.session_start_failed", error=str(exc))
            self.start_session(policy)
            return
        self.log_action("action_session_start", policy)
        self.emit_responses(responses)
        # our transcript holds the user message before the session start, so no listen follows it
        self.apply_action_events([e for e in events if not (e.get("event") == "action" and e.get("name") == LISTEN)])

    def start_session(self, policy: str = "default") -> None:
        carried = {}
        if self.domain.carry_over_slots:
            carried = {k: v for k, v in self.state.slots.items()
                       if k != REQUESTED_SLOT and k in self.domain.slots and v != self.domain.slots[k].initial_value}
        self.log_action("action_session_start", policy)
        self.log("session_started")
        for name, value in carried.items():
            self.set_slot(name, value)

    async def call(self, name: str, extra_events: list[dict[str, Any]] | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        if self.runner is None:
            raise DialogueError(f"custom action '{name}' needs an actions package or an action server")
        tracker = self.state.tracker_dict(self.sender_id, extra_events or [])
        result = await self.runner.run(name, tracker, self.domain_dict)
        return result.events, result.responses

    def emit_responses(self, responses: list[dict[str, Any]]) -> None:
        for message in responses:
            variables = {k: v for k, v in message.items() if k not in ("text", "buttons", "image", "custom", "attachment", "elements", "quick_replies", "response", "template", "json_message")}
            template = message.get("response") or message.get("template")
            if template:
                self.utter(str(template), variables)
                continue
            reply, data = reply_from_message(message, None, {**self.state.slots, **variables})
            self.replies.append(reply)
            self.log("bot", data)

    def apply_action_events(self, events: list[dict[str, Any]]) -> None:
        for raw in events:
            kind = raw.get("event")
            data = {k: v for k, v in raw.items() if k not in ("event", "timestamp")}
            if kind == "handoff":
                self.request_handoff("action", str(raw.get("reason") or "") or None)
            elif kind == "bot":
                message = {"text": raw.get("text"), **(raw.get("data") or {})}
                reply, bot_data = reply_from_message(message, None, {})
                self.replies.append(reply)
                self.log("bot", bot_data)
            elif kind in ("slot", "active_loop", "form", "followup", "restart", "reset_slots", "rewind", "undo", "action",
                          "session_started", "reminder", "cancel_reminder", "pause", "resume", "export",
                          "loop_interrupted", "entities"):
                self.log("active_loop" if kind == "form" else kind, data)
            elif kind == "user":
                log.warning("dialogue.action_user_event_ignored")
            else:
                log.warning("dialogue.unknown_action_event", event=kind)

    async def run_custom(self, name: str, policy: str) -> None:
        try:
            events, responses = await self.call(name)
        except ActionRejected:
            self.log("action_execution_rejected", {"name": name, "policy": policy})
            self.stop = True
            return
        except DialogueError as exc:
            log.error("dialogue.action_failed", action=name, error=str(exc))
            self.stop = True
            return
        self.log_action(name, policy)
        self.emit_responses(responses)
        self.apply_action_events(events)

    async def run_form(self, name: str, policy: str) -> None:
        form = self.domain.forms[name]
        state = self.state
        activating = state.active_loop != name
        # Rasa validates only right after the user spoke, and not when returning from an unhappy path
        force_ask = not activating and (state.latest_action != LISTEN or state.loop_interrupted)
        candidates: dict[str, Any] = {}
        if activating:
            candidates.update(trigger_values(self.domain, form, state.latest_intent))
            candidates.update({s: state.slots[s] for s in form.required_slots if state.slots.get(s) is not None})
        else:
            candidates.update({s: v for s, v in self.turn_slots.items() if s in form.required_slots})
        slot_events = [{"event": "slot", "name": s, "value": v, "timestamp": None} for s, v in candidates.items()]
        validator = f"validate_{name}"
        responses: list[dict[str, Any]] = []
        validation: list[dict[str, Any]]
        if force_ask:
            validation = []
        elif validator in self.domain.actions and self.runner is not None:
            extra = ([{"event": "active_loop", "name": name}] if activating else []) + slot_events
            try:
                validation, responses = await self.call(validator, extra)
            except ActionRejected:
                validation = []
                if not activating:
                    self.reject_loop(name, policy)
                    return
            except DialogueError as exc:
                log.error("dialogue.validation_failed", action=validator, error=str(exc))
                validation = slot_events
        else:
            validation = slot_events
        requested = state.slots.get(REQUESTED_SLOT)
        validated = [e for e in validation if e.get("event") == "slot" and e.get("name") != REQUESTED_SLOT]
        if not activating and not force_ask and requested and not validated and requested not in candidates:
            self.reject_loop(name, policy)
            return
        self.log_action(name, policy)
        if activating:
            self.log("active_loop", {"name": name})
        self.emit_responses(responses)
        slots = dict(state.slots)
        next_slot: str | None = None
        custom_next = False
        for event in validation:
            if event.get("event") == "slot" and event.get("name") == REQUESTED_SLOT:
                next_slot, custom_next = event.get("value"), True
                continue
            if event.get("event") == "slot":
                slots[event["name"]] = event.get("value")
            self.apply_action_events([event])
        if not custom_next:
            next_slot = next_missing(form, slots)
        if next_slot:
            self.set_slot(REQUESTED_SLOT, next_slot)
            await self.ask(name, next_slot)
        else:
            self.log("active_loop", {"name": None})
            self.set_slot(REQUESTED_SLOT, None)

    def reject_loop(self, name: str, policy: str) -> None:
        self.log("action_execution_rejected", {"name": name, "policy": policy})

    async def ask(self, form: str, slot: str) -> None:
        how = ask_action(self.domain, form, slot)
        if how is None:
            log.warning("dialogue.no_ask_response", form=form, slot=slot)
            return
        kind, name = how
        if kind == "response":
            self.utter(name)
        else:
            events, responses = await self.call(name)
            self.emit_responses(responses)
            self.apply_action_events(events)

    def run_two_stage(self, policy: str) -> None:
        """Fallback in two stages: ask to rephrase; then offer a person; then hand off."""
        state = self.state
        intent = state.latest_intent
        if state.active_loop != TWO_STAGE:
            self.log_action(TWO_STAGE, policy)
            self.log("active_loop", {"name": TWO_STAGE})
            self.utter("utter_ask_rephrase")
            return
        runs = state.two_stage_runs
        self.log_action(TWO_STAGE, policy)
        if intent != "nlu_fallback":
            if runs >= 2 and (intent in AFFIRM_INTENTS or intent in self.policies.handoff_intents):
                self.log("active_loop", {"name": None})
                self.request_handoff("fallback", "customer accepted the offer of a person")
                self.stop = True
            elif runs >= 2 and intent == "deny":
                self.log("active_loop", {"name": None})
                self.utter("utter_ask_rephrase")
                self.stop = True
            else:
                self.log("active_loop", {"name": None})  # rephrased: carry on with the new intent
            return
        if runs == 1 and OFFER_HUMAN in self.domain.responses:
            self.utter(OFFER_HUMAN)
            return
        self.utter("utter_default")
        self.log("active_loop", {"name": None})
        self.request_handoff("fallback", "fallback exhausted")
        self.stop = True
