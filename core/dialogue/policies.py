"""RulePolicy and (Augmented)MemoizationPolicy with Rasa 3.x semantics, on Rasa states.

Rules are state snippets (the states after the rule-snippet action ``...``); a rule
applies when each of its states, read backwards, is a subset of the conversation's
(``null`` values must be unset), the longest matching rule wins. Active loops get
Rasa's default handling (happy path: loop, then ``action_listen``; unhappy paths
from rules and stories). Memoization looks the last ``max_history`` states up
exactly in the stories; the augmented variant forgets the oldest turns on a miss.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.dialogue.featurize import (
    ACTIVE_LOOP,
    PREV_ACTION,
    SHOULD_NOT_BE_SET,
    SLOTS,
    USER,
    State,
    loop_of,
    prev_action_of,
    state_key,
)
from core.dialogue.state import LISTEN
from core.dialogue.training import RULE_SNIPPET, Example

RULE_PRIORITY = 4  # rasa.core.constants in 3.x: Rule 4 > Memoization 3 > UnexpecTED 2 > TED 1
MEMO_PRIORITY = 3
TED_PRIORITY = 1
DEFAULT_ACTIONS = {"restart": "action_restart", "back": "action_back", "session_start": "action_session_start"}
LOOP_WAS_INTERRUPTED = "loop_was_interrupted"
DO_NOT_PREDICT_LOOP_ACTION = "do_not_predict_loop_action"
FALLBACK_SOURCE = "fallback"


@dataclass(frozen=True, slots=True)
class PolicyVote:
    """One policy's choice: its best action and confidence, and Rasa's prediction flags."""

    action: str
    confidence: float
    policy: str
    priority: int
    no_user: bool = False  # loop happy path: overrules every other prediction
    loop_interrupted: bool = False  # the loop returns from an unhappy path (skip validation)
    source: str = ""
    hide_rule_turn: bool = False  # a rule no story uses: story-trained policies will not see this turn


def _is_snippet(state: Mapping[str, Any]) -> bool:
    return prev_action_of(state) == RULE_SNIPPET


def rule_key(states: Sequence[State]) -> str | None:
    """Rasa's rule feature key: the states after the last rule-snippet state."""
    kept: list[State] = []
    for state in reversed(states):
        if _is_snippet(state):
            break
        kept.insert(0, state)
    return state_key(kept) if kept else None


def _learn(lookup: dict[str, str], ambiguous: set[str], key: str | None, action: str) -> None:
    if key is None or key in ambiguous:
        return
    if key in lookup and lookup[key] != action:
        ambiguous.add(key)
        del lookup[key]
    else:
        lookup[key] = action


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def rule_state_matches(rule_state: Mapping[str, Any], state: Mapping[str, Any]) -> bool:
    """Rasa's ``_does_rule_match_state``: every feature of the rule is in the state; ``null`` means unset."""
    return _prepared_state_matches(_prepared(rule_state), state)


def _prepared_state_matches(rule_state: Mapping[str, Any], state: Mapping[str, Any]) -> bool:
    """`rule_state_matches` on a prepared rule state (its lists already tuples, see `_prepared`)."""
    for kind, rule_sub in rule_state.items():
        sub = state.get(kind) or {}
        for key, expected in rule_sub.items():
            actual = sub.get(key)
            if expected == SHOULD_NOT_BE_SET:
                if actual and actual != SHOULD_NOT_BE_SET:
                    return False
            elif expected and actual != expected:
                return False
    return True


@dataclass(frozen=True, slots=True)
class _Rule:
    key: str
    states: tuple[State, ...]  # reversed: the latest first; list values as tuples (as `rule_state_matches` compares)
    action: str


def _prepared(state: Mapping[str, Any]) -> State:
    return {kind: {key: _as_tuple(value) for key, value in sub.items()} for kind, sub in state.items()}


