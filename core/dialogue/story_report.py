"""What ``rasa test`` writes about test stories: ``story_report.json`` and ``failed_test_stories.yml``.

``story_report.json`` is sklearn's classification report over the action predictions
(plus, in text mode, intents and entities), with ``micro avg`` / ``accuracy`` completed
as Rasa completes them and ``conversation_accuracy``. ``failed_test_stories.yml`` holds
every failed conversation in story YAML, each wrong prediction marked with a
``# predicted: ...`` comment, as Rasa 3.6's YAMLStoryWriter writes them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.dialogue.story_eval import (
    LISTEN,
    SESSION_START,
    ActionCheck,
    EntityLabel,
    StoryOutcome,
    UserCheck,
)

REPORT_FILE = "story_report.json"
FAILED_FILE = "failed_test_stories.yml"
NO_FAILURES = "# None of the test stories failed - all good!"
_PLAIN_START = re.compile(r"[A-Za-z_]")  # a plain scalar may not start with YAML's indicator characters
_YAML_WORDS = {"yes", "no", "on", "off", "true", "false", "null", "y", "n", "~"}


# ---- story_report.json -------------------------------------------------------------------


def _align_entities(targets: Sequence[EntityLabel], predictions: Sequence[EntityLabel]) -> tuple[list[str], list[str]]:
    """Rasa's ``EvaluationStore.serialise``: entities of the same text paired by offsets, ``None`` where one side has none."""
    aligned_targets: list[str] = []
    aligned_predictions: list[str] = []
    for text in sorted({e.text for e in targets} | {e.text for e in predictions}):
        gold = sorted((e for e in targets if e.text == text), key=lambda e: e.start)
        found = sorted((e for e in predictions if e.text == text), key=lambda e: e.start)
        i = j = 0
        while i < len(found) or j < len(gold):
            p = found[i] if i < len(found) else None
            t = gold[j] if j < len(gold) else None
            if p is not None and (t is None or (p.start, p.end) < (t.start, t.end)):
                aligned_predictions.append(p.annotated())
                aligned_targets.append("None")
                i += 1
            elif t is not None and (p is None or (t.start, t.end) < (p.start, p.end)):
                aligned_targets.append(t.annotated())
                aligned_predictions.append("None")
                j += 1
            elif p is not None and t is not None:
                aligned_predictions.append(p.annotated())
                aligned_targets.append(t.annotated())
                i += 1
                j += 1
    return aligned_targets, aligned_predictions


def story_report(outcomes: Sequence[StoryOutcome]) -> dict[str, Any]:
    """The content of ``story_report.json``."""
    from sklearn.metrics import accuracy_score, classification_report

    actions = [c for o in outcomes for c in o.action_checks]
    users = [c for o in outcomes for c in o.user_checks]
    entity_targets = [e for c in users if c.expected_entities or c.predicted_entities for e in c.expected_entities]
    entity_predictions = [e for c in users if c.expected_entities or c.predicted_entities for e in c.predicted_entities]
    aligned_targets, aligned_predictions = _align_entities(entity_targets, entity_predictions)
    targets = [c.expected for c in actions] + [c.expected_intent or "" for c in users] + aligned_targets
    predictions = [c.predicted for c in actions] + [c.predicted_intent or "" for c in users] + aligned_predictions
    report: dict[str, Any] = {}
    if targets:
        labels = sorted(set(targets))
        report = classification_report(targets, predictions, labels=labels, output_dict=True, zero_division=0)
        accuracy = float(accuracy_score(targets, predictions))
        if "accuracy" in report and "micro avg" not in report:
            value = report["accuracy"]
            report["micro avg"] = {"precision": value, "recall": value, "f1-score": value, "support": report["macro avg"]["support"]}
        elif "accuracy" not in report:
            report["accuracy"] = accuracy
        for row in report.values():
            if isinstance(row, dict) and "support" in row:
                row["support"] = int(row["support"])
    if outcomes:
        correct = sum(o.passed for o in outcomes)
        report["conversation_accuracy"] = {
            "accuracy": correct / len(outcomes), "correct": correct, "with_warnings": 0, "total": len(outcomes),
        }
    return report


# ---- failed_test_stories.yml ---------------------------------------------------------------


def _scalar(value: Any) -> str:
    """A YAML 1.2 scalar (JSON is valid YAML: anything not plainly safe is written as JSON)."""
    if (isinstance(value, str) and _PLAIN_START.match(value) and value.lower() not in _YAML_WORDS
            and not any(bad in value for bad in (": ", " #", "\n", "\t")) and not value.endswith((":", " "))):
        return value
    return json.dumps(value, ensure_ascii=False)


