"""What Switchboard does with each Rasa 3.x pipeline component and policy in ``config.yml``.

Switchboard runs its own NLU (word + character n-gram features, a linear intent
classifier, a CRF-like entity tagger, regexes, lookups, synonyms, Rasa's fallback
thresholds, Duckling) and its own policies, whatever the pipeline lists. `component_notes`
names every listed component Switchboard does not run as such, with what happens instead;
``switchboard check`` prints them as warnings (Rasa accepts them, so they are never errors).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Run as named (or with the same behaviour): no note.
RUN_AS_IS = frozenset({
    "WhitespaceTokenizer", "RegexFeaturizer", "CountVectorsFeaturizer", "LexicalSyntacticFeaturizer",
    "RegexEntityExtractor", "CRFEntityExtractor", "EntitySynonymMapper", "FallbackClassifier",
    "DucklingEntityExtractor", "RulePolicy", "MemoizationPolicy", "AugmentedMemoizationPolicy",
})

_LINEAR = "Switchboard's linear intent classifier (word and character n-grams) takes its place"
_NO_LANGUAGE_MODEL = ("is not supported and ignored: no pretrained language model is loaded; the intent classifier "
                      "uses word and character n-gram features, so it knows only words like those in nlu.yml")
_SPACY = "is not supported and ignored (spaCy is not installed or loaded)"
_MITIE = "is not supported and ignored (MITIE is not loaded)"
_RASA2 = "is a Rasa 2 policy (Rasa 3 no longer has it); RulePolicy and forms cover it in Switchboard"
_ML_POLICY = ("is not run; Switchboard's machine-learned dialogue policy takes its place "
              "(trained in seconds on the same stories, rules and forms)")

NOTES: dict[str, str] = {
    "TEDPolicy": _ML_POLICY,
    "UnexpecTEDIntentPolicy": _ML_POLICY + "; action_unlikely_intent is never predicted",
    "DIETClassifier": ("is not run; " + _LINEAR + ", and Switchboard's CRF-like entity extractor "
                       "learns the entities annotated in nlu.yml"),
    "LogisticRegressionClassifier": "is not run as such; " + _LINEAR,
    "SklearnIntentClassifier": "is not run as such; " + _LINEAR,
    "KeywordIntentClassifier": "is not run as such; " + _LINEAR,
    "MitieIntentClassifier": _MITIE + "; " + _LINEAR,
    "ResponseSelector": ("is not supported: retrieval intents (e.g. faq/ask_name) are classified as intents of their "
                         "own, so rules and stories on 'faq' do not match them and no utter_faq/... response is "
                         "chosen; give each question an ordinary intent and response"),
    "SpacyNLP": _SPACY + "; Switchboard's own tokenizer and features are used",
    "SpacyTokenizer": _SPACY + "; Switchboard tokenizes on its own (words and character n-grams)",
    "SpacyFeaturizer": _SPACY + "; there are no word vectors, so words unseen in nlu.yml carry no meaning",
    "SpacyEntityExtractor": (_SPACY + "; its pretrained entities (PERSON, ORG, GPE, DATE, ...) are not extracted: "
                             "annotate examples in nlu.yml for the CRF-like extractor, or use "
                             "DucklingEntityExtractor for dates, numbers and amounts"),
    "MitieNLP": _MITIE,
    "MitieTokenizer": _MITIE + "; Switchboard tokenizes on its own",
    "MitieFeaturizer": _MITIE + "; there are no word vectors",
    "MitieEntityExtractor": _MITIE + "; the CRF-like extractor learns the entities annotated in nlu.yml",
    "JiebaTokenizer": ("is not supported and ignored: Chinese text is not segmented into words; "
                       "character n-grams carry the intent classifier"),
    "ConveRTTokenizer": _NO_LANGUAGE_MODEL,
    "ConveRTFeaturizer": _NO_LANGUAGE_MODEL,
    "LanguageModelTokenizer": _NO_LANGUAGE_MODEL,
    "LanguageModelFeaturizer": _NO_LANGUAGE_MODEL,
    "HFTransformersNLP": _NO_LANGUAGE_MODEL,
    "FormPolicy": _RASA2,
    "MappingPolicy": _RASA2,
    "FallbackPolicy": _RASA2 + " (FallbackClassifier and RulePolicy's core_fallback_threshold)",
    "TwoStageFallbackPolicy": _RASA2 + " (action_two_stage_fallback runs from rules)",
    "SklearnPolicy": _RASA2.replace("RulePolicy and forms cover", "the machine-learned dialogue policy covers"),
    "KerasPolicy": _RASA2.replace("RulePolicy and forms cover", "the machine-learned dialogue policy covers"),
}


def supported_note(component: dict[str, Any]) -> str | None:
    """What a supported component that talks to the outside does (``check`` prints it as a note)."""
    if component.get("name") == "DucklingEntityExtractor":
        url = component.get("url") or "(no url: set it, or RASA_DUCKLING_HTTP_URL)"
        dims = ", ".join(str(d) for d in component.get("dimensions") or []) or "all dimensions"
        return (f"is supported: each message is sent to the Duckling server at {url} ({dims}); "
                "when it is unreachable the turn goes on without Duckling entities and a warning is logged")
    return None


def component_note(name: str) -> str | None:
    """What happens instead of ``name``; None when Switchboard runs it."""
    if name in RUN_AS_IS:
        return None
    if name in NOTES:
        return NOTES[name]
    return "is a component Switchboard does not know; it is not run"


def component_notes(components: Sequence[dict[str, Any]], lines: Sequence[int], *, file: str,
                    supported: bool = False) -> list[str]:
    """``file:line: <name> <what happens instead>`` for each component not run as is
    (``supported``: the notes on supported components instead)."""
    notes = []
    for index, component in enumerate(components):
        name = str(component.get("name"))
        note = supported_note(component) if supported else component_note(name)
        if note is not None:
            line = lines[index] if index < len(lines) else 0
            notes.append(f"{file}:{line}: {name} {note}" if line else f"{file}: {name} {note}")
    return notes
