"""Builds the policy ensemble a project's ``config.yml`` asks for, and caches the trained part.

Policies are read from ``project.config.policies`` (Rasa's raw dicts): ``RulePolicy``,
``MemoizationPolicy``, ``AugmentedMemoizationPolicy``, and ``TEDPolicy`` /
``UnexpecTEDIntentPolicy``, which both map onto `MlPolicy` (``max_history`` and
``epochs`` are read; UnexpecTED never predicts ``action_unlikely_intent`` here).
No ``policies`` means Rasa's defaults (Memoization, Rule, TED). The ML weights are
saved in the model directory under a hash of domain, stories, rules, config and NLU.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from core.dialogue.ensemble import PolicyEnsemble
from core.dialogue.ml import MlPolicy
from core.dialogue.policies import MemoizationPolicy, RulePolicy, rule_only_features
from core.dialogue.training import Example, IntentOf, examples, rule_trackers, story_trackers
from core.errors import DialogueError
from core.rasa.project import RasaProject

log = structlog.get_logger(__name__)

DEFAULT_POLICIES: tuple[dict[str, Any], ...] = (
    {"name": "MemoizationPolicy"}, {"name": "RulePolicy"}, {"name": "TEDPolicy"},
)
ML_NAMES = {"TEDPolicy", "UnexpecTEDIntentPolicy"}
KNOWN = {"RulePolicy", "MemoizationPolicy", "AugmentedMemoizationPolicy", *ML_NAMES}
FORMAT = 5


@dataclass(frozen=True, slots=True)
class PolicySettings:
    rule: dict[str, Any] | None
    memo: dict[str, Any] | None
    augmented: bool
    ml: dict[str, Any] | None
    unknown: tuple[str, ...] = ()


def read_policies(raw: tuple[dict[str, Any], ...]) -> PolicySettings:
    policies = raw or DEFAULT_POLICIES
    by_name = {str(p.get("name")): dict(p) for p in policies}
    memo = by_name.get("AugmentedMemoizationPolicy") or by_name.get("MemoizationPolicy")
    ml = by_name.get("TEDPolicy") or by_name.get("UnexpecTEDIntentPolicy")
    return PolicySettings(
        rule=by_name.get("RulePolicy"), memo=memo, augmented="AugmentedMemoizationPolicy" in by_name, ml=ml,
        unknown=tuple(n for n in by_name if n not in KNOWN),
    )


def fingerprint(project: RasaProject, nlu_fingerprint: str) -> str:
    payload = {
        "format": FORMAT,
        "domain": project.domain.as_rasa_dict(),
        "stories": repr(project.stories.stories),
        "rules": repr(project.stories.rules),
        "policies": project.config.policies,
        "nlu": nlu_fingerprint,
    }
    blob = json.dumps(payload, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:24]


def _check_rules(project: RasaProject, restrict: bool) -> None:
    if not restrict:
        return
    too_long = [f"{r.file}:{r.line}: rule '{r.name}'" for r in project.stories.rules
                if sum(1 for s in r.steps if s.kind == "intent") > 1]
    if too_long:
        raise DialogueError(
            "rules with more than one user message (Rasa's restrict_rules; use stories, or set "
            "'restrict_rules: false' on RulePolicy):\n" + "\n".join(too_long))


def build_ensemble(project: RasaProject, *, intent_of: IntentOf | None, model_dir: Path | None,
                   nlu_fingerprint: str = "", seed: int = 42) -> tuple[PolicyEnsemble, bool]:
    """The project's ensemble; True when the ML policy was trained (not loaded from ``model_dir``)."""
    started = time.perf_counter()
    settings = read_policies(project.config.policies)
    config = project.config
    rule_conf = settings.rule or {}
    _check_rules(project, bool(rule_conf.get("restrict_rules", True)) and settings.rule is not None)
    domain = project.domain
    stories = story_trackers(project.stories.stories, domain, intent_of=intent_of,
                             augmentation_factor=int((settings.ml or {}).get("augmentation_factor", 50)) if settings.ml else 0,
                             seed=seed)
    rules = rule_trackers(project.stories.rules, domain, intent_of=intent_of)
    story_examples: list[Example] = [e for t in stories for e in examples(t, domain)]
    original = [e for e in story_examples if not e.tracker.is_augmented]
    rule_examples: list[Example] = [e for t in rules for e in examples(t, domain)]
    rule_only = rule_only_features(rule_examples, original)
    rule_policy = None
    if settings.rule is not None:
        rule_policy = RulePolicy(
            rule_examples, original,
            core_fallback_threshold=float(rule_conf.get("core_fallback_threshold", config.core_fallback_threshold)),
            core_fallback_action=str(rule_conf.get("core_fallback_action_name", config.core_fallback_action)),
            enable_fallback_prediction=bool(rule_conf.get("enable_fallback_prediction", True)),
        )
        rule_policy.learn_story_usage(original)
    memo = None
    if settings.memo is not None:
        memo = MemoizationPolicy(original, max_history=int(settings.memo.get("max_history") or 5),
                                 augmented=settings.augmented, rule_only=rule_only)
    ml = None
    trained = False
    if settings.ml is not None:
        ml = MlPolicy(max_history=int(settings.ml.get("max_history") or 5),
                      epochs=int(settings.ml.get("epochs") or 200), rule_only=rule_only,
                      slot_names=[n for n, s in domain.slots.items() if s.influence_conversation and s.type != "any"])
        path = model_dir / f"dialogue-{fingerprint(project, nlu_fingerprint)}.npz" if model_dir else None
        if path is not None and path.is_file():
            _load(ml, path)
        else:
            ml.train(story_examples)
            trained = True
            if path is not None:
                _save(ml, path)
    log.info("dialogue.policies", rules=len(rule_policy.rules.lookup) if rule_policy else 0,
             memorised=len(memo.lookup) if memo else 0, trained=trained, unknown=list(settings.unknown),
             seconds=round(time.perf_counter() - started, 3))
    return PolicyEnsemble(rule_policy, memo, ml), trained


def _save(ml: MlPolicy, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = json.dumps({"vocabulary": ml.vocabulary, "actions": ml.actions})
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, weights=ml.weights, bias=ml.bias, meta=np.array(meta))
    tmp.replace(path)


def _load(ml: MlPolicy, path: Path) -> None:
    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
        ml.vocabulary = dict(meta["vocabulary"])
        ml.actions = list(meta["actions"])
        ml.weights = np.array(data["weights"])
        ml.bias = np.array(data["bias"])


def nlu_intent_of(parse: Callable[[str], Any]) -> IntentOf:
    """Maps a story's ``user:`` text to an intent (and entities) through the NLU."""

    def intent_of(text: str) -> tuple[str | None, list[dict[str, object]]]:
        result = parse(text)
        return result.intent, [dict(e) for e in result.entities]

    return intent_of
