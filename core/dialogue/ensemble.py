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

from core.dialogue.ml import MlPolicy
from core.dialogue.policies import MemoizationPolicy, PolicyVote, RulePolicy, ml_states
from core.dialogue.state import LISTEN, DialogueState


@dataclass(frozen=True, slots=True)
class Prediction:
    action: str
    policy: str
    confidence: float
    loop_interrupted: bool = False  # the active loop runs after an unhappy path: ask again, do not validate
    hide_rule_turn: bool = False  # a rule-only turn: log it on the action event, story-trained policies skip it


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
            seen = ml_states(states, *self.memo.rule_only, hidden)
        if self.memo is not None:
            vote = self.memo.predict(states, hidden, seen=seen)
            if vote is not None:
                votes.append(vote)
        if self.ml is not None:
            vote = self.ml.predict(states, hidden, exclude=rejected, seen=seen)
            if vote is not None:
                votes.append(vote)
        return [v for v in votes if v.action != rejected]

    def predict(self, state: DialogueState) -> Prediction:
        """The next action for ``state`` (a pure function of the state)."""
        votes = self.votes(state)
        if not votes:
            return Prediction(LISTEN, "default", 0.0)
        best = max(votes, key=lambda v: (v.confidence, v.priority))
        interrupted = any(v.loop_interrupted for v in votes)
        return Prediction(best.action, best.policy, round(best.confidence, 4), interrupted, best.hide_rule_turn)
