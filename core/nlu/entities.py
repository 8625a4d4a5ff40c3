"""Entity extraction: regexes and lookup tables named after entities, a trained token
tagger for annotated entities, and synonym mapping (Rasa's RegexEntityExtractor,
CRFEntityExtractor and EntitySynonymMapper, in small form).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.rasa.nlu_data import EntitySpan, Example

_TOKEN = re.compile(r"\w+(?:[-.]\w+)*", re.UNICODE)


def tokens_with_offsets(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(0), m.start(), m.end()) for m in _TOKEN.finditer(text)]


@dataclass(slots=True)
class PatternExtractor:
    """Regexes and lookup tables whose name is an entity of the domain."""

    patterns: list[tuple[str, re.Pattern[str]]]

    @classmethod
    def build(cls, regexes: Sequence[tuple[str, str]], lookups: dict[str, list[str]], entities: Iterable[str]) -> PatternExtractor:
        wanted = set(entities)
        patterns = [(name, re.compile(p, re.IGNORECASE)) for name, p in regexes if name in wanted]
        for name, values in lookups.items():
            if name in wanted and values:
                alternatives = "|".join(re.escape(v) for v in sorted(values, key=len, reverse=True))
                patterns.append((name, re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)))
        return cls(patterns)

    def extract(self, text: str) -> list[EntitySpan]:
        found = []
        for name, pattern in self.patterns:
            for match in pattern.finditer(text):
                if match.end() > match.start():
                    found.append(EntitySpan(name, match.start(), match.end(), match.group(0), match.group(0)))
        return found


def feature_names(regexes: Sequence[tuple[str, str]], lookups: dict[str, list[str]]) -> list[tuple[str, re.Pattern[str]]]:
    """Every regex and lookup table as a binary classifier feature (Rasa's RegexFeaturizer)."""
    compiled = [(f"re:{name}", re.compile(p, re.IGNORECASE)) for name, p in regexes]
    for name, values in lookups.items():
        if values:
            alternatives = "|".join(re.escape(v) for v in sorted(values, key=len, reverse=True))
            compiled.append((f"lookup:{name}", re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)))
    return compiled


def _shape(token: str) -> str:
    shape = re.sub(r"[A-ZÄÖÜ]", "X", token)
    shape = re.sub(r"[a-zäöüß]", "x", shape)
    shape = re.sub(r"\d", "d", shape)
    return re.sub(r"(.)\1+", r"\1\1", shape)


def token_features(tokens: Sequence[str], i: int) -> list[str]:
    token = tokens[i]
    low = token.casefold()
    feats = [f"w={low}", f"s3={low[-3:]}", f"p3={low[:3]}", f"sh={_shape(token)}", "bias"]
    feats.append(f"-1={tokens[i - 1].casefold()}" if i > 0 else "BOS")
    feats.append(f"+1={tokens[i + 1].casefold()}" if i + 1 < len(tokens) else "EOS")
    if i > 1:
        feats.append(f"-2={tokens[i - 2].casefold()}")
    return feats


@dataclass(slots=True)
class TokenTagger:
    """A linear BIO tagger over hand-made token features (greedy decoding)."""

    vocab: dict[str, int]
    labels: list[str]
    weights: np.ndarray  # (features, labels)
    bias: np.ndarray

    @classmethod
    def train(cls, examples: Sequence[Example]) -> TokenTagger | None:
        from sklearn.linear_model import LogisticRegression

        rows: list[list[str]] = []
        targets: list[str] = []
        for example in examples:
            toks = tokens_with_offsets(example.text)
            words = [t for t, _, _ in toks]
            for i, (_, start, end) in enumerate(toks):
                label = "O"
                for span in example.entities:
                    if start >= span.start and end <= span.end:
                        label = ("B-" if start == span.start else "I-") + span.entity
                        break
                rows.append(token_features(words, i))
                targets.append(label)
        labels = sorted(set(targets))
        if len(labels) < 2:
            return None
        vocab: dict[str, int] = {}
        for feats in rows:
            for f in feats:
                vocab.setdefault(f, len(vocab))
        import scipy.sparse as sp

        indptr: list[int] = [0]
        indices: list[int] = []
        for feats in rows:
            indices.extend(vocab[f] for f in feats)
            indptr.append(len(indices))
        X = sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(len(rows), len(vocab)))
        y = np.array([labels.index(t) for t in targets])
        clf = LogisticRegression(C=5.0, max_iter=500, class_weight="balanced").fit(X, y)
        coef = clf.coef_ if len(labels) > 2 else np.vstack([-clf.coef_[0], clf.coef_[0]])
        intercept = clf.intercept_ if len(labels) > 2 else np.array([-clf.intercept_[0], clf.intercept_[0]])
        return cls(vocab, labels, coef.T.astype(np.float32), intercept.astype(np.float32))

    def extract(self, text: str) -> list[EntitySpan]:
        toks = tokens_with_offsets(text)
        words = [t for t, _, _ in toks]
        spans: list[EntitySpan] = []
        current: list[Any] | None = None  # [entity, start, end]
        for i, (_, start, end) in enumerate(toks):
            idx = [self.vocab[f] for f in token_features(words, i) if f in self.vocab]
            scores = self.weights[idx].sum(axis=0) + self.bias
            label = self.labels[int(np.argmax(scores))]
            if label == "O":
                current = None
                continue
            kind, entity = label.split("-", 1)
            if kind == "I" and current is not None and current[0] == entity:
                current[2] = end
                spans[-1] = EntitySpan(entity, current[1], end, text[current[1]:end], text[current[1]:end])
            else:
                current = [entity, start, end]
                spans.append(EntitySpan(entity, start, end, text[start:end], text[start:end]))
        return spans

    def to_dict(self) -> dict[str, Any]:
        return {"vocab": self.vocab, "labels": self.labels}

    @classmethod
    def from_parts(cls, meta: dict[str, Any], weights: np.ndarray, bias: np.ndarray) -> TokenTagger:
        return cls(meta["vocab"], meta["labels"], weights, bias)


def apply_synonyms(spans: Iterable[EntitySpan], synonyms: dict[str, str]) -> list[EntitySpan]:
    out = []
    for span in spans:
        value = span.value
        if isinstance(value, str) and value.casefold() in synonyms:
            value = synonyms[value.casefold()]
        out.append(EntitySpan(span.entity, span.start, span.end, value, span.text, span.role, span.group))
    return out


def merge_spans(preferred: Sequence[EntitySpan], others: Sequence[EntitySpan]) -> list[EntitySpan]:
    """Keep ``preferred`` spans and the ``others`` that do not overlap them."""
    result = list(preferred)
    for span in others:
        if all(span.end <= p.start or span.start >= p.end for p in preferred):
            result.append(span)
    return sorted(result, key=lambda s: s.start)
