"""The Slack desk's settings: the ``desk.slack`` block of farm.yml (validated by `SlackDesk.from_config`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


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
    command: str = Field(default="/switchboard", pattern=r"^/[a-z0-9_-]{1,31}$",
                         description="The slash command agents type (queue, claim N, transfer).")
