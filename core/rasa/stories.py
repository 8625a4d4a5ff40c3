"""Rasa 3.x stories, rules and test stories (``stories:`` / ``rules:`` sections).

A step is one of: ``intent`` (or ``user`` text with an optional ``intent`` in test
stories), ``action``, ``bot``, ``slot_was_set``, ``active_loop``, ``checkpoint``, ``or``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.rasa.nlu_data import EntitySpan, parse_annotated
from core.rasa.yamlio import LDict, LList, RasaFileError, line_of, load_yaml, plain

ANY_VALUE = object()  # `slot_was_set: [name]` without a value: "set to anything"


@dataclass(frozen=True, slots=True)
class Step:
    kind: str  # intent | action | bot | slot | active_loop | checkpoint | or
    name: str | None = None
    value: Any = None
    text: str | None = None  # test stories: the user's message (annotations removed)
    entities: tuple[tuple[str, Any], ...] = ()  # (entity, value or ANY_VALUE)
    alternatives: tuple[Step, ...] = ()
    line: int = 0
    spans: tuple[EntitySpan, ...] = ()  # test stories: the user's entities as Rasa reads them (offsets, role, group)


@dataclass(frozen=True, slots=True)
class Block:
    """One story or rule."""

    kind: str  # story | rule
    name: str
    steps: tuple[Step, ...]
    condition: tuple[Step, ...] = ()
    conversation_start: bool = False
    wait_for_user_input: bool = True
    file: str = ""
    line: int = 0


@dataclass(slots=True)
class StoryData:
    stories: list[Block] = field(default_factory=list)
    rules: list[Block] = field(default_factory=list)

    def merge(self, other: StoryData) -> None:
        self.stories.extend(other.stories)
        self.rules.extend(other.rules)


def _entities(raw: Any, *, file: str, line: int) -> tuple[tuple[str, Any], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise RasaFileError("'entities' must be a list", file=file, line=line)
    found: list[tuple[str, Any]] = []
    for item in raw:
        if isinstance(item, str):
            found.append((str(item), ANY_VALUE))
        elif isinstance(item, dict):
            if "entity" in item:
                found.append((str(item["entity"]), plain(item.get("value", ANY_VALUE))))
            else:  # `- city: Berlin` with optional `role:` / `group:` keys, as Rasa reads it
                found.extend((str(k), plain(v)) for k, v in item.items() if k not in ("role", "group"))
        else:
            raise RasaFileError("each entity must be a name or '{name: value}'", file=file, line=line)
    return tuple(found)


def _entity_spans(raw: Any) -> tuple[EntitySpan, ...]:
    """``entities:`` of a step without a user text, read as Rasa does (``role``/``group`` keys, else the type)."""
    if not isinstance(raw, list):
        return ()
    spans = []
    for item in raw:
        if isinstance(item, dict):
            found = {str(k): plain(v) for k, v in item.items()}
            if "entity" in found:
                entity, value = str(found.pop("entity")), found.pop("value", None)
            else:
                others = [k for k in found if k not in ("role", "group")]
                entity = others[-1] if others else ""
                value = found.get(entity)
            role, group = found.get("role"), found.get("group")
            spans.append(EntitySpan(entity, 0, 0, value, "", str(role) if role is not None else None,
                                    str(group) if group is not None else None))
        elif isinstance(item, str):
            spans.append(EntitySpan(item, 0, 0, "", ""))
    return tuple(spans)


def _slot_steps(raw: Any, *, file: str, line: int) -> list[Step]:
    if not isinstance(raw, list):
        raise RasaFileError("'slot_was_set' must be a list of slot names or '{slot: value}'", file=file, line=line)
    steps = []
    for index, item in enumerate(raw):
        item_line = raw.line_of(index) if isinstance(raw, LList) else line
        if isinstance(item, str):
            steps.append(Step("slot", str(item), ANY_VALUE, line=item_line))
        elif isinstance(item, dict):
            steps.extend(Step("slot", str(k), plain(v), line=item_line) for k, v in item.items())
        else:
            raise RasaFileError("'slot_was_set' items must be a slot name or '{slot: value}'", file=file, line=item_line)
    return steps


def parse_steps(raw: Any, *, file: str, line: int, where: str) -> list[Step]:
    if not isinstance(raw, LList):
        raise RasaFileError(f"{where}: 'steps' must be a list", file=file, line=line)
    steps: list[Step] = []
    for index, item in enumerate(raw):
        item_line = raw.line_of(index)
        if not isinstance(item, LDict):
            raise RasaFileError(f"{where}: each step must be a mapping (intent:, action:, ...)", file=file, line=item_line)
        if "user" in item or "intent" in item:
            text = None
            entities = _entities(item.get("entities"), file=file, line=item_line)
            spans = _entity_spans(item.get("entities"))
            if "user" in item:
                text, spans = parse_annotated(str(item["user"]).strip(), file=file, line=item_line)
                entities = entities or tuple((s.entity, s.value) for s in spans)
            intent = item.get("intent")
            if intent is not None and not isinstance(intent, str):
                raise RasaFileError(f"{where}: 'intent' must be a name", file=file, line=item.line_of("intent"))
            steps.append(Step("intent", str(intent) if intent else None, text=text, entities=entities,
                              line=item.line_of("intent") if intent else item_line, spans=spans))
        elif "action" in item:
            if not isinstance(item["action"], str):
                raise RasaFileError(f"{where}: 'action' must be a name", file=file, line=item_line)
            steps.append(Step("action", str(item["action"]), line=item_line))
        elif "bot" in item:
            steps.append(Step("bot", text=str(item["bot"]), line=item_line))
        elif "slot_was_set" in item:
            steps.extend(_slot_steps(item["slot_was_set"], file=file, line=item_line))
        elif "active_loop" in item:
            loop = item["active_loop"]
            steps.append(Step("active_loop", str(loop) if loop is not None else None, line=item_line))
        elif "checkpoint" in item:
            steps.append(Step("checkpoint", str(item["checkpoint"]), line=item_line))
        elif "or" in item:
            alternatives = parse_steps(item["or"], file=file, line=item_line, where=where)
            steps.append(Step("or", alternatives=tuple(alternatives), line=item_line))
        else:
            raise RasaFileError(f"{where}: unknown step {sorted(item)} (expected intent, user, action, bot, slot_was_set, active_loop, checkpoint, or)", file=file, line=item_line)
    return steps


def parse_blocks(raw: Any, kind: str, *, file: str, line: int) -> list[Block]:
    if raw is None:
        return []
    if not isinstance(raw, LList):
        raise RasaFileError(f"'{kind}s' must be a list", file=file, line=line)
    blocks = []
    for index, item in enumerate(raw):
        item_line = raw.line_of(index)
        if not isinstance(item, LDict) or kind not in item:
            raise RasaFileError(f"each item of '{kind}s' needs a '{kind}:' name", file=file, line=item_line)
        name = str(item[kind])
        where = f"{kind} '{name}'"
        if "steps" not in item:
            raise RasaFileError(f"{where} has no 'steps'", file=file, line=item_line)
        steps = parse_steps(item["steps"], file=file, line=item.line_of("steps"), where=where)
        condition: list[Step] = []
        raw_condition = item.get("condition")
        if raw_condition is not None:
            if kind != "rule":
                raise RasaFileError(f"{where}: only rules can have a 'condition'", file=file, line=item.line_of("condition"))
            for cond_step in parse_steps(raw_condition, file=file, line=item.line_of("condition"), where=where):
                if cond_step.kind not in ("slot", "active_loop"):
                    raise RasaFileError(f"{where}: a condition may only hold slot_was_set and active_loop", file=file, line=cond_step.line)
                condition.append(cond_step)
        blocks.append(Block(
            kind=kind, name=name, steps=tuple(steps), condition=tuple(condition),
            conversation_start=bool(item.get("conversation_start", False)),
            wait_for_user_input=bool(item.get("wait_for_user_input", True)),
            file=file, line=item_line,
        ))
    return blocks


def parse_story_doc(doc: Any, *, file: str) -> StoryData:
    data = StoryData()
    if doc is None:
        return data
    if not isinstance(doc, LDict):
        raise RasaFileError("expected a mapping at the top level", file=file, line=line_of(doc, 1))
    data.stories = parse_blocks(doc.get("stories"), "story", file=file, line=doc.line_of("stories"))
    data.rules = parse_blocks(doc.get("rules"), "rule", file=file, line=doc.line_of("rules"))
    return data


def load_story_file(path: Path, *, display: str | None = None) -> StoryData:
    name = display or str(path)
    return parse_story_doc(load_yaml(path, display=name), file=name)
