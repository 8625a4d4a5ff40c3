"""The intent classifier: a one-vs-rest linear SVM on `FeatureSpace` features, its scores
turned into confidences by a softmax with a temperature.

Training uses scikit-learn (liblinear, ~10 s for CLINC150's 15,000 examples, against
~35 s for the multinomial logistic regression it replaced, and ~0.3 points more
accurate there); prediction uses the learnt weights directly (a gather and a sum over
the message's few hundred non-zero features), which is ~10x faster than
``pipeline.predict`` and gives the same labels.

SVM scores live around [-1, 1] (the margin), so ``softmax(score / temperature)`` with
``temperature`` 0.4 gives confidences on the scale Rasa's FallbackClassifier
thresholds (0.3 and so on) expect; the same confidence is the out-of-scope score.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from core.nlu.features import FeatureSpace, fit_space

DEFAULT_TEMPERATURE = 0.4


@dataclass(slots=True)
class IntentClassifier:
    space: FeatureSpace
    labels: list[str]
    weights: np.ndarray  # (features, labels), float32
    bias: np.ndarray  # (labels,)
    temperature: float = 1.0  # confidences are softmax(scores / temperature)

    @classmethod
    def train(
        cls,
        texts: Sequence[str],
        labels: Sequence[str],
        extras: Sequence[Iterable[str]] | None = None,
        *,
        C: float = 1.0,
        min_df: int = 1,
        temperature: float = DEFAULT_TEMPERATURE,
    ) -> IntentClassifier:
        """Fit the feature space and a one-vs-rest linear SVM (squared hinge, ``C``) on it."""
        from sklearn.svm import LinearSVC

        extras_list = [list(e) for e in extras] if extras else None
        space = fit_space(texts, extras_list, min_df=min_df)
        names = sorted(set(labels))
        if len(names) == 1:
            return cls(space, names, np.zeros((space.size, 1), np.float32), np.zeros(1, np.float32), temperature)
        X = space.transform(texts, extras_list)
        position = {name: i for i, name in enumerate(names)}
        y = np.array([position[label] for label in labels])
        model = LinearSVC(C=C, max_iter=5000, tol=1e-4)
        model.fit(X, y)
        coef, intercept = model.coef_, model.intercept_
        if len(names) == 2:  # a binary SVM keeps one row (positive = second class); score both
            coef = np.vstack([-coef[0], coef[0]])
            intercept = np.array([-intercept[0], intercept[0]])
        weights = np.ascontiguousarray(coef.T, dtype=np.float32)
        return cls(space, names, weights, intercept.astype(np.float32), temperature)

    def logits(self, indices: list[int], values: list[float]) -> np.ndarray:
        """Raw per-intent scores (SVM margins) of one featurised message."""
        if indices:
            result: np.ndarray = np.asarray(values, dtype=np.float32) @ self.weights[indices] + self.bias
            return result
        return self.bias.copy()

    def scores(self, indices: list[int], values: list[float]) -> np.ndarray:
        """Confidences (softmax of the scores with the temperature), summing to 1."""
        logits = self.logits(indices, values) / self.temperature
        logits = logits - logits.max()
        exp = np.exp(logits)
        result: np.ndarray = exp / exp.sum()
        return result

    def predict(self, text: str, extra: Iterable[str] = ()) -> list[tuple[str, float]]:
        """(intent, probability) for every intent, best first."""
        indices, values = self.space.transform_one(text, extra)
        probs = self.scores(indices, values)
        order = np.argsort(-probs)
        return [(self.labels[i], float(probs[i])) for i in order]

    def predict_batch(self, texts: Sequence[str], extras: Sequence[Iterable[str]] | None = None) -> np.ndarray:
        X = self.space.transform(texts, extras)
        logits = (np.asarray(X @ self.weights) + self.bias) / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        result: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
        return result


def entropy(probs: Sequence[float]) -> float:
    return -sum(p * math.log(p) for p in probs if p > 0)
