"""A machine-learned dialogue policy that generalises from stories (what TEDPolicy does in Rasa).

Each of the last ``max_history`` states is featurised position by position (intent and
entities only after ``action_listen``, as Rasa's SingleStateFeaturizer does; previous
action; featurised slots; active loop), plus a position-free bag of what happened in
that window. A multinomial logistic regression (scikit-learn) learns the next action
from stories and their augmentations; prediction is a sparse dot product in numpy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from core.dialogue.featurize import ACTIVE_LOOP, SLOTS, USER, State, loop_of, prev_action_of
from core.dialogue.policies import TED_PRIORITY, PolicyVote, ml_states
from core.dialogue.state import LISTEN
from core.dialogue.training import Example

BAG_WEIGHT = 0.5
CACHE_SIZE = 4096  # distinct feature sets whose probabilities are kept (a bot's dialogues repeat)


def state_features(states: Sequence[State], max_history: int, slot_names: Sequence[str] = ()) -> dict[str, float]:
    """Sparse features of the last ``max_history`` states; the current one also crossed with its intent,
    so that a linear model learns what TED's non-linear one does (an intent means X when a slot is set)."""
    features: dict[str, float] = {}
    window = states[-max_history:]
    current_intent: str | None = None
    for position, state in enumerate(reversed(window)):
        prefix = f"{position}:"
        action = prev_action_of(state)
        if action:
            features[prefix + "a:" + action] = 1.0
            features["*a:" + action] = BAG_WEIGHT
        user = state.get(USER) or {}
        if user and action == LISTEN:
            if user.get("intent"):
                features[prefix + "i:" + user["intent"]] = 1.0
                features["*i:" + user["intent"]] = BAG_WEIGHT
                if position == 0:
                    current_intent = user["intent"]
            for entity in user.get("entities") or ():
                features[prefix + "e:" + entity] = 1.0
        slots = state.get(SLOTS) or {}
        for slot, value in slots.items():
            if isinstance(value, str):
                features[f"{prefix}s:{slot}:{value}"] = 1.0
                continue
            for index, amount in enumerate(value):
                if amount:
                    features[f"{prefix}s:{slot}:{index}"] = float(amount)
        loop = loop_of(state)
        if loop and state.get(ACTIVE_LOOP):
            features[prefix + "l:" + loop] = 1.0
        if position == 0:
            if not action:
                features["0:start"] = 1.0
            for slot in slot_names:
                if slot not in slots:
                    features[f"0:s:{slot}:unset"] = 1.0
            if current_intent is not None:
                crossed = [k[2:] for k in features if k.startswith(("0:s:", "0:l:", "0:e:"))]
                for name in crossed:
                    features[f"x:{current_intent}|{name}"] = 1.0
        elif position == 1 and current_intent is not None and action:
            features[f"x:{current_intent}|a:{action}"] = 1.0
    return features


class MlPolicy:
    """TEDPolicy's place in the ensemble: confidences from a softmax over actions."""

    name = "TEDPolicy"
    priority = TED_PRIORITY

    def __init__(self, *, max_history: int = 5, epochs: int = 200, slot_names: Sequence[str] = (),
                 rule_only: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())) -> None:
        self.max_history = max_history
        self.slot_names = tuple(s for s in slot_names if s not in rule_only[0])
        self.epochs = epochs
        self.rule_only = rule_only
        self.vocabulary: dict[str, int] = {}
        self.actions: list[str] = []
        self.weights = np.zeros((0, 0))
        self.bias = np.zeros(0)
        self._cache: dict[tuple[tuple[str, float], ...], dict[str, float]] = {}

    def train(self, examples: Iterable[Example]) -> None:
        from scipy.sparse import csr_matrix
        from sklearn.linear_model import LogisticRegression
        from threadpoolctl import threadpool_limits

        rows: list[dict[str, float]] = []
        labels: list[str] = []
        seen: set[tuple[tuple[tuple[str, float], ...], str]] = set()
        for example in examples:
            features = state_features(ml_states(example.states, *self.rule_only), self.max_history, self.slot_names)
            signature = (tuple(sorted(features.items())), example.action)
            if signature in seen:
                continue
            seen.add(signature)
            rows.append(features)
            labels.append(example.action)
        self.actions = sorted(set(labels))
        if len(self.actions) < 2:
            return
        for features in rows:
            for name in features:
                self.vocabulary.setdefault(name, len(self.vocabulary))
        data, indices, pointers = [], [], [0]
        for features in rows:
            for name, value in features.items():
                indices.append(self.vocabulary[name])
                data.append(value)
            pointers.append(len(indices))
        matrix = csr_matrix((data, indices, pointers), shape=(len(rows), len(self.vocabulary)))
        target = np.array([self.actions.index(label) for label in labels])
        model = LogisticRegression(C=20.0, max_iter=max(100, self.epochs * 5), tol=1e-3)
        # one BLAS thread: on a busy machine OpenBLAS's threads make L-BFGS several times slower
        with threadpool_limits(limits=1):
            model.fit(matrix, target)
        coef = model.coef_
        intercept = model.intercept_
        if len(self.actions) == 2:  # sklearn keeps one row for two classes
            coef = np.vstack([-coef[0], coef[0]]) / 2
            intercept = np.array([-intercept[0], intercept[0]]) / 2
        self.weights = np.ascontiguousarray(coef.T)  # features x actions
        self.bias = intercept
        self._cache = {}

    def probabilities(self, states: Sequence[State], hidden: Sequence[bool] | None = None, *,
                      seen: Sequence[State] | None = None) -> dict[str, float]:
        """``seen``: ``ml_states(states, *self.rule_only, hidden)`` if the caller already has it."""
        if not self.actions:
            return {}
        if len(self.actions) == 1 or self.weights.size == 0:
            return {self.actions[0]: 1.0}
        if seen is None:
            seen = ml_states(states, *self.rule_only, hidden)
        features = state_features(seen, self.max_history, self.slot_names)
        # the same features give the same softmax: remembered per feature set (a pure function of the model)
        key = tuple(features.items())
        cached = self._cache.get(key)
        if cached is not None:
            return dict(cached)
        vocabulary = self.vocabulary
        columns: list[int] = []
        amounts: list[float] = []
        for name, value in features.items():
            column = vocabulary.get(name)
            if column is not None:
                columns.append(column)
                amounts.append(value)
        logits = self.bias.copy()
        if columns:
            index = np.array(columns, dtype=np.intp)
            values = np.array(amounts, dtype=float)
            logits += values @ self.weights[index]
        logits -= logits.max()
        exp = np.exp(logits)
        probs = exp / exp.sum()
        result = dict(zip(self.actions, probs.tolist(), strict=True))
        if len(self._cache) >= CACHE_SIZE:
            self._cache.pop(next(iter(self._cache)))  # the oldest entry
        self._cache[key] = result
        return dict(result)

    def predict(self, states: Sequence[State], hidden: Sequence[bool] | None = None, *,
                exclude: str | None = None, seen: Sequence[State] | None = None) -> PolicyVote | None:
        probs = self.probabilities(states, hidden, seen=seen)
        if exclude is not None:
            probs.pop(exclude, None)
        if not probs:
            return None
        action = max(probs, key=probs.__getitem__)
        return PolicyVote(action, probs[action], self.name, self.priority)
