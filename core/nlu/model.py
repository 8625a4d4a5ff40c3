"""The trained NLU model of one bot: intents, entities, language; saved to and loaded from disk.

A model directory is named after the fingerprint of the training data
(``nlu-<hash>``), so a changed nlu.yml or config.yml trains a new model and an
unchanged project loads the saved one. ``parse`` applies Rasa's FallbackClassifier
semantics: below ``threshold``, or when the two best intents are closer than
``ambiguity_threshold``, the intent is ``nlu_fallback`` with confidence = threshold.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import structlog

from core.nlu.classifier import IntentClassifier
from core.nlu.entities import (
    PatternExtractor,
    TokenTagger,
    apply_synonyms,
    feature_names,
    merge_spans,
)
from core.nlu.features import FeatureSpace
from core.nlu.language import LanguageDetector, LocalLanguageModel
from core.rasa.nlu_data import EntitySpan, NluData

if TYPE_CHECKING:
    from core.nlu.duckling import DucklingExtractor

log = structlog.get_logger(__name__)

FALLBACK_INTENT = "nlu_fallback"
MODEL_FORMAT = "switchboard-nlu-3"  # 2: SVM + temperature, word-pair features; 3: + reject margin (calibrated)


@dataclass(frozen=True, slots=True)
class Parse:
    """One message understood; ``parse_data`` is Rasa's shape of it."""

    text: str
    intent: str | None
    confidence: float
    ranking: tuple[tuple[str, float], ...] = ()
    entities: tuple[dict[str, Any], ...] = ()

    def parse_data(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "intent": {"name": self.intent, "confidence": self.confidence},
            "entities": [dict(e) for e in self.entities],
            "intent_ranking": [{"name": n, "confidence": c} for n, c in self.ranking],
        }


