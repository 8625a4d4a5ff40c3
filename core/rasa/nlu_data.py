"""Rasa 3.x NLU training data: intents with annotated examples, synonyms, regexes, lookups.

Annotations: ``[text](entity)``, ``[text](entity:value)`` (legacy synonym form) and
``[text]{"entity": "...", "value": "...", "role": "...", "group": "..."}``. An annotated
value that differs from its text becomes a synonym, as in Rasa. Intent blocks may carry
``metadata: {language: de}``; the language model of multi-language bots learns from it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.rasa.yamlio import LDict, LList, LStr, RasaFileError, line_of

_ANNOTATION = re.compile(
    r"\[(?P<text>[^\]]+?)\]"
    r"(?:\((?P<entity>[^:)]+?)(?::(?P<value>[^)]+))?\)|\{(?P<json>[^}]+?)\})"
)
_NLU_KEYS = {"intent", "synonym", "regex", "lookup"}


@dataclass(frozen=True, slots=True)
class EntitySpan:
    """One entity in an example or a parse: character offsets into the plain text."""

    entity: str
    start: int
    end: int
    value: Any
    text: str
    role: str | None = None
    group: str | None = None

    def as_rasa(self, extractor: str = "annotation") -> dict[str, Any]:
        data: dict[str, Any] = {
            "entity": self.entity, "start": self.start, "end": self.end,
            "value": self.value, "extractor": extractor,
        }
        if self.role:
            data["role"] = self.role
        if self.group:
            data["group"] = self.group
        return data


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    intent: str
    entities: tuple[EntitySpan, ...] = ()
    language: str | None = None
    file: str = ""
    line: int = 0


@dataclass(slots=True)
class NluData:
    """All NLU data of a project, merged across files."""

    examples: list[Example] = field(default_factory=list)
    synonyms: dict[str, str] = field(default_factory=dict)  # lower-cased variant -> canonical value
    regexes: list[tuple[str, str]] = field(default_factory=list)  # (name, pattern)
    lookups: dict[str, list[str]] = field(default_factory=dict)
    # Where each intent / entity was seen first, for validation messages.
    intent_lines: dict[str, tuple[str, int]] = field(default_factory=dict)
    entity_lines: dict[str, tuple[str, int]] = field(default_factory=dict)

    @property
    def intents(self) -> list[str]:
        return sorted({e.intent for e in self.examples})

    def merge(self, other: NluData) -> None:
        self.examples.extend(other.examples)
        self.synonyms.update(other.synonyms)
        self.regexes.extend(other.regexes)
        for name, values in other.lookups.items():
            self.lookups.setdefault(name, []).extend(values)
        for name, where in other.intent_lines.items():
            self.intent_lines.setdefault(name, where)
        for name, where in other.entity_lines.items():
            self.entity_lines.setdefault(name, where)


def parse_annotated(text: str, *, file: str = "", line: int = 0) -> tuple[str, tuple[EntitySpan, ...]]:
    """Turn ``I live in [Berlin](city)`` into plain text and entity spans."""
    plain_parts: list[str] = []
    spans: list[EntitySpan] = []
    position = 0
    length = 0
    for match in _ANNOTATION.finditer(text):
        before = text[position:match.start()]
        plain_parts.append(before)
        length += len(before)
        surface = match.group("text")
        if match.group("json") is not None:
            try:
                spec = json.loads("{" + match.group("json") + "}")
            except json.JSONDecodeError as exc:
                raise RasaFileError(f"invalid entity annotation {match.group(0)!r}: {exc.msg}", file=file, line=line) from exc
            if not isinstance(spec, dict) or not isinstance(spec.get("entity"), str):
                raise RasaFileError(f"entity annotation {match.group(0)!r} needs an \"entity\" name", file=file, line=line)
            entity, value = spec["entity"], spec.get("value", surface)
            role, group = spec.get("role"), spec.get("group")
        else:
            entity = match.group("entity").strip()
            value = match.group("value").strip() if match.group("value") else surface
            role = group = None
        spans.append(EntitySpan(entity, length, length + len(surface), value, surface, role, group))
        plain_parts.append(surface)
        length += len(surface)
        position = match.end()
    plain_parts.append(text[position:])
    return "".join(plain_parts), tuple(spans)


def _example_lines(block: Any, *, file: str, key_line: int) -> list[tuple[str, int, dict[str, Any] | None]]:
    """The ``- example`` lines of a block scalar (or a list of ``text:`` items) with their lines."""
    items: list[tuple[str, int, dict[str, Any] | None]] = []
    if isinstance(block, LList):
        for index, item in enumerate(block):
            if isinstance(item, LDict) and "text" in item:
                items.append((str(item["text"]), block.line_of(index), item.get("metadata")))
            elif isinstance(item, str):
                items.append((item, block.line_of(index), None))
            else:
                raise RasaFileError("an example must be a string or a mapping with 'text'", file=file, line=block.line_of(index))
        return items
    if not isinstance(block, str):
        raise RasaFileError("'examples' must be a block of '- example' lines", file=file, line=key_line)
    first = line_of(block, key_line)
    offset = 1 if isinstance(block, LStr) and block.style in ("|", ">") else 0
    for number, raw in enumerate(block.splitlines()):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not stripped.startswith("- "):
            raise RasaFileError(f"example {stripped!r} must start with '- '", file=file, line=first + offset + number)
        items.append((stripped[2:].strip(), first + offset + number, None))
    return items


def parse_nlu(items: Any, *, file: str) -> NluData:
    """Parse the ``nlu:`` list of one file."""
    data = NluData()
    if items is None:
        return data
    if not isinstance(items, LList):
        raise RasaFileError("'nlu' must be a list", file=file, line=line_of(items))
    for index, item in enumerate(items):
        where = items.line_of(index)
        if not isinstance(item, LDict):
            raise RasaFileError("each 'nlu' item must be a mapping (intent / synonym / regex / lookup)", file=file, line=where)
        kinds = _NLU_KEYS & set(item)
        if len(kinds) != 1:
            raise RasaFileError("each 'nlu' item needs exactly one of intent, synonym, regex, lookup", file=file, line=where)
        kind = kinds.pop()
        name = item[kind]
        if not isinstance(name, str) or not name.strip():
            raise RasaFileError(f"'{kind}' needs a name", file=file, line=item.line_of(kind))
        name = str(name).strip()
        if "examples" not in item:
            raise RasaFileError(f"{kind} '{name}' has no 'examples'", file=file, line=where)
        lines = _example_lines(item["examples"], file=file, key_line=item.line_of("examples"))
        metadata = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
        if kind == "intent":
            data.intent_lines.setdefault(name, (file, item.line_of("intent")))
            block_language = metadata.get("language") if metadata else None
            for raw, line, example_meta in lines:
                text, spans = parse_annotated(raw, file=file, line=line)
                if not text.strip():
                    raise RasaFileError(f"empty example in intent '{name}'", file=file, line=line)
                language = (example_meta or {}).get("language", block_language)
                data.examples.append(Example(text, name, spans, str(language) if language else None, file, line))
                for span in spans:
                    data.entity_lines.setdefault(span.entity, (file, line))
                    if isinstance(span.value, str) and span.value != span.text:
                        data.synonyms[span.text.casefold()] = span.value
        elif kind == "synonym":
            for raw, _, _ in lines:
                data.synonyms[raw.casefold()] = name
        elif kind == "regex":
            for raw, line, _ in lines:
                try:
                    re.compile(raw)
                except re.error as exc:
                    raise RasaFileError(f"regex '{name}': invalid pattern {raw!r} ({exc})", file=file, line=line) from exc
                data.regexes.append((name, raw))
        else:
            data.lookups.setdefault(name, []).extend(raw for raw, _, _ in lines)
    return data


def load_nlu_file(path: Path, *, display: str | None = None) -> NluData:
    """Load a file holding an ``nlu:`` section (other sections are ignored here)."""
    from core.rasa.yamlio import load_yaml

    name = display or str(path)
    doc = load_yaml(path, display=name)
    if doc is None:
        return NluData()
    if not isinstance(doc, LDict):
        raise RasaFileError("expected a mapping at the top level", file=name, line=line_of(doc, 1))
    return parse_nlu(doc.get("nlu"), file=name)
