"""A Rasa 3.x project on disk: domain, config, training data, test stories, endpoints.

Layout as ``rasa init`` creates it: ``domain.yml`` (or ``domain/``), ``config.yml``,
``data/`` (nlu, stories, rules; files named ``test_*`` are test stories), ``tests/``,
``actions/`` (a rasa-sdk package) and ``endpoints.yml``. Switchboard reads an optional
``switchboard:`` section of ``config.yml`` for its own settings; Rasa ignores it:

- ``actions``: the actions package (folder or ``.py`` file), relative to the project,
  when it is not ``actions/`` next to ``domain.yml``; imported as ``actions`` either way.
- ``action_timeout``: seconds a custom action may run (default 10).
- ``handoff_intents``: intents that hand the customer to a person (default ``human_handoff``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.rasa.domain import Domain, load_domain
from core.rasa.nlu_data import NluData, parse_nlu
from core.rasa.stories import StoryData, parse_story_doc
from core.rasa.yamlio import LDict, LList, RasaFileError, line_of, load_yaml, plain

YAML_SUFFIXES = (".yml", ".yaml")


@dataclass(frozen=True, slots=True)
class ProjectConfig:
    """What Switchboard takes from ``config.yml``."""

    language: str = "en"
    fallback_threshold: float = 0.3
    ambiguity_threshold: float = 0.1
    core_fallback_threshold: float = 0.3
    core_fallback_action: str = "action_default_fallback"
    memo_max_history: int = 5
    augmented_memoization: bool = False
    restrict_rules: bool = True
    handoff_intents: tuple[str, ...] = ("human_handoff",)
    actions_path: str | None = None  # switchboard.actions: the actions package, relative to the project
    action_timeout: float = 10.0
    pipeline: tuple[dict[str, Any], ...] = ()
    policies: tuple[dict[str, Any], ...] = ()
    pipeline_lines: tuple[int, ...] = ()  # config.yml line of each pipeline component
    policy_lines: tuple[int, ...] = ()


@dataclass(slots=True)
class RasaProject:
    root: Path
    domain: Domain
    config: ProjectConfig
    nlu: NluData
    stories: StoryData
    test_files: list[Path] = field(default_factory=list)
    data_files: list[Path] = field(default_factory=list)
    action_endpoint: str | None = None

    def display(self, path: Path) -> str:
        return str(path.relative_to(self.root)) if path.is_relative_to(self.root) else str(path)

    def nlu_fingerprint(self, extra: str = "") -> str:
        """A hash of everything the NLU model learns from; a change means retraining."""
        payload = {
            "examples": [(e.text, e.intent, e.language, [(s.entity, s.start, s.end, s.value, s.role, s.group) for s in e.entities]) for e in self.nlu.examples],
            "synonyms": sorted(self.nlu.synonyms.items()),
            "regexes": self.nlu.regexes,
            "lookups": sorted((k, sorted(v)) for k, v in self.nlu.lookups.items()),
            "language": self.config.language,
            "pipeline": self.config.pipeline,
            "extra": extra,
        }
        blob = json.dumps(payload, sort_keys=True, default=str).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()[:24]

    @property
    def actions_dir(self) -> Path | None:
        """The package imported as ``actions``: ``switchboard.actions`` or ``actions/`` / ``actions.py``."""
        if self.config.actions_path:
            return (self.root / self.config.actions_path).resolve()
        for candidate in (self.root / "actions", self.root / "actions.py"):
            if candidate.exists():
                return candidate
        return None


NUMERIC_SETTINGS = frozenset({"threshold", "ambiguity_threshold", "core_fallback_threshold", "max_history", "timeout"})


def _pick(component_list: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((c for c in component_list if c.get("name") == name), None)


def parse_config(doc: Any, *, file: str, root: Path | None = None) -> ProjectConfig:
    """``config.yml`` as Switchboard uses it; ``root`` (the project) checks ``switchboard.actions`` exists."""
    try:
        return _parse_config(doc, file=file, root=root)
    except (TypeError, ValueError) as exc:  # e.g. a threshold that is not a number
        raise RasaFileError(f"a setting has the wrong type ({exc})", file=file, line=line_of(doc, 1)) from exc


def _parse_config(doc: Any, *, file: str, root: Path | None) -> ProjectConfig:
    if doc is None:
        doc = LDict()
    if not isinstance(doc, LDict):
        raise RasaFileError("expected a mapping at the top level", file=file, line=line_of(doc, 1))
    pipeline_raw = doc.get("pipeline")
    policies_raw = doc.get("policies")
    for key, value in (("pipeline", pipeline_raw), ("policies", policies_raw)):
        if value is None or isinstance(value, str):
            continue
        if not isinstance(value, list) or not all(isinstance(c, dict) and "name" in c for c in value):
            raise RasaFileError(f"'{key}' must be a list of components with a 'name'", file=file, line=doc.line_of(key))
    for component in (c for raw in (pipeline_raw, policies_raw) if isinstance(raw, LList) for c in raw):
        for key in NUMERIC_SETTINGS & set(component):
            value = component[key]
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise RasaFileError(f"{component['name']}: '{key}' must be a number, not {value!r}", file=file, line=component.line_of(key))
    pipeline: list[dict[str, Any]] = plain(pipeline_raw) if isinstance(pipeline_raw, list) else []
    policies: list[dict[str, Any]] = plain(policies_raw) if isinstance(policies_raw, list) else []
    threshold, ambiguity = 0.3, 0.1  # Rasa's default pipeline ends with FallbackClassifier(0.3, 0.1)
    if pipeline:
        fallback = _pick(pipeline, "FallbackClassifier")
        threshold = float(fallback.get("threshold", 0.3)) if fallback else 0.0
        ambiguity = float(fallback.get("ambiguity_threshold", 0.1)) if fallback else 0.0
    rule = _pick(policies, "RulePolicy") or {}
    memo = _pick(policies, "MemoizationPolicy")
    augmented = _pick(policies, "AugmentedMemoizationPolicy")
    memo_conf = augmented or memo or {}
    extra = doc.get("switchboard")
    if extra is None:
        extra = LDict()
        extra.lines = {}
    if not isinstance(extra, LDict):
        raise RasaFileError("'switchboard' must be a mapping", file=file, line=doc.line_of("switchboard"))
    handoff = extra.get("handoff_intents", ["human_handoff"])
    actions_path = extra.get("actions")
    if actions_path is not None and not isinstance(actions_path, str):
        raise RasaFileError("'switchboard.actions' must be a path to the actions package", file=file, line=extra.line_of("actions"))
    if actions_path and root is not None and not (root / actions_path).exists():
        raise RasaFileError(f"'switchboard.actions': {(root / actions_path).resolve()} not found", file=file, line=extra.line_of("actions"))
    timeout = extra.get("action_timeout", 10.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise RasaFileError("'switchboard.action_timeout' must be seconds (a number > 0)", file=file, line=extra.line_of("action_timeout"))
    return ProjectConfig(
        language=str(doc.get("language", "en")),
        fallback_threshold=threshold,
        ambiguity_threshold=ambiguity,
        core_fallback_threshold=float(rule.get("core_fallback_threshold", 0.3)),
        core_fallback_action=str(rule.get("core_fallback_action_name", "action_default_fallback")),
        memo_max_history=int(memo_conf.get("max_history") or 5),
        augmented_memoization=augmented is not None,
        restrict_rules=bool(rule.get("restrict_rules", True)),
        handoff_intents=tuple(str(i) for i in (handoff or [])),
        actions_path=str(actions_path) if actions_path else None,
        action_timeout=float(timeout),
        pipeline=tuple(pipeline),
        policies=tuple(policies),
        pipeline_lines=tuple(pipeline_raw.line_of(i) for i in range(len(pipeline))) if isinstance(pipeline_raw, LList) else (),
        policy_lines=tuple(policies_raw.line_of(i) for i in range(len(policies))) if isinstance(policies_raw, LList) else (),
    )


_ENV = re.compile(r"\$\{([^}]+)\}")


def _expand_env(value: str, *, file: str, line: int) -> str:
    """``${VAR}`` from the environment, as Rasa expands endpoints.yml."""
    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise RasaFileError(f"environment variable {name} is not set", file=file, line=line)
        return os.environ[name]

    return _ENV.sub(substitute, value)


def _yaml_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file())


def load_project(root: Path) -> RasaProject:
    """Load and parse a project; raises `RasaFileError` (file:line: problem) on the first bad file."""
    root = root.resolve()
    if not root.is_dir():
        raise RasaFileError("project directory not found", file=str(root))
    domain_path = next((p for p in (root / "domain.yml", root / "domain.yaml", root / "domain") if p.exists()), None)
    if domain_path is None:
        raise RasaFileError("no domain.yml in the project", file=str(root))
    domain = load_domain(domain_path, root=root)
    config_path = next((p for p in (root / "config.yml", root / "config.yaml") if p.exists()), None)
    config = parse_config(load_yaml(config_path, display=config_path.name) if config_path else None, file="config.yml", root=root)
    nlu, stories = NluData(), StoryData()
    data_files, test_files = [], []
    for path in _yaml_files(root / "data"):
        if path.name.startswith("test_"):
            test_files.append(path)
            continue
        data_files.append(path)
        display = str(path.relative_to(root))
        doc = load_yaml(path, display=display)
        if doc is None:
            continue
        if not isinstance(doc, LDict):
            raise RasaFileError("expected a mapping at the top level", file=display, line=line_of(doc, 1))
        nlu.merge(parse_nlu(doc.get("nlu"), file=display))
        stories.merge(parse_story_doc(doc, file=display))
    test_files.extend(_yaml_files(root / "tests"))
    endpoint = None
    endpoints_path = root / "endpoints.yml"
    if endpoints_path.is_file():
        doc = load_yaml(endpoints_path, display="endpoints.yml")
        section = doc.get("action_endpoint") if isinstance(doc, LDict) else None
        if isinstance(section, LDict) and section.get("url"):
            endpoint = _expand_env(str(section["url"]), file="endpoints.yml", line=section.line_of("url"))
    return RasaProject(root, domain, config, nlu, stories, test_files, data_files, endpoint)