@dataclass(slots=True)
class NluModel:
    classifier: IntentClassifier | None
    patterns: PatternExtractor
    feature_patterns: list[tuple[str, Any]]
    synonyms: dict[str, str]
    tagger: TokenTagger | None = None
    language_model: LocalLanguageModel | None = None
    threshold: float = 0.3
    ambiguity_threshold: float = 0.1
    fingerprint: str = ""
    regexes: list[tuple[str, str]] = field(default_factory=list)
    lookups: dict[str, list[str]] = field(default_factory=dict)
    entities: list[str] = field(default_factory=list)
    duckling: DucklingExtractor | None = None  # from config.yml's pipeline; not trained, not saved

    # ---- training -------------------------------------------------------------------------

    @classmethod
    def train(
        cls,
        data: NluData,
        *,
        entities: list[str],
        threshold: float = 0.3,
        ambiguity_threshold: float = 0.1,
        fingerprint: str = "",
        C: float = 1.0,
        min_df: int = 1,
    ) -> NluModel:
        started = time.perf_counter()
        known_entities = sorted(set(entities) | {s.entity for e in data.examples for s in e.entities})
        feature_patterns = feature_names(data.regexes, data.lookups)
        texts = [e.text for e in data.examples]
        extras = [[name for name, pattern in feature_patterns if pattern.search(t)] for t in texts]
        classifier = IntentClassifier.train(texts, [e.intent for e in data.examples], extras, C=C, min_df=min_df) if texts else None
        annotated = [e for e in data.examples if e.entities]
        tagger = TokenTagger.train(data.examples) if annotated else None
        language_model = LocalLanguageModel.train([(e.text, e.language) for e in data.examples if e.language])
        model = cls(
            classifier=classifier,
            patterns=PatternExtractor.build(data.regexes, data.lookups, known_entities),
            feature_patterns=feature_patterns,
            synonyms=dict(data.synonyms),
            tagger=tagger,
            language_model=language_model,
            threshold=threshold,
            ambiguity_threshold=ambiguity_threshold,
            fingerprint=fingerprint,
            regexes=list(data.regexes),
            lookups={k: list(v) for k, v in data.lookups.items()},
            entities=known_entities,
        )
        log.info("nlu.trained", examples=len(texts), intents=len(classifier.labels) if classifier else 0,
                 seconds=round(time.perf_counter() - started, 2))
        return model

    # ---- inference ------------------------------------------------------------------------

    def extract_entities(self, text: str) -> list[tuple[EntitySpan, str]]:
        """Entities with the name of the extractor that found them (Rasa's ``extractor``)."""
        found = [(s, "RegexEntityExtractor") for s in self.patterns.extract(text)]
        if self.tagger is not None:
            pattern_spans = [s for s, _ in found]
            found += [(s, "CRFEntityExtractor") for s in merge_spans(pattern_spans, self.tagger.extract(text)) if s not in pattern_spans]
        mapped = apply_synonyms([s for s, _ in found], self.synonyms)
        return sorted(zip(mapped, (name for _, name in found), strict=True), key=lambda item: item[0].start)

    def rank(self, text: str) -> list[tuple[str, float]]:
        if self.classifier is None:
            return []
        extra = [name for name, pattern in self.feature_patterns if pattern.search(text)] if self.feature_patterns else ()
        return self.classifier.predict(text, extra)

    def parse(self, text: str) -> Parse:
        ranking = self.rank(text)[:10]
        entities = tuple(span.as_rasa(extractor) for span, extractor in self.extract_entities(text))
        if self.duckling is not None:
            entities += tuple(self.duckling.extract(text))
        if not ranking:
            return Parse(text, None, 0.0, (), entities)
        intent, confidence = ranking[0]
        second = ranking[1][1] if len(ranking) > 1 else 0.0
        if self.threshold > 0 and (confidence < self.threshold or confidence - second < self.ambiguity_threshold):
            return Parse(text, FALLBACK_INTENT, self.threshold, ((FALLBACK_INTENT, self.threshold), *ranking), entities)
        return Parse(text, intent, confidence, tuple(ranking), entities)

    # ---- persistence ----------------------------------------------------------------------

    def save(self, directory: Path) -> Path:
        """Write the model atomically into ``directory`` (replaced if present)."""
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=directory.parent))
        meta: dict[str, Any] = {
            "format": MODEL_FORMAT,
            "fingerprint": self.fingerprint,
            "threshold": self.threshold,
            "ambiguity_threshold": self.ambiguity_threshold,
            "synonyms": self.synonyms,
            "regexes": self.regexes,
            "lookups": self.lookups,
            "entities": self.entities,
            "tagger": self.tagger.to_dict() if self.tagger else None,
            "language_model": self.language_model.to_dict() if self.language_model else None,
        }
        arrays: dict[str, np.ndarray] = {}
        if self.classifier is not None:
            space = self.classifier.space
            meta["classifier"] = {
                "labels": self.classifier.labels, "vocab": space.vocab,
                "char_low": space.char_low, "char_high": space.char_high,
                "char_weight": space.char_weight, "word_weight": space.word_weight,
                "pair_weight": space.pair_weight, "temperature": self.classifier.temperature,
                "reject_margin": self.classifier.reject_margin,
            }
            arrays.update(weights=self.classifier.weights, bias=self.classifier.bias, idf=space.idf)
        if self.tagger is not None:
            arrays.update(tagger_weights=self.tagger.weights, tagger_bias=self.tagger.bias)
        (tmp / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        np.savez(tmp / "arrays.npz", **arrays)  # type: ignore[arg-type]
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(tmp, directory)
        return directory

    @classmethod
    def load(cls, directory: Path) -> NluModel:
        meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
        if meta.get("format") != MODEL_FORMAT:
            raise ValueError(f"{directory}: unknown model format {meta.get('format')!r}")
        with np.load(directory / "arrays.npz") as npz:
            arrays = {k: npz[k] for k in npz.files}
        classifier = None
        if meta.get("classifier"):
            c = meta["classifier"]
            space = FeatureSpace(c["vocab"], arrays["idf"], c["char_low"], c["char_high"], c["char_weight"], c["word_weight"], c["pair_weight"])
            classifier = IntentClassifier(space, c["labels"], arrays["weights"], arrays["bias"], c["temperature"], c.get("reject_margin"))
        tagger = TokenTagger.from_parts(meta["tagger"], arrays["tagger_weights"], arrays["tagger_bias"]) if meta.get("tagger") else None
        regexes: list[tuple[str, str]] = [(str(r[0]), str(r[1])) for r in meta["regexes"]]
        return cls(
            classifier=classifier,
            patterns=PatternExtractor.build(regexes, meta["lookups"], meta["entities"]),
            feature_patterns=feature_names(regexes, meta["lookups"]),
            synonyms=meta["synonyms"],
            tagger=tagger,
            language_model=LocalLanguageModel.from_dict(meta["language_model"]) if meta.get("language_model") else None,
            threshold=meta["threshold"],
            ambiguity_threshold=meta["ambiguity_threshold"],
            fingerprint=meta["fingerprint"],
            regexes=regexes,
            lookups=meta["lookups"],
            entities=meta["entities"],
        )

    def language_detector(self, languages: list[str]) -> LanguageDetector:
        return LanguageDetector(list(languages), self.language_model)


def load_or_train(
    data: NluData,
    *,
    fingerprint: str,
    model_dir: Path,
    entities: list[str],
    threshold: float,
    ambiguity_threshold: float,
) -> tuple[NluModel, bool]:
    """The saved model for this fingerprint, or a newly trained (and saved) one; bool = trained."""
    target = model_dir / f"nlu-{fingerprint}"
    if (target / "meta.json").is_file():
        try:
            model = NluModel.load(target)
            log.info("nlu.loaded", fingerprint=fingerprint)
            return model, False
        except (ValueError, OSError, KeyError, json.JSONDecodeError) as exc:
            log.warning("nlu.load_failed", fingerprint=fingerprint, error=str(exc))
    model = NluModel.train(data, entities=entities, threshold=threshold, ambiguity_threshold=ambiguity_threshold, fingerprint=fingerprint)
    model.save(target)
    for old in model_dir.glob("nlu-*"):
        if old != target and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return model, True
