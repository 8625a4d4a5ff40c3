"""Farm configuration: ``config/farm.yml`` with ``${ENV}`` expansion, validated by pydantic.

One place validates everything at start (`load_farm_config`, used by ``switchboard
check`` and ``switchboard run``); errors name the file, the key and the problem.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.delivery.config import DeliveryConfig
from core.errors import ConfigError
from core.handoff.config import HandoffConfig
from core.pipeline.config import TurnsConfig
from core.privacy.config import PrivacyConfig
from core.store.config import StoreConfig

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class WebAgent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    password_hash: str = Field(description="argon2 hash; make one with `switchboard hash-password`")
    bots: list[str] = Field(default_factory=list, description="Bots this agent serves; empty = all.")


class WebDeskConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    agents: list[WebAgent] = Field(default_factory=list)
    session_secret: str | None = None


class SlackDeskConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    bot_token: str = ""
    signing_secret: str = ""
    app_token: str | None = Field(default=None, description="xapp- token: Socket Mode")
    channel: str = ""
    agents: list[str] = Field(default_factory=list, description="Slack user ids allowed to act.")
    agent_group: str | None = Field(default=None, description="A Slack user group id of agents.")
    note_prefix: str = "!"
    api_base: str = "https://slack.com/api/"


class DeskConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    web: WebDeskConfig = Field(default_factory=WebDeskConfig)
    slack: SlackDeskConfig = Field(default_factory=SlackDeskConfig)


def _default_channels() -> dict[str, dict[str, Any]]:
    return {"webchat": {}}


class BotConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project: str = Field(description="A Rasa 3.x project directory (domain.yml, data/, ...)")
    name: str | None = Field(default=None, description="Shown to customers.")
    languages: list[str] = Field(default_factory=lambda: ["en"])
    default_language: str = "en"
    channels: dict[str, dict[str, Any]] = Field(default_factory=_default_channels)
    handoff: HandoffConfig = Field(default_factory=HandoffConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    action_endpoint: str | None = Field(default=None, description="Remote rasa-sdk action server URL")


class ServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = 8080
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
    log_level: str = "info"
    log_format: Literal["console", "json"] = "console"

    # The folder of farm.yml; relative project paths resolve against it.
    base_dir: Path = Field(default=Path("."), exclude=True)

    def project_dir(self, bot: str) -> Path:
        path = Path(self.bots[bot].project)
        return path if path.is_absolute() else (self.base_dir / path).resolve()


class EnvSettings(BaseSettings):
    """Operational overrides from the environment (``SWITCHBOARD_LOG_LEVEL=debug``), over farm.yml."""

    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_", extra="ignore")

    config: str = "config/farm.yml"
    log_level: str | None = None
    log_format: Literal["console", "json"] | None = None


def expand_env(value: Any, *, file: str, path: str = "", environ: Mapping[str, str] | None = None) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string of a YAML tree."""
    env = os.environ if environ is None else environ
    if isinstance(value, dict):
        return {k: expand_env(v, file=file, path=f"{path}.{k}" if path else str(k), environ=env) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, file=file, path=f"{path}[{i}]", environ=env) for i, v in enumerate(value)]
    if isinstance(value, str):
        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(f"environment variable {name} is not set", file=file, key=path)

        return _ENV_PATTERN.sub(substitute, value)
    return value


def load_farm_config(path: str | Path, environ: Mapping[str, str] | None = None) -> FarmConfig:
    """Read, expand and validate a farm.yml; raise `ConfigError` naming file and key."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError("file not found", file=str(file))
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(f"{where}invalid YAML ({getattr(exc, 'problem', exc)})", file=str(file)) from exc
    if not isinstance(raw, dict):
        raise ConfigError("expected a mapping at the top level", file=str(file))
    raw = expand_env(raw, file=str(file), environ=environ)
    try:
        config = FarmConfig.model_validate({**raw, "base_dir": file.resolve().parent})
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise ConfigError(first["msg"], file=str(file), key=key) from exc
    for name in config.bots:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,39}", name):
            raise ConfigError("bot names are 1-40 of a-z, 0-9, '-', '_'", file=str(file), key=f"bots.{name}")
        if not config.project_dir(name).is_dir():
            raise ConfigError(f"project directory {config.project_dir(name)} not found", file=str(file), key=f"bots.{name}.project")
    return config