def _comment(text: str | None) -> str:
    return f"  # {text}" if text else ""


def _annotate(text: str, entities: Sequence[EntityLabel]) -> str:
    """``text`` with ``[surface](entity)`` annotations, as Rasa's ``format_message`` writes it."""
    out, position = [], 0
    for entity in sorted(entities, key=lambda e: e.start):
        if entity.start < position or entity.end > len(text):
            continue
        out.append(text[position:entity.start])
        out.append(entity.annotated())
        position = entity.end
    out.append(text[position:])
    return "".join(out)


def _user_lines(intent: str | None, text: str | None, check: UserCheck | None,
                entities: list[tuple[str, Any, str | None]]) -> list[str]:
    """A user step: intent (commented when wrong), its entities (each commented when its type was wrong)."""
    lines: list[str] = []
    comment = None
    if check is not None and not check.ok and (not entities or not check.intent_ok):
        comment = f"predicted: {check.predicted_intent}: {_annotate(check.text, check.predicted_entities)}"
    if intent:
        lines.append(f"  - intent: {_scalar(intent)}{_comment(comment)}")
    if entities:
        lines.append("    entities:" if intent else "  - entities:")
        lines.extend(f"    - {_scalar(name)}: {_scalar(value)}{_comment(note)}" for name, value, note in entities)
    if not intent and text is not None:
        body = "\n".join("      " + row for row in text.splitlines())
        lines.append("  - user: |-\n" + body)
    return lines


def _entity_notes(check: UserCheck) -> list[tuple[str, Any, str | None]]:
    notes: list[tuple[str, Any, str | None]] = []
    for gold in check.expected_entities:
        predicted = next((p for p in check.predicted_entities if p.start == gold.start), None)
        wrong = predicted is not None and predicted.entity != gold.entity
        notes.append((gold.entity, gold.value, f"predicted: {predicted.entity}: {predicted.value}" if predicted and wrong else None))
    return notes


def story_yaml(outcome: StoryOutcome) -> str:
    """One conversation as a story, its wrong predictions commented (Rasa's ``tracker.as_story`` + YAML writer)."""
    lines = [f"- story: {_scalar(f'{outcome.name} ({outcome.file})')}", "  steps:"]
    for traced in outcome.trace:
        event, check = traced.event, traced.check
        if event.kind == "user":
            user_check = check if isinstance(check, UserCheck) else None
            if user_check is not None and not user_check.ok:
                entities = _entity_notes(user_check)
            else:
                entities = [(span.entity, span.value, None) for span in event.entities]
            lines.extend(_user_lines(event.name, event.text, user_check, entities))
        elif event.kind == "action":
            action_check = check if isinstance(check, ActionCheck) else None
            wrong = action_check is not None and not action_check.ok
            if event.name in (LISTEN, SESSION_START) and not wrong:
                continue
            comment = f"predicted: {action_check.predicted}" if action_check is not None and wrong else None
            key, value = ("action", event.name) if event.name is not None else ("bot", event.text)
            lines.append(f"  - {key}: {_scalar(value)}{_comment(comment)}")
        elif event.kind == "slot":
            lines.append(f"  - slot_was_set:\n    - {_scalar(event.name)}: {_scalar(event.value)}")
        elif event.kind == "active_loop":
            lines.append(f"  - active_loop: {_scalar(event.name)}")
    return "\n".join(lines)


def failed_stories_yaml(outcomes: Sequence[StoryOutcome]) -> str:
    failed = [o for o in outcomes if not o.passed]
    if not failed:
        return NO_FAILURES
    return 'version: "3.1"\nstories:\n' + "\n".join(story_yaml(o) for o in failed) + "\n"


def write_story_results(outcomes: Sequence[StoryOutcome], out: Path) -> tuple[Path, Path]:
    """Write ``story_report.json`` and ``failed_test_stories.yml`` into ``out`` (created if missing)."""
    out.mkdir(parents=True, exist_ok=True)
    report_path, failed_path = out / REPORT_FILE, out / FAILED_FILE
    report_path.write_text(json.dumps(story_report(outcomes), indent=2, ensure_ascii=False), encoding="utf-8")
    failed_path.write_text(failed_stories_yaml(outcomes), encoding="utf-8")
    return report_path, failed_path
