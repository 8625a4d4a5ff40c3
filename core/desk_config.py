"""The agents' desks settings (``desk`` in farm.yml): the built-in web desk and canned replies.

A leaf module: `core.config` aggregates it, the handoff and the web desk read it. Desks
installed through the ``switchboard.desks`` entry points (Slack) keep their own settings
model; their ``desk.<name>`` block stays raw here and is validated by the desk itself.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from core.files import DeskFilesConfig

#: The entry-point group desks other than the built-in web desk register in.
DESKS_GROUP = "switchboard.desks"


class WebAgent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    password_hash: str = Field(description="argon2 hash; make one with `switchboard hash-password`")
    bots: list[str] = Field(default_factory=list, description="Bots this agent serves; empty = all.")
    role: Literal["agent", "lead"] = Field(
        default="agent", description="lead: also sees the insights page (/desk/insights) and labels the review "
        "queue (/desk/review) for their bots.")
    review: bool = Field(default=False, description="May label the review queue without being a lead.")


class WebDeskConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    agents: list[WebAgent] = Field(default_factory=list)
    session_secret: str | None = None


class CannedReply(BaseModel):
    """A prepared answer agents insert into the reply box (and edit before sending)."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=80)
    text: str = Field(min_length=1, max_length=4000)
    bot: str | None = Field(default=None, description="Only for this bot; none = every bot.")
    language: str | None = Field(default=None, description="Only for this language (de, en); none = every language.")


class DeskConfig(BaseModel):
    """``desk``: ``web``, ``canned`` and ``files`` here; any other key (``slack``) is an installed desk's block."""

    model_config = ConfigDict(extra="allow")

    web: WebDeskConfig = Field(default_factory=WebDeskConfig)
    canned: list[CannedReply] = Field(default_factory=list, description="Canned replies for agents.")
    files: DeskFilesConfig = Field(default_factory=DeskFilesConfig, description="Attachment limits.")

    @model_validator(mode="after")
    def _installed_blocks_are_mappings(self) -> DeskConfig:
        for name, block in (self.model_extra or {}).items():
            if block is not None and not isinstance(block, dict):
                raise ValueError(f"{name}: expected a mapping (the settings of the '{name}' desk)")
            try:
                TypeAdapter(bool).validate_python((block or {}).get("enabled", False))
            except ValidationError:
                raise ValueError(f"{name}.enabled: expected true or false") from None
        return self

    def installed(self) -> dict[str, dict[str, Any]]:
        """The blocks of desks found through ``switchboard.desks`` (``desk.slack``...), as written."""
        return {name: dict(block or {}) for name, block in (self.model_extra or {}).items()}

    def enabled_desks(self) -> dict[str, dict[str, Any]]:
        """Those of `installed` with ``enabled: true`` (an installed desk is off unless enabled)."""
        return {name: block for name, block in self.installed().items()
                if TypeAdapter(bool).validate_python(block.get("enabled", False))}