class _RuleIndex:
    """Rule keys bucketed by the previous action and intent of their last state, for fast matching."""

    def __init__(self, lookup: Mapping[str, str]) -> None:
        self.lookup = dict(lookup)
        self.by_action: dict[str | None, list[_Rule]] = {}
        self._candidates: dict[tuple[str | None, str | None], tuple[_Rule, ...]] = {}
        for key, action in lookup.items():
            states = tuple(_prepared(s) for s in reversed(json.loads(key)))
            self.by_action.setdefault(prev_action_of(states[0]), []).append(_Rule(key, states, action))

    def matching(self, states: Sequence[State]) -> list[_Rule]:
        current = states[-1]
        action = prev_action_of(current)
        intent = (current.get(USER) or {}).get("intent")
        candidates = self._candidates.get((action, intent))
        if candidates is None:
            every = (*self.by_action.get(action, []), *self.by_action.get(None, []))
            candidates = tuple(rule for rule in every if _may_match_intent(rule.states[0], intent))
            self._candidates[(action, intent)] = candidates
        latest_first = states[::-1]
        found = []
        for rule in candidates:
            for rule_state, state in zip(rule.states, latest_first):
                if not _applicable(rule_state, state):
                    break
            else:
                found.append(rule)
        return found


def _may_match_intent(rule_state: Mapping[str, Any], intent: str | None) -> bool:
    """False only where `_applicable` must fail on the intent: the rule state has a previous action and asks for another intent."""
    expected = (rule_state.get(USER) or {}).get("intent")
    if not rule_state.get(PREV_ACTION) or not isinstance(expected, str) or not expected or expected == SHOULD_NOT_BE_SET:
        return True
    return intent == expected


def _applicable(rule_state: Mapping[str, Any], state: Mapping[str, Any]) -> bool:
    rule_prev, prev = rule_state.get(PREV_ACTION), state.get(PREV_ACTION)
    if not rule_prev and not prev:
        return True
    if not rule_prev or not prev:
        return False
    return _prepared_state_matches(rule_state, state)


