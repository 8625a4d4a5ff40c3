"""Farm configuration: ``config/farm.yml`` with ``${ENV}`` expansion, validated by pydantic.

One place validates everything at start (`load_farm_config`, used by ``switchboard
check`` and ``switchboard run``): every problem at once, each as ``file:line: key: problem``.
Every relative path in farm.yml (``store.path``, ``bots.<name>.project``) is relative to
the file's folder, so the same file opens the same data from any working directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.delivery.config import DeliveryConfig
from core.desk_config import DESKS_GROUP, DeskConfig
from core.errors import ConfigError
from core.handoff.config import HandoffConfig
from core.pipeline.config import TurnsConfig
from core.privacy.config import PrivacyConfig
from core.rasa.yamlio import LDict, LList, RasaFileError, parse_yaml, plain
from core.review_config import ReviewConfig
from core.store.config import StoreConfig

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_BOT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")

LogLevel = Literal["debug", "info", "warning", "error", "critical"]


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def resolve_relative(base_dir: Path, path: str) -> str:
    """``path`` as written in farm.yml: absolute as is, relative against farm.yml's folder."""
    if path == ":memory:" or path.startswith("file:") or Path(path).is_absolute():
        return path
    return os.path.normpath(base_dir / path)


def _default_channels() -> dict[str, dict[str, Any]]:
    return {"webchat": {}}


class LanguageConfig(BaseModel):
    """How a bot picks a customer's language (``bots.<name>.language``); see core.nlu.language_choice."""

    model_config = ConfigDict(extra="forbid")

    phone_prefixes: dict[str, str] | None = Field(
        default=None, description="Country calling code -> language, a weak prior for customers with a "
        "verified phone (WhatsApp); {} turns it off; unset: built-in table (49: de, 90: tr, 44: en, ...)")


class BotConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("messages")
    @classmethod
    def _known_message_keys(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        from core.i18n import builtin  # the catalogues name every text a bot may override

        english = builtin()["en"]
        for language, texts in value.items():
            for key, text in texts.items():
                if key not in english:
                    raise ValueError(f"messages.{language}.{key}: no such text (keys are those of core/i18n/en.yml)")
                wanted = set(re.findall(r"\{(\w+)\}", english[key]))
                if not set(re.findall(r"\{(\w+)\}", text)) <= wanted:
                    raise ValueError(f"messages.{language}.{key}: placeholders must be among {sorted(wanted)}")
        return value

    project: str = Field(description="A Rasa 3.x project directory (domain.yml, data/, ...)")
    name: str | None = Field(default=None, description="Shown to customers.")
    languages: list[str] = Field(default_factory=lambda: ["en"])
    default_language: str = "en"
    language: LanguageConfig = Field(default_factory=LanguageConfig)
    messages: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="Overrides of the farm's own texts: messages.<lang>.<key> "
        "(keys as in core/i18n/en.yml)")
    channels: dict[str, dict[str, Any]] = Field(default_factory=_default_channels)
    handoff: HandoffConfig = Field(default_factory=HandoffConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    review: ReviewConfig = Field(default_factory=ReviewConfig)
    action_endpoint: str | None = Field(default=None, description="Remote rasa-sdk action server URL")
    actions: Literal["auto", "in-process", "endpoint"] = Field(
        default="auto", description="Custom actions in-process or on the action server (auto: the server when one is named)")


class ServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str | None = None
    max_body_bytes: int = 1_048_576


class FarmConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    server: ServerConfig = Field(default_factory=ServerConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    turns: TurnsConfig = Field(default_factory=TurnsConfig)
    desk: DeskConfig = Field(default_factory=DeskConfig)
    bots: dict[str, BotConfig]
    log_level: LogLevel = "info"
    log_format: Literal["console", "json"] = "console"

    # The folder of farm.yml; every relative path in it (store.path, bots.<name>.project)
    # resolves against this folder, never against the working directory.
    base_dir: Path = Field(default=Path("."), exclude=True)

    _log_level_case = field_validator("log_level", mode="before")(_lower)

    @model_validator(mode="after")
    def _paths_relative_to_the_file(self) -> FarmConfig:
        self.store.path = resolve_relative(self.base_dir, self.store.path)
        return self

    def project_dir(self, bot: str) -> Path:
        path = Path(self.bots[bot].project)
        return path if path.is_absolute() else (self.base_dir / path).resolve()


class EnvSettings(BaseSettings):
    """Operational overrides from the environment (``SWITCHBOARD_LOG_LEVEL=debug``), over farm.yml."""

    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_", extra="ignore")

    config: str = "config/farm.yml"
    log_level: LogLevel | None = None
    log_format: Literal["console", "json"] | None = None

    _log_level_case = field_validator("log_level", mode="before")(_lower)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:  # a bad SWITCHBOARD_* variable: name it, as farm.yml errors do
            first = exc.errors()[0]
            name = "SWITCHBOARD_" + "_".join(str(p) for p in first["loc"]).upper()
            raise ConfigError(_message(first), key=f"environment variable {name}") from None


Loc = tuple[str | int, ...]


def dotted(loc: Loc) -> str:
    """``('desk', 'web', 'agents', 0, 'id')`` as ``desk.web.agents[0].id``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class FarmConfigProblem(ConfigError):
    """One problem in farm.yml; ``str()`` is ``file:line: key: message``."""

    def __init__(self, message: str, *, file: str, key: str | None = None, line: int | None = None) -> None:
        super().__init__(message, file=file, key=key)
        self.line = line
        self.problem = message
        where = f"{file}:{line}" if line else file
        self.args = (f"{where}: {key}: {message}" if key else f"{where}: {message}",)


class FarmConfigInvalid(ConfigError):
    """farm.yml has problems: all of them in ``problems``, in file order.

    ``str()`` is the first and how many more (one line); ``project_dirs`` holds the bots'
    project folders that exist, so ``switchboard check`` can review those as well.
    """

    def __init__(self, problems: list[FarmConfigProblem], project_dirs: dict[str, Path] | None = None) -> None:
        first = problems[0]
        more = f" (and {len(problems) - 1} more: `switchboard check` lists them)" if len(problems) > 1 else ""
        super().__init__(f"{first}{more}")
        self.file, self.key = first.file, first.key
        self.problems = problems
        self.project_dirs = project_dirs or {}


def _message(error: ErrorDetails) -> str:
    """Pydantic's message, plus the value given where that helps (``not 'verbose'``)."""
    message = error["msg"].removeprefix("Value error, ")
    given = error.get("input")
    if error["type"] not in ("missing", "extra_forbidden") and isinstance(given, str | int | float):
        message += f", not {given!r}"
    return message


def _expand(value: Any, loc: Loc, env: Mapping[str, str], unset: list[tuple[Loc, str]]) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v, (*loc, k), env, unset) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, (*loc, i), env, unset) for i, v in enumerate(value)]
    if isinstance(value, str):
        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            unset.append((loc, name))
            return match.group(0)

        return _ENV_PATTERN.sub(substitute, value)
    return value


