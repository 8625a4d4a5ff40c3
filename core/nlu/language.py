"""Language detection for multi-language bots.

Two opinions are combined: a small naive-Bayes model trained on this bot's own NLU
examples (intent blocks with ``metadata: {language: de}``), which knows the words
customers of this bot use ("Hallo", "Rechnung"), and lingua (general, offline). When
neither is confident (``ok``, an order number), the caller keeps the conversation's
current language.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import structlog

from core.nlu.features import char_grams, tokenize

log = structlog.get_logger(__name__)

_LINGUA_NAMES = {
    "de": "GERMAN", "en": "ENGLISH", "fr": "FRENCH", "es": "SPANISH", "it": "ITALIAN",
    "nl": "DUTCH", "pt": "PORTUGUESE", "pl": "POLISH", "tr": "TURKISH", "sv": "SWEDISH",
    "da": "DANISH", "fi": "FINNISH", "cs": "CZECH", "ru": "RUSSIAN", "uk": "UKRAINIAN",
}


@dataclass(slots=True)
class LocalLanguageModel:
    """Multinomial naive Bayes over words and character 2-4-grams of labelled examples."""

    languages: list[str]
    log_prior: dict[str, float]
    log_prob: dict[str, dict[str, float]]
    log_unseen: dict[str, float]
    _vocab: frozenset[str] = field(default=frozenset(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._vocab = frozenset().union(*(self.log_prob[lang] for lang in self.languages))

    @staticmethod
    def grams(text: str) -> list[str]:
        tokens = tokenize(text)
        return ["w:" + t for t in tokens] + char_grams(tokens, 2, 4)

    @classmethod
    def train(cls, samples: Sequence[tuple[str, str]]) -> LocalLanguageModel | None:
        languages = sorted({lang for _, lang in samples})
        if len(languages) < 2:
            return None
        counts = {lang: Counter[str]() for lang in languages}
        docs = Counter(lang for _, lang in samples)
        for text, lang in samples:
            counts[lang].update(cls.grams(text))
        vocab = set().union(*counts.values())
        log_prob, log_unseen = {}, {}
        for lang in languages:
            total = sum(counts[lang].values()) + 0.1 * len(vocab)
            log_prob[lang] = {g: math.log((c + 0.1) / total) for g, c in counts[lang].items()}
            log_unseen[lang] = math.log(0.1 / total)
        prior = {lang: math.log(docs[lang] / len(samples)) for lang in languages}
        return cls(languages, prior, log_prob, log_unseen)

    def predict(self, text: str) -> dict[str, float]:
        grams = self.grams(text)
        vocab = self._vocab
        known = [g for g in grams if g in vocab]
        if not any(g.startswith("w:") for g in known):
            return {}  # no word this bot has seen: character n-grams alone are too weak
        scores = {
            lang: self.log_prior[lang] + sum(map(self.log_prob[lang].get, known, repeat(self.log_unseen[lang], len(known))))
            for lang in self.languages
        }
        top = max(scores.values())
        # Scaled down: n-grams are not independent, raw NB is overconfident.
        exp = {lang: math.exp((s - top) / max(1.0, len(known) ** 0.5)) for lang, s in scores.items()}
        total = sum(exp.values())
        return {lang: v / total for lang, v in exp.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"languages": self.languages, "log_prior": self.log_prior, "log_prob": self.log_prob, "log_unseen": self.log_unseen}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LocalLanguageModel:
        return cls(data["languages"], data["log_prior"], data["log_prob"], data["log_unseen"])


@dataclass(slots=True)
class LanguageDetector:
    """Picks one of the bot's languages for a message, or None when unsure."""

    languages: list[str]
    local: LocalLanguageModel | None = None
    local_threshold: float = 0.8
    lingua_threshold: float = 0.8
    _lingua: Any = field(default=None, repr=False)

    def _detector(self) -> Any:
        if self._lingua is None:
            from lingua import Language, LanguageDetectorBuilder

            known = [getattr(Language, _LINGUA_NAMES[code]) for code in self.languages if code in _LINGUA_NAMES]
            if len(known) < 2:
                self._lingua = False
            else:
                self._lingua = LanguageDetectorBuilder.from_languages(*known).build()
        return self._lingua

    def warm_up(self) -> None:
        """Load lingua's models now (≈0.4 s) instead of on the first message."""
        detector = self._detector()
        if detector:
            detector.compute_language_confidence_values("warm up")

    def scores(self, text: str) -> tuple[dict[str, float], dict[str, float]]:
        local = self.local.predict(text) if self.local else {}
        lingua: dict[str, float] = {}
        detector = self._detector()
        if detector and len(text.strip()) >= 2:
            for item in detector.compute_language_confidence_values(text):
                code = item.language.iso_code_639_1.name.lower()
                lingua[code] = float(item.value)
        return local, lingua

    def distribution(self, text: str) -> dict[str, float]:
        """How likely each of the bot's languages is for ``text`` (sums to 1), or {} without evidence.

        The bot's own examples count most on short messages (they know "Moin" and "Hiya");
        lingua's weight grows with the length of the message.
        """
        if len(self.languages) < 2 or not any(ch.isalpha() for ch in text):
            return {}
        local, lingua = self.scores(text)
        lingua = {lang: lingua.get(lang, 0.0) for lang in self.languages}
        lingua_total = sum(lingua.values())
        lingua = {lang: v / lingua_total for lang, v in lingua.items()} if lingua_total > 0 else {}
        words = len(tokenize(text))
        if local and lingua:
            weight = min(0.6, 0.15 * words)
            return {lang: (1 - weight) * local.get(lang, 0.0) + weight * lingua.get(lang, 0.0) for lang in self.languages}
        if local:
            return {lang: local.get(lang, 0.0) for lang in self.languages}
        if lingua and words >= 2:
            # only lingua: its certainty on a word or two is not worth much
            shrink = min(1.0, 0.25 * words)
            uniform = 1.0 / len(self.languages)
            return {lang: shrink * v + (1 - shrink) * uniform for lang, v in lingua.items()}
        return {}

    def detect_confidence(self, text: str) -> tuple[str | None, float]:
        """The most likely of the bot's languages for ``text`` and its probability ((None, 0.0) without evidence)."""
        if len(self.languages) < 2:
            return (self.languages[0] if self.languages else None), 1.0
        dist = self.distribution(text)
        if not dist:
            return None, 0.0
        best = max(dist, key=dist.__getitem__)
        return best, dist[best]

    def detect(self, text: str) -> str | None:
        if len(self.languages) < 2:
            return self.languages[0] if self.languages else None
        if not any(ch.isalpha() for ch in text):
            return None
        local, lingua = self.scores(text)
        if local:
            best = max(local, key=local.__getitem__)
            if local[best] >= self.local_threshold:
                return best
        if lingua and len(tokenize(text)) >= 3:
            best = max(lingua, key=lingua.__getitem__)
            if lingua[best] >= self.lingua_threshold and best in self.languages:
                return best
        if local and lingua:
            mixed = {lang: 0.6 * local.get(lang, 0.0) + 0.4 * lingua.get(lang, 0.0) for lang in self.languages}
            best = max(mixed, key=mixed.__getitem__)
            if mixed[best] >= 0.75:
                return best
        return None