class RulePolicy:
    """Rasa's RulePolicy: rules, default actions, loop happy and unhappy paths, core fallback."""

    name = "RulePolicy"
    priority = RULE_PRIORITY

    def __init__(self, rule_examples: Iterable[Example], story_examples: Iterable[Example] = (), *,
                 core_fallback_threshold: float = 0.3, core_fallback_action: str = "action_default_fallback",
                 enable_fallback_prediction: bool = True) -> None:
        self.used_sources: set[str] | None = None
        self.core_fallback_threshold = core_fallback_threshold
        self.core_fallback_action = core_fallback_action
        self.enable_fallback_prediction = enable_fallback_prediction
        rules: dict[str, str] = {}
        ambiguous: set[str] = set()
        unhappy: dict[str, str] = {}
        rule_examples = list(rule_examples)
        for example in rule_examples:
            _learn(rules, ambiguous, rule_key(example.states), example.action)
        self.rules = _RuleIndex({k: a for k, a in rules.items() if a != RULE_SNIPPET})
        for example in [*rule_examples, *story_examples]:
            self._learn_unhappy(unhappy, example.states, example.action)
        self.unhappy = _RuleIndex(unhappy)

    @staticmethod
    def _learn_unhappy(lookup: dict[str, str], states: Sequence[State], action: str) -> None:
        loop = loop_of(states[-1])
        if not loop:
            return
        if len(states) == 1 or not states[-2].get(PREV_ACTION):
            trimmed: list[State] = [states[-1]]
        else:
            trimmed = [{PREV_ACTION: states[-2][PREV_ACTION]}, states[-1]]
        key = rule_key(trimmed)
        if key is None:
            return
        after_listen = prev_action_of(states[-1]) == LISTEN
        if after_listen and action == loop:
            lookup[key] = LOOP_WAS_INTERRUPTED
        elif not after_listen and action != loop:
            lookup[key] = DO_NOT_PREDICT_LOOP_ACTION

    def _vote(self, action: str, confidence: float = 1.0, **flags: Any) -> PolicyVote:
        source = str(flags.get("source", ""))
        hide = source != FALLBACK_SOURCE and self.used_sources is not None and source not in self.used_sources
        return PolicyVote(action, confidence, self.name, self.priority, hide_rule_turn=hide, **flags)

    def learn_story_usage(self, story_examples: Iterable[Example]) -> None:
        """Which rules the stories follow (Rasa's ``rules_not_in_stories`` is every other rule).

        As Rasa's analysis: the stories are replayed in order; where the loop is predicted but the
        story goes on differently, the loop is rejected until it runs again."""
        used: set[str] = set()
        rejected, loop_seen, tracker = False, None, None
        for example in story_examples:
            if example.tracker is not tracker:
                tracker, rejected, loop_seen = example.tracker, False, None
                continue  # a tracker's first action is unpredictable
            states = example.states
            current = states[-1]
            loop = loop_of(current)
            if loop != loop_seen:
                rejected, loop_seen = False, loop
            inputs = {"active_loop": loop, "latest_action": prev_action_of(current),
                      "intent": (current.get(USER) or {}).get("intent")}
            vote = self.predict(states, loop_rejected=rejected, **inputs)
            if loop and vote is not None and vote.action != example.action and vote.action == loop:
                rejected = True
                vote = self.predict(states, loop_rejected=True, **inputs)
            if vote is not None and vote.action == example.action and vote.source != FALLBACK_SOURCE:
                used.add(vote.source)
            if example.action == loop:
                rejected = False
        self.used_sources = used

    def predict(self, states: Sequence[State], *, active_loop: str | None, loop_rejected: bool,
                latest_action: str | None, intent: str | None) -> PolicyVote | None:
        if latest_action == LISTEN and intent in DEFAULT_ACTIONS:
            return self._vote(DEFAULT_ACTIONS[intent], source=f"default {intent}")
        if active_loop and not loop_rejected and latest_action:
            if latest_action != active_loop:
                return self._vote(active_loop, no_user=True, source=f"loop {active_loop}")
            return self._vote(LISTEN, no_user=True, source=f"loop {active_loop} - listen")
        matches = self.rules.matching(states)
        action: str | None = None
        best: _Rule | None = None
        if matches:
            best = max(matches, key=lambda r: len(r.key))
            action = best.action
        interrupted = False
        if active_loop:
            conditions = {r.action for r in self.unhappy.matching(states)}
            if action == LISTEN and best is not None and not loop_of(best.states[0]):
                if DO_NOT_PREDICT_LOOP_ACTION not in conditions:
                    return self._vote(active_loop, source=best.key)
                action = None
            interrupted = LOOP_WAS_INTERRUPTED in conditions
        if action is not None:
            return self._vote(action, loop_interrupted=interrupted, source=best.key if best else "")
        if self.enable_fallback_prediction:
            return self._vote(self.core_fallback_action, self.core_fallback_threshold, loop_interrupted=interrupted, source=FALLBACK_SOURCE)
        return None


def ml_states(states: Sequence[State], rule_only_slots: frozenset[str], rule_only_loops: frozenset[str],
              hidden: Sequence[bool] | None = None) -> list[State]:
    """States as story-trained policies see them (Rasa's ``ignore_rule_only_turns``): rule-only turns
    are left out, the previous action is the last one such a policy saw, and slots and loops that
    only rules use are dropped."""
    if not rule_only_slots and not rule_only_loops and (hidden is None or not any(hidden)):
        return list(states)
    walk = MlStateWalk(rule_only_slots, rule_only_loops)
    hidden_count = len(hidden) if hidden is not None else 0
    for index, original in enumerate(states):
        walk.feed(original, None if hidden is None else (hidden[index] if index < hidden_count else False))
    return walk.out


