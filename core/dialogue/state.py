"""Dialogue state rebuilt from a transcript of Rasa-vocabulary events.

The state keeps what the policies need: current slots and active loop, and the
session's *anchors* (user intents and executed actions, ``action_listen`` excluded),
each with the slot / loop changes that followed it. Switchboard's own event types
(handoff, agent, note, delivery, status, csat) are ignored.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.model import Event
from core.rasa.domain import Domain

RASA_EVENT_TYPES = {
    "user", "bot", "slot", "action", "active_loop", "followup", "restart", "session_started",
    "reset_slots", "rewind", "undo", "pause", "resume", "reminder", "cancel_reminder",
    "agent", "action_execution_rejected", "loop_interrupted", "user_featurization", "entities",
    "export", "form", "form_validation",
}
OWN_EVENT_TYPES = {"handoff", "agent", "note", "delivery", "status", "csat"}
LISTEN = "action_listen"
FALLBACK_ACTIONS = {"action_default_fallback", "action_two_stage_fallback"}
TWO_STAGE = "action_two_stage_fallback"


@dataclass(slots=True)
class Anchor:
    kind: str  # intent | action
    name: str
    entities: frozenset[str] = frozenset()
    slots_before: dict[str, Any] = field(default_factory=dict)
    loop_before: str | None = None
    after: dict[str, Any] = field(default_factory=dict)  # "slot:x" / "loop" -> final value in segment
    loops_seen: set[str] = field(default_factory=set)
    message_id: str | None = None


@dataclass(slots=True)
class DialogueState:
    domain: Domain
    slots: dict[str, Any] = field(default_factory=dict)
    active_loop: str | None = None
    anchors: list[Anchor] = field(default_factory=list)
    latest_message: dict[str, Any] = field(default_factory=dict)
    latest_action: str | None = None
    followup: str | None = None
    last_user_time: datetime | None = None
    turn_fallbacks: list[bool] = field(default_factory=list)  # per user turn: ended in a fallback
    two_stage_runs: int = 0
    loop_rejected: bool = False  # the active loop refused the last message (action_execution_rejected)
    events: list[dict[str, Any]] = field(default_factory=list)  # rasa dicts, for rasa-sdk trackers
    _applied: list[Event] = field(default_factory=list)

    @classmethod
    def initial(cls, domain: Domain) -> DialogueState:
        return cls(domain, slots={name: copy.deepcopy(s.initial_value) for name, s in domain.slots.items()})

    @classmethod
    def from_history(cls, domain: Domain, history: Iterable[Event]) -> DialogueState:
        state = cls.initial(domain)
        for event in history:
            state.apply(event)
        return state

    # ---- derived views ------------------------------------------------------------------

    @property
    def latest_intent(self) -> str | None:
        intent = self.latest_message.get("intent") or {}
        return intent.get("name")

    @property
    def fallback_streak(self) -> int:
        streak = 0
        for flag in reversed(self.turn_fallbacks):
            if not flag:
                break
            streak += 1
        return streak

    def effective_anchors(self) -> list[Anchor]:
        """Anchors with finished fallback episodes left out, as Rasa reverts them."""
        anchors = self.anchors
        last_intent = max((i for i, a in enumerate(anchors) if a.kind == "intent"), default=-1)
        out: list[Anchor] = []
        skipping = False
        for index, anchor in enumerate(anchors):
            if index < last_intent:
                if anchor.kind == "intent":
                    skipping = anchor.name == "nlu_fallback"
                if skipping or (anchor.kind == "action" and anchor.name in FALLBACK_ACTIONS):
                    continue
            elif index > last_intent and anchor.name == TWO_STAGE and self.latest_intent != "nlu_fallback":
                continue
            out.append(anchor)
        return out

    # ---- applying events -----------------------------------------------------------------

    def _reset(self, *, keep_slots: bool = False) -> None:
        if not keep_slots:
            self.slots = {name: copy.deepcopy(s.initial_value) for name, s in self.domain.slots.items()}
        self.active_loop = None
        self.anchors = []
        self.followup = None
        self.two_stage_runs = 0

    def _note(self, key: str, value: Any) -> None:
        if self.anchors:
            self.anchors[-1].after[key] = value
            if key == "loop" and value:
                self.anchors[-1].loops_seen.add(value)

    def apply(self, event: Event) -> None:
        if event.type in OWN_EVENT_TYPES:
            return
        data = event.data
        kind = event.type
        if kind in ("rewind", "undo"):
            self._revert(kind)
            return
        self._applied.append(event)
        self.events.append(event.as_rasa())
        if kind == "action_execution_rejected" and data.get("name") and data.get("name") == self.active_loop:
            self.loop_rejected = True
        if kind == "user":
            parse = data.get("parse_data") or {}
            intent = (parse.get("intent") or {}).get("name")
            self.latest_message = {**parse, "text": data.get("text"), "message_id": data.get("message_id")}
            self.last_user_time = event.timestamp
            self.turn_fallbacks.append(False)
            self.latest_action = LISTEN
            if intent:
                entities = frozenset(e.get("entity", "") for e in parse.get("entities") or [])
                self.anchors.append(Anchor("intent", intent, entities, dict(self.slots), self.active_loop, message_id=data.get("message_id")))
        elif kind == "action":
            name = data.get("name") or ""
            self.latest_action = name
            if name == self.active_loop:
                self.loop_rejected = False
            if self.followup == name:
                self.followup = None
            if name == TWO_STAGE:
                self.two_stage_runs = self.two_stage_runs + 1 if self.active_loop == TWO_STAGE else 1
            if name in FALLBACK_ACTIONS and self.turn_fallbacks and (name != TWO_STAGE or self.latest_intent == "nlu_fallback"):
                self.turn_fallbacks[-1] = True
            if name != LISTEN:
                self.anchors.append(Anchor("action", name, frozenset(), dict(self.slots), self.active_loop))
        elif kind == "slot":
            name = data.get("name")
            if name is not None:
                self.slots[name] = data.get("value")
                self._note(f"slot:{name}", data.get("value"))
        elif kind in ("active_loop", "form"):
            name = data.get("name")
            self.active_loop = name
            self.loop_rejected = False
            if not name:
                self.two_stage_runs = 0
            self._note("loop", name)
        elif kind == "followup":
            self.followup = data.get("name")
        elif kind == "restart":
            self._reset()
            self.turn_fallbacks = []
        elif kind == "reset_slots":
            self.slots = {name: copy.deepcopy(s.initial_value) for name, s in self.domain.slots.items()}
        elif kind == "session_started":
            previous_user = self._current_turn_user()
            self._reset(keep_slots=False)
            if previous_user is not None:  # our transcripts log the user event first
                self.apply_user_again(previous_user)

    def _current_turn_user(self) -> Event | None:
        """The user event of this turn if session_started directly follows it (plus session actions)."""
        for event in reversed(self._applied[:-1]):
            if event.type == "user":
                return event
            if event.type == "action" and event.data.get("name") == "action_session_start":
                continue
            return None
        return None

    def apply_user_again(self, event: Event) -> None:
        parse = event.data.get("parse_data") or {}
        intent = (parse.get("intent") or {}).get("name")
        if intent:
            entities = frozenset(e.get("entity", "") for e in parse.get("entities") or [])
            self.anchors.append(Anchor("intent", intent, entities, dict(self.slots), self.active_loop, message_id=event.data.get("message_id")))

    def _revert(self, kind: str) -> None:
        """Rasa's UserUtteranceReverted / ActionReverted: replay without the reverted part."""
        applied = self._applied
        target = "user" if kind == "rewind" else "action"
        for index in range(len(applied) - 1, -1, -1):
            event = applied[index]
            if event.type == target and (target == "user" or event.data.get("name") != LISTEN):
                kept = applied[:index]
                break
        else:
            return
        fallbacks = list(self.turn_fallbacks)
        events = list(self.events)
        fresh = DialogueState.initial(self.domain)
        for event in kept:
            fresh.apply(event)
        for name in DialogueState.__slots__:
            setattr(self, name, getattr(fresh, name))
        self.turn_fallbacks = fallbacks  # a reverted fallback turn still counts as a fallback
        self.events = events + [{"event": "rewind" if kind == "rewind" else "undo"}]

    # ---- rasa-sdk view ------------------------------------------------------------------

    def tracker_dict(self, sender_id: str, extra_events: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
        """The tracker state rasa-sdk's ``Tracker.from_dict`` reads."""
        events = [dict(e) for e in self.events] + [dict(e) for e in extra_events]
        return {
            "sender_id": sender_id,
            "slots": dict(self.slots),
            "latest_message": dict(self.latest_message),
            "events": events,
            "paused": False,
            "followup_action": self.followup,
            "active_loop": {"name": self.active_loop} if self.active_loop else {},
            "latest_action_name": self.latest_action,
            "latest_action": {"action_name": self.latest_action} if self.latest_action else {},
            "latest_input_channel": None,
            "latest_event_time": self.events[-1].get("timestamp") if self.events else None,
        }
