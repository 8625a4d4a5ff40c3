"""The policy ensemble: one pure function from a dialogue state to the next action.

Both the live turn (`core.dialogue.turn`) and the test-story runner call
`PolicyEnsemble.predict` at each action step; it reads nothing but the state.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.dialogue.policies import MemoizationPolicy, RulePolicy
from core.dialogue.state import LISTEN, DialogueState


@dataclass(frozen=True, slots=True)
class Prediction:
    action: str
    policy: str
    confidence: float


class PolicyEnsemble:
    def __init__(self, rules: RulePolicy, memo: MemoizationPolicy, *, core_fallback: str = "action_default_fallback",
                 core_fallback_threshold: float = 0.3) -> None:
        self.rules = rules
        self.memo = memo
        self.core_fallback = core_fallback
        self.core_fallback_threshold = core_fallback_threshold

    def predict(self, state: DialogueState) -> Prediction:
        """The next action for ``state`` (a pure function of the state)."""
        rules = self.rules
        anchors = state.effective_anchors()
        if not anchors:
            return Prediction(LISTEN, "default", 1.0)
        last = anchors[-1]
        if last.kind == "intent" and last.name == "restart":
            return Prediction("action_restart", "RulePolicy", 1.0)
        if last.kind == "intent" and last.name == "session_start":
            return Prediction(LISTEN, "RulePolicy", 1.0)
        loop = state.active_loop
        if loop:
            if last.kind == "intent":
                if not state.loop_rejected:
                    action, _ = rules.predict(anchors, only_loop=loop)
                    if action and action != LISTEN:
                        return Prediction(action, "RulePolicy", 1.0)
                    return Prediction(loop, "RulePolicy", 1.0)
            elif last.name == loop:
                return Prediction(LISTEN, "RulePolicy", 1.0)
            else:
                action, rule = rules.predict(anchors)
                if action and (action != LISTEN or (rule is not None and rule.loop_condition[0])):
                    return Prediction(action, "RulePolicy", 1.0)
                return Prediction(loop, "RulePolicy", 1.0)
        action, _ = rules.predict(anchors)
        if action:
            return Prediction(action, "RulePolicy", 1.0)
        memo = self.memo.predict(anchors)
        if memo:
            return Prediction(memo, "MemoizationPolicy", 1.0)
        if last.kind == "intent":
            return Prediction(self.core_fallback, "RulePolicy", self.core_fallback_threshold)
        return Prediction(LISTEN, "default", 1.0)
