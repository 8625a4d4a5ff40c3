"""The policy ensemble: one pure function from a dialogue state to the next action.

Both the live turn (`core.dialogue.turn`) and the test-story runner call
`PolicyEnsemble.predict` at each action step; it reads nothing but the state.
Resolution as Rasa 3's ``DefaultPolicyPredictionEnsemble``: a loop's happy-path
prediction overrules everything; otherwise the highest confidence wins, ties go to
the higher priority (Rule 4 > Memoization 3 > TED 1); an action the state says was
just rejected is never predicted again. RulePolicy's core fallback competes at
``core_fallback_threshold``.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.dialogue.featurize import State
from core.dialogue.ml import MlPolicy
from core.dialogue.policies import MemoizationPolicy, MlStateWalk, PolicyVote, RulePolicy
from core.dialogue.state import LISTEN, DialogueState


@dataclass(frozen=True, slots=True)
class Prediction:
    action: str
    policy: str
    confidence: float
    loop_interrupted: bool = False  # the active loop runs after an unhappy path: ask again, do not validate
    hide_rule_turn: bool = False  # a rule-only turn: log it on the action event, story-trained policies skip it


@dataclass(frozen=True, slots=True)
class _Walk:
    """`MlStateWalk` over ``past`` (the very list object: the state replaces it when it rewrites history)."""

    past: list[State]
    flags: list[bool]
    rule_only: tuple[frozenset[str], frozenset[str]]
    walk: MlStateWalk


class PolicyEnsemble:
    def __init__(self, rules: RulePolicy | None, memo: MemoizationPolicy | None, ml: MlPolicy | None) -> None:
        self.rules = rules
        self.memo = memo
        self.ml = ml

    def votes(self, state: DialogueState) -> list[PolicyVote]:
        states = state.states()
        hidden = state.hidden_turns()
        rejected = state.rejected_action
        votes: list[PolicyVote] = []
        if self.rules is not None:
            vote = self.rules.predict(states, active_loop=state.active_loop, loop_rejected=state.loop_rejected,
                                      latest_action=state.latest_action, intent=state.latest_intent)
            if vote is not None and vote.no_user:
                return [vote]
            if vote is not None:
                votes.append(vote)
        # story-trained policies see the same states when they drop the same rule-only features: compute them once
        seen = None
        if self.memo is not None and self.ml is not None and self.memo.rule_only == self.ml.rule_only:
            seen = self._seen(state, states, hidden, self.memo.rule_only)
        if self.memo is not None:
            vote = self.memo.predict(states, hidden, seen=seen)
            if vote is not None:
                votes.append(vote)
        if self.ml is not None:
            vote = self.ml.predict(states, hidden, exclude=rejected, seen=seen)
            if vote is not None:
                votes.append(vote)
        return [v for v in votes if v.action != rejected]

    @staticmethod
    def _seen(state: DialogueState, states: list[State], hidden: list[bool],
              rule_only: tuple[frozenset[str], frozenset[str]]) -> list[State]:
        """``ml_states(states, *rule_only, hidden)``, walking each past state of ``state`` once per
        turn: the walk is kept on the state while its past only grows (a turn predicts several times)."""
        if not rule_only[0] and not rule_only[1] and not any(hidden):
            return list(states)
        past, flags = state.past, state.hidden
        cached = state.ml_walk
        if (not isinstance(cached, _Walk) or cached.past is not past or cached.flags is not flags
                or cached.rule_only != rule_only or cached.walk.fed > len(past)):
            cached = state.ml_walk = _Walk(past, flags, rule_only, MlStateWalk(*rule_only))
        walk = cached.walk
        for index in range(walk.fed, len(past)):
            walk.feed(past[index], flags[index] if index < len(flags) else False)
        return walk.with_last(states[-1], hidden[-1])

    def predict(self, state: DialogueState) -> Prediction:
        """The next action for ``state`` (a pure function of the state)."""
        votes = self.votes(state)
        if not votes:
            return Prediction(LISTEN, "default", 0.0)
        best = max(votes, key=lambda v: (v.confidence, v.priority))
        interrupted = any(v.loop_interrupted for v in votes)
        return Prediction(best.action, best.policy, round(best.confidence, 4), interrupted, best.hide_rule_turn)
