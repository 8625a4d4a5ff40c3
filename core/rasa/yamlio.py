"""YAML loading that remembers line numbers, so every error can say ``file:line: what``.

PyYAML's composer (the C one when available) gives nodes with marks; we build plain
dicts and lists from them and keep the 1-based line of every key and list item.

Scalars resolve by the YAML 1.2 core schema, as Rasa reads its files (ruamel, version
1.2): only ``true``/``false`` (any of three casings) are booleans, so an unquoted ``yes``,
``no``, ``on``, ``off``, ``y`` or ``n`` stays a string; ``0o17`` is octal, ``0755`` is
decimal 755, ``1_000`` and ``12:30`` are strings, dates stay strings.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, ClassVar

import yaml

from core.errors import DialogueError

try:  # the C loader is ~10x faster; fall back to the pure-Python one
    _Base: type[yaml.SafeLoader] = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on libyaml
    _Base = yaml.SafeLoader

_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"

# The YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution).
_CORE_RESOLVERS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    (_NULL, re.compile(r"^(?:~|null|Null|NULL|)$"), "~nN"),
    (_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), "tTfF"),
    (_INT, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), "-+0123456789"),
    (_FLOAT, re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), "-+0123456789."),
    (_MERGE, re.compile(r"^<<$"), "<"),
)


class Yaml12Loader(_Base):  # type: ignore[misc]
    """PyYAML's safe loader (C when available) resolving plain scalars by YAML 1.2 core."""

    yaml_implicit_resolvers: ClassVar[dict[str, list[tuple[str, re.Pattern[str]]]]] = {}


for _tag, _pattern, _first in _CORE_RESOLVERS:
    Yaml12Loader.add_implicit_resolver(_tag, _pattern, list(_first))
Yaml12Loader.add_implicit_resolver(_NULL, _CORE_RESOLVERS[0][1], [""])  # the empty scalar


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node))
    if text.startswith("0o"):
        return int(text, 0)
    if text.startswith("0x"):
        return int(text, 0)
    return int(text, 10)


def _construct_float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> float:
    text = str(loader.construct_scalar(node)).lower()
    if text.endswith(".inf"):
        return -math.inf if text.startswith("-") else math.inf
    if text == ".nan":
        return math.nan
    return float(text)


Yaml12Loader.add_constructor(_INT, _construct_int)
Yaml12Loader.add_constructor(_FLOAT, _construct_float)
_Loader = Yaml12Loader


def safe_load_12(text: str) -> Any:
    """``yaml.safe_load`` with YAML 1.2 core scalars (for files read without line bookkeeping)."""
    return yaml.load(text, Loader=Yaml12Loader)  # a SafeLoader subclass


class RasaFileError(DialogueError):
    """A project file is malformed; ``str()`` is ``file:line: message``."""

    def __init__(self, message: str, *, file: str, line: int | None = None) -> None:
        self.file = file
        self.line = line
        self.problem = message
        super().__init__(f"{file}:{line}: {message}" if line else f"{file}: {message}")


class LDict(dict[str, Any]):
    """A mapping that knows the line of itself (``line``) and of each key (``lines``)."""

    line: int = 0
    lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.lines.get(key, self.line)


class LList(list[Any]):
    """A sequence that knows its own line and the line of each item."""

    line: int = 0
    lines: list[int]

    def line_of(self, index: int) -> int:
        return self.lines[index] if 0 <= index < len(self.lines) else self.line


class LStr(str):
    """A scalar string with its node's line and scalar style (``|`` for block literals)."""

    line: int = 0
    style: str | None = None


def line_of(value: Any, default: int = 0) -> int:
    """The 1-based line where ``value`` was read, if known."""
    return int(getattr(value, "line", default) or default)


def _construct(node: yaml.Node, loader: yaml.SafeLoader, file: str) -> Any:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result = LDict()
        result.line = line
        result.lines = {}
        loader.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = _construct(key_node, loader, file)
            if isinstance(key, list | dict):
                raise RasaFileError("a mapping key must be a plain value", file=file, line=key_node.start_mark.line + 1)
            key = str(key) if key is not None else "null"
            if key in result:
                raise RasaFileError(f"duplicate key '{key}'", file=file, line=key_node.start_mark.line + 1)
            result[key] = _construct(value_node, loader, file)
            result.lines[key] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        items = LList(_construct(child, loader, file) for child in node.value)
        items.line = line
        items.lines = [child.start_mark.line + 1 for child in node.value]
        return items
    value = loader.construct_object(node, deep=True)
    if isinstance(value, str):
        text = LStr(value)
        text.line = line
        text.style = node.style
        return text
    return value


def parse_yaml(text: str, *, file: str) -> Any:
    """Parse YAML text into LDict/LList/LStr values; `RasaFileError` on bad YAML."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        return _construct(node, loader, file)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise RasaFileError(f"invalid YAML: {problem}", file=file, line=mark.line + 1 if mark else None) from exc
    except yaml.YAMLError as exc:
        raise RasaFileError(f"invalid YAML: {exc}", file=file) from exc
    finally:
        loader.dispose()


def load_yaml(path: Path, *, display: str | None = None) -> Any:
    """Read and parse one YAML file; errors name ``display`` (default: the path)."""
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise RasaFileError("file not found", file=name) from exc
    except UnicodeDecodeError as exc:
        raise RasaFileError(f"not UTF-8 text ({exc.reason})", file=name) from exc
    return parse_yaml(text, file=name)


def plain(value: Any) -> Any:
    """Strip the line bookkeeping: plain dict / list / str, for JSON or rasa-sdk."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, LStr):
        return str(value)
    return value