class MlStateWalk:
    """`ml_states` one state at a time, so a caller whose states only grow at the end (a turn's
    `DialogueState`) feeds each state once instead of re-reading the whole history per prediction."""

    __slots__ = ("fed", "last_action", "out", "rule_only_loops", "rule_only_slots", "was_hidden")

    def __init__(self, rule_only_slots: frozenset[str], rule_only_loops: frozenset[str]) -> None:
        self.rule_only_slots = rule_only_slots
        self.rule_only_loops = rule_only_loops
        self.out: list[State] = []
        self.last_action: dict[str, Any] | None = None
        self.was_hidden = False
        self.fed = 0  # states fed so far

    def feed(self, original: State, hidden: bool | None) -> None:
        """The next state and whether its action was a rule-only turn (None: no such information)."""
        self.fed += 1
        state, self.last_action, self.was_hidden = self._step(original, hidden)
        if state is not None:
            self.out.append(state)

    def with_last(self, original: State, hidden: bool | None) -> list[State]:
        """What `out` would be after feeding ``original``, without feeding it (the current state)."""
        state, _, _ = self._step(original, hidden)
        return [*self.out, state] if state is not None else list(self.out)

    def _step(self, original: State, hidden: bool | None) -> tuple[State | None, dict[str, Any] | None, bool]:
        last_action, was_hidden = self.last_action, self.was_hidden
        if not was_hidden:
            last_action = original.get(PREV_ACTION)
        action = prev_action_of(original)
        loop = loop_of(original)
        if hidden is not None and not (action and action == loop):
            was_hidden = hidden
        if was_hidden:
            return None, last_action, was_hidden
        out = self.out
        state = dict(original)
        if self.rule_only_slots and state.get(SLOTS):
            slots = {k: v for k, v in state[SLOTS].items() if k not in self.rule_only_slots}
            if slots:
                state[SLOTS] = slots
            else:
                del state[SLOTS]
        if self.rule_only_loops and loop in self.rule_only_loops:
            del state[ACTIVE_LOOP]
        if out and action != LISTEN:
            if not out[-1].get(USER) and state.get(USER):
                del state[USER]
            elif out[-1].get(USER):
                state[USER] = out[-1][USER]
        if last_action:
            state[PREV_ACTION] = last_action
        return state, last_action, was_hidden


def rule_only_features(rule_examples: Iterable[Example], story_examples: Iterable[Example]) -> tuple[frozenset[str], frozenset[str]]:
    """Slots and loops that appear in rules but in no story (Rasa's ``rule_only_data``)."""

    def collect(examples: Iterable[Example]) -> tuple[set[str], set[str]]:
        slots: set[str] = set()
        loops: set[str] = set()
        for example in examples:
            for state in example.states:
                slots.update(state.get(SLOTS) or {})
                loop = loop_of(state)
                if loop:
                    loops.add(loop)
        return slots, loops

    rule_slots, rule_loops = collect(rule_examples)
    story_slots, story_loops = collect(story_examples)
    return frozenset(rule_slots - story_slots), frozenset(rule_loops - story_loops)


class MemoizationPolicy:
    """The last ``max_history`` states looked up in the stories; contradicting stories are forgotten."""

    name = "MemoizationPolicy"
    priority = MEMO_PRIORITY

    def __init__(self, story_examples: Iterable[Example], *, max_history: int = 5, augmented: bool = False,
                 rule_only: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())) -> None:
        self.max_history = max_history
        self.augmented = augmented
        if augmented:
            self.name = "AugmentedMemoizationPolicy"
        self.rule_only = rule_only
        self.lookup: dict[str, str] = {}
        ambiguous: set[str] = set()
        for example in story_examples:
            if example.tracker.is_augmented:
                continue
            window = ml_states(example.states, *rule_only)[-max_history:]
            _learn(self.lookup, ambiguous, state_key(window), example.action)

    def recall(self, states: Sequence[State], hidden: Sequence[bool] | None = None, *,
               seen: Sequence[State] | None = None) -> str | None:
        """``seen``: ``ml_states(states, *self.rule_only, hidden)`` if the caller already has it."""
        states = ml_states(states, *self.rule_only, hidden) if seen is None else seen
        found = self.lookup.get(state_key(states[-self.max_history:]))
        if found is not None or not self.augmented:
            return found
        # forget the oldest turns: as if the conversation had started later
        for keep in range(min(self.max_history, len(states)) - 1, 0, -1):
            found = self.lookup.get(state_key([{}, *states[len(states) - keep:]]))
            if found is not None:
                return found
        return None

    def predict(self, states: Sequence[State], hidden: Sequence[bool] | None = None, *,
                seen: Sequence[State] | None = None) -> PolicyVote | None:
        action = self.recall(states, hidden, seen=seen)
        return PolicyVote(action, 1.0, self.name, self.priority) if action is not None else None
