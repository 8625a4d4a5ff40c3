"""Dialogue state rebuilt from a transcript of Rasa-vocabulary events.

Besides slots, active loop and latest message, the state keeps Rasa's featurised
*state history*: one `State` before each executed action (``action_listen``
included, as Rasa's ``tracker.past_states``), so `states()` is exactly what Rasa's
policies see. A user message after a non-listen action gets an implicit
``action_listen`` first, as Rasa's story reader adds one. Switchboard's own event
types (handoff, agent, note, delivery, status, csat) are ignored.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.dialogue.featurize import (
    State,
    make_state,
    prev_action_of,
    slots_sub_state,
    user_sub_state,
)
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
WINDOW_START = "action_switchboard_earlier_history"  # what preceded a history window


@dataclass(slots=True)
class _Snapshot:
    past: list[State]
    hidden: list[bool]
    prev_action: str | None
    user_state: dict[str, Any]


@dataclass(slots=True)
class DialogueState:
    domain: Domain
    slots: dict[str, Any] = field(default_factory=dict)
    active_loop: str | None = None
    latest_message: dict[str, Any] = field(default_factory=dict)
    latest_action: str | None = None
    followup: str | None = None
    last_user_time: datetime | None = None
    turn_fallbacks: list[bool] = field(default_factory=list)  # per user turn: ended in a fallback
    two_stage_runs: int = 0
    loop_rejected: bool = False  # the active loop refused to run (action_execution_rejected)
    loop_interrupted: bool = False  # a policy said the loop returns from an unhappy path
    rejected_action: str | None = None  # the action that refused to run, until the next action runs
    # for rasa-sdk trackers: applied events, turned into Rasa dicts only when a tracker is built
    # (`rasa_events`); most turns run no custom action and never need them
    events: list[Event | dict[str, Any]] = field(default_factory=list)
    past: list[State] = field(default_factory=list)  # Rasa states before each executed action
    hidden: list[bool] = field(default_factory=list)  # per past state: its action was a rule-only turn (hide_rule_turn)
    prev_action: str | None = None  # the action the current state follows (None: conversation start)
    user_state: dict[str, Any] = field(default_factory=dict)
    slots_set: set[str] = field(default_factory=set)
    omit_unset_slots: bool = False  # rule trackers featurise only slots they set
    keep_events: bool = True
    _slot_cache: dict[str, Any] | None = None
    ml_walk: object | None = None  # the policy ensemble's walk over `past` (core.dialogue.ensemble)
    _before_fallback: _Snapshot | None = None
    _applied: list[Event] = field(default_factory=list)

    @classmethod
    def initial(cls, domain: Domain) -> DialogueState:
        return cls(domain, slots={name: copy.deepcopy(s.initial_value) for name, s in domain.slots.items()})

    @classmethod
    def from_history(cls, domain: Domain, history: Iterable[Event], *, window: bool = False) -> DialogueState:
        """The state after ``history``; ``window``: the history is the tail of a longer session,
        so its first state is not a conversation start (no conversation_start rule, no story start)."""
        state = cls.initial(domain)
        if window:
            state.prev_action = WINDOW_START
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

    def slots_changed(self) -> None:
        """Call after assigning ``slots`` directly (not through a slot event)."""
        self._slot_cache = None

    def slot_state(self) -> dict[str, Any]:
        if self._slot_cache is None:
            self._slot_cache = slots_sub_state(self.domain, self.slots, self.slots_set if self.omit_unset_slots else None)
        return self._slot_cache

    def current_state(self) -> State:
        return make_state(self.user_state, self.prev_action, self.active_loop, self.slot_state())

    def states(self) -> list[State]:
        """Rasa's ``past_states``: the state before every executed action, then the current one."""
        return [*self.past, self.current_state()]

    def hidden_turns(self) -> list[bool]:
        """Per state of `states()`: the action after it was a rule-only turn (the current state: False)."""
        return [*self.hidden, False]

    # ---- applying events -----------------------------------------------------------------

    def _reset(self, *, keep_slots: bool = False) -> None:
        if not keep_slots:
            self.slots = {name: copy.deepcopy(s.initial_value) for name, s in self.domain.slots.items()}
            self.slots_set = set()
        self.active_loop = None
        self.followup = None
        self.two_stage_runs = 0
        self.loop_rejected = self.loop_interrupted = False
        self.past = []
        self.hidden = []
        self.prev_action = None
        self.user_state = {}
        self._before_fallback = None
        self._slot_cache = None

    def _executed(self, name: str, hide: bool = False) -> None:
        self.past.append(self.current_state())
        self.hidden.append(hide)
        self.prev_action = name

    def _user(self, parse: Mapping[str, Any]) -> None:
        if self.prev_action != LISTEN:
            self._executed(LISTEN)
        intent = (parse.get("intent") or {}).get("name")
        if self.active_loop != TWO_STAGE:
            self._before_fallback = None
            if intent == "nlu_fallback":
                before = self.past[-1] if self.past else {}
                self._before_fallback = _Snapshot(self.past[:-1], self.hidden[:-1], prev_action_of(before),
                                                  dict(before.get("user") or {}))
        self.user_state = user_sub_state(self.domain, parse)

    def apply(self, event: Event) -> None:
        if event.type in OWN_EVENT_TYPES:
            return
        data = event.data
        kind = event.type
        if kind in ("rewind", "undo"):
            self._revert(kind)
            return
        self._applied.append(event)
        if self.keep_events:
            self.events.append(event)
        if kind == "user":
            parse = data.get("parse_data") or {}
            self.latest_message = {**parse, "text": data.get("text"), "message_id": data.get("message_id")}
            self.last_user_time = event.timestamp
            self.turn_fallbacks.append(False)
            self.latest_action = LISTEN
            self.rejected_action = None
            self._user(parse)
        elif kind == "action":
            name = data.get("name") or ""
            self.latest_action = name
            self.loop_interrupted = False
            self.rejected_action = None
            if name == self.active_loop:
                self.loop_rejected = False
            if self.followup == name:
                self.followup = None
            if name == TWO_STAGE:
                self.two_stage_runs = self.two_stage_runs + 1 if self.active_loop == TWO_STAGE else 1
            if name in FALLBACK_ACTIONS and self.turn_fallbacks and (name != TWO_STAGE or self.latest_intent == "nlu_fallback"):
                self.turn_fallbacks[-1] = True
            self._executed(name, bool(data.get("hide_rule_turn")))
        elif kind == "action_execution_rejected":
            self.rejected_action = data.get("name")
            if data.get("name") and data.get("name") == self.active_loop:
                self.loop_rejected = True
        elif kind == "loop_interrupted":
            if self.active_loop:
                self.loop_interrupted = bool(data.get("is_interrupted", True))
        elif kind == "slot":
            name = data.get("name")
            if name is not None:
                self.slots[name] = data.get("value")
                self.slots_set.add(name)
                self._slot_cache = None
        elif kind in ("active_loop", "form"):
            name = data.get("name")
            ending_two_stage = self.active_loop == TWO_STAGE and name != TWO_STAGE
            self.active_loop = name
            self.loop_rejected = self.loop_interrupted = False
            if not name:
                self.two_stage_runs = 0
            if ending_two_stage:
                self._forget_fallback_episode()
        elif kind == "followup":
            self.followup = data.get("name")
        elif kind == "restart":
            self._reset()
            self.turn_fallbacks = []
        elif kind == "reset_slots":
            self.slots = {name: copy.deepcopy(s.initial_value) for name, s in self.domain.slots.items()}
            self.slots_set = set()
            self._slot_cache = None
        elif kind == "session_started":
            previous_user = self._current_turn_user()
            self._reset(keep_slots=False)
            if previous_user is not None:  # our transcripts log the user event first
                self._user(previous_user.data.get("parse_data") or {})

    def _forget_fallback_episode(self) -> None:
        """The two-stage fallback ended on an understood message: its turns leave the history, as Rasa reverts them."""
        snapshot = self._before_fallback
        self._before_fallback = None
        if snapshot is None or self.latest_intent == "nlu_fallback":
            return
        self.past = list(snapshot.past)
        self.hidden = list(snapshot.hidden)
        self.prev_action = snapshot.prev_action
        user = self.user_state
        self.user_state = snapshot.user_state
        self._executed(LISTEN)
        self.user_state = user

    def _current_turn_user(self) -> Event | None:
        """The user event of this turn if session_started directly follows it (plus session actions)."""
        for event in reversed(self._applied[:-1]):
            if event.type == "user":
                return event
            if event.type == "bot" or (event.type == "action" and event.data.get("name") == "action_session_start"):
                continue
            return None
        return None

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
        fresh.omit_unset_slots, fresh.keep_events = self.omit_unset_slots, self.keep_events
        for event in kept:
            fresh.apply(event)
        for name in DialogueState.__slots__:
            setattr(self, name, getattr(fresh, name))
        self.turn_fallbacks = fallbacks  # a reverted fallback turn still counts as a fallback
        self.events = events + [{"event": "rewind" if kind == "rewind" else "undo"}]

    # ---- rasa-sdk view ------------------------------------------------------------------

    def rasa_events(self) -> list[dict[str, Any]]:
        """`events` as rasa-sdk's tracker expects them (``event`` + ``timestamp`` + the data)."""
        return [e.as_rasa() if isinstance(e, Event) else dict(e) for e in self.events]

    def tracker_dict(self, sender_id: str, extra_events: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
        """The tracker state rasa-sdk's ``Tracker.from_dict`` reads."""
        own = self.rasa_events()
        events = own + [dict(e) for e in extra_events]
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
            "latest_event_time": own[-1].get("timestamp") if own else None,
        }