def expand_env(value: Any, *, file: str, path: str = "", environ: Mapping[str, str] | None = None) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string of a YAML tree."""
    unset: list[tuple[Loc, str]] = []
    expanded = _expand(value, (), os.environ if environ is None else environ, unset)
    if unset:
        loc, name = unset[0]
        key = ".".join(p for p in (path, dotted(loc)) if p)
        raise ConfigError(f"environment variable {name} is not set", file=file, key=key)
    return expanded


def _line_map(node: Any, loc: Loc = (), lines: dict[Loc, int] | None = None) -> dict[Loc, int]:
    """The 1-based line of every key and list item of a parsed farm.yml, by its location."""
    lines = {} if lines is None else lines
    if isinstance(node, LDict):
        for key, value in node.items():
            lines[(*loc, key)] = node.line_of(key)
            _line_map(value, (*loc, key), lines)
    elif isinstance(node, LList):
        for index, value in enumerate(node):
            lines[(*loc, index)] = node.line_of(index)
            _line_map(value, (*loc, index), lines)
    return lines


def _line_of(lines: dict[Loc, int], loc: Loc) -> int | None:
    """The line of ``loc``, or of its nearest enclosing key (a missing key: its parent's)."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


#: The entry-point group adapters register in (as `core.farm` finds them).
CHANNELS_GROUP = "switchboard.channels"


def _channel_problems(bots: dict[str, Any], file: str, lines: dict[Loc, int],
                      from_unset: Callable[[Loc], bool]) -> list[FarmConfigProblem]:
    """Each enabled ``bots.<name>.channels.<channel>`` block against its adapter's ``Config``.

    Adapters are found through the registry and loaded only when a bot enables them, so
    `check` finds what `run` would refuse, before anything starts.
    """
    available = {ep.name: ep for ep in entry_points(group=CHANNELS_GROUP)}
    problems: list[FarmConfigProblem] = []

    def problem(message: str, loc: Loc) -> None:
        problems.append(FarmConfigProblem(message, file=file, key=dotted(loc), line=_line_of(lines, loc)))

    for bot, settings in bots.items():
        channels = settings.get("channels") if isinstance(settings, dict) else None
        for name, block in channels.items() if isinstance(channels, dict) else ():
            loc: Loc = ("bots", bot, "channels", name)
            block = {} if block is None else block
            if not isinstance(block, dict) or from_unset(loc):
                continue  # the model's own validation names a block that is not a mapping
            try:
                if not TypeAdapter(bool).validate_python(block.get("enabled", True)):
                    continue
            except ValidationError:
                pass  # the adapter's Config names it
            if name not in available:
                problem(f"unknown channel '{name}' (installed: {', '.join(sorted(available)) or 'none'})", loc)
                continue
            _block_problems("channel adapter", available[name], block, loc, from_unset, problem)
    return problems


Problem = Callable[[str, Loc], None]


def _block_problems(what: str, entry: EntryPoint, block: dict[str, Any], loc: Loc,
                    from_unset: Callable[[Loc], bool], problem: Problem) -> None:
    """``block`` against the ``Config`` model of the installed ``entry`` (a channel adapter or a
    desk): one problem per field error, or one if it cannot be loaded (a third-party package)."""
    try:
        model = getattr(entry.load(), "Config", None)
    except (ImportError, AttributeError) as exc:
        problem(f"the {what} cannot be loaded: {type(exc).__name__}: {exc}", loc)
        return
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return
    try:
        model.model_validate(block)
    except ValidationError as exc:
        for error in exc.errors():
            where = (*loc, *error["loc"])
            if not from_unset(where):
                problem(_message(error), where)


def _desk_problems(desk: Any, file: str, lines: dict[Loc, int],
                   from_unset: Callable[[Loc], bool]) -> list[FarmConfigProblem]:
    """Each ``desk.<name>`` block other than ``web``/``canned`` against its installed desk's ``Config``
    (``switchboard.desks`` entry points): the core holds no platform's settings."""
    if not isinstance(desk, dict):
        return []
    available = {ep.name: ep for ep in entry_points(group=DESKS_GROUP)}
    problems: list[FarmConfigProblem] = []

    def problem(message: str, loc: Loc) -> None:
        problems.append(FarmConfigProblem(message, file=file, key=dotted(loc), line=_line_of(lines, loc)))

    for name, block in desk.items():
        loc: Loc = ("desk", name)
        if name in DeskConfig.model_fields or from_unset(loc):
            continue
        if name not in available:
            problem(f"unknown desk '{name}' (installed: web, {', '.join(sorted(available)) or 'none'})", loc)
            continue
        if not isinstance(block, dict):
            continue  # DeskConfig names a block that is not a mapping
        _block_problems("desk", available[name], block, loc, from_unset, problem)
    return problems


def load_farm_config(path: str | Path, environ: Mapping[str, str] | None = None) -> FarmConfig:
    """Read, expand and validate a farm.yml.

    Relative paths in it resolve against the file's folder. A missing file raises
    `ConfigError`; problems inside it raise one `FarmConfigInvalid` with every problem
    and its line.
    """
    file = Path(path)
    name = str(file)
    if not file.is_file():
        raise ConfigError("file not found", file=name)
    try:
        tree = parse_yaml(file.read_text(encoding="utf-8"), file=name)  # YAML 1.2, as the bot projects
    except RasaFileError as exc:
        raise FarmConfigInvalid([FarmConfigProblem(exc.problem, file=name, line=exc.line)]) from exc
    except UnicodeDecodeError as exc:
        raise FarmConfigInvalid([FarmConfigProblem(f"not UTF-8 text ({exc.reason})", file=name)]) from exc
    if not isinstance(tree, LDict):
        raise FarmConfigInvalid([FarmConfigProblem("expected a mapping at the top level", file=name)])
    lines = _line_map(tree)
    base_dir = file.resolve().parent
    unset: list[tuple[Loc, str]] = []
    raw = _expand(plain(tree), (), os.environ if environ is None else environ, unset)
    problems = [FarmConfigProblem(f"environment variable {var} is not set", file=name, key=dotted(loc),
                                  line=_line_of(lines, loc)) for loc, var in unset]

    def from_unset(loc: Loc) -> bool:  # the unset variable is the problem there, not what it left
        return any(loc[:len(where)] == where for where, _ in unset)

    project_dirs: dict[str, Path] = {}
    bots = raw.get("bots")
    for bot, settings in bots.items() if isinstance(bots, dict) else ():
        if not _BOT_NAME.fullmatch(bot):
            problems.append(FarmConfigProblem("bot names are 1-40 of a-z, 0-9, '-', '_'", file=name,
                                              key=f"bots.{bot}", line=_line_of(lines, ("bots", bot))))
        project = settings.get("project") if isinstance(settings, dict) else None
        if isinstance(project, str) and not from_unset(("bots", bot, "project")):
            folder = Path(project) if Path(project).is_absolute() else (base_dir / project).resolve()
            if folder.is_dir():
                project_dirs[bot] = folder
            else:
                problems.append(FarmConfigProblem(f"project directory {folder} not found", file=name,
                                                  key=f"bots.{bot}.project", line=_line_of(lines, ("bots", bot, "project"))))
    if isinstance(bots, dict):
        problems += _channel_problems(bots, name, lines, from_unset)
    problems += _desk_problems(raw.get("desk"), name, lines, from_unset)
    config: FarmConfig | None = None
    try:
        config = FarmConfig.model_validate({**raw, "base_dir": base_dir})
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            if not from_unset(loc):
                problems.append(FarmConfigProblem(_message(error), file=name, key=dotted(loc), line=_line_of(lines, loc)))
    if problems or config is None:
        problems.sort(key=lambda problem: problem.line or 0)
        raise FarmConfigInvalid(problems, project_dirs)
    return config
