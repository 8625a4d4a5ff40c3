"""Settings of the human handoff, per bot (``bots.<name>.handoff`` in farm.yml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class HandoffConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_words: list[str] = Field(
        default_factory=lambda: ["mensch", "mitarbeiter", "agent", "human", "person", "berater"],
        description="Words that always reach a person, matched in any form.",
    )
    always_human_intents: list[str] = Field(default_factory=list)
    fallbacks_before_handoff: int = 2
    frustration_threshold: float = 0.7
    upset_threshold: float = Field(
        default=0.4, description="From this frustration score the `mood` slot is `upset` (calmer answers), below a handoff.")
    repings_after_seconds: float = 300.0
    expected_wait_minutes: int = 5
    timezone: str = "Europe/Berlin"
    business_hours: dict[str, str] = Field(
        default_factory=lambda: {d: "08:00-18:00" for d in ("mon", "tue", "wed", "thu", "fri")},
    )
    csat: bool = True
    contact_email: str | None = Field(
        default=None, description="Offered to the customer when no agent channel (web desk agent, Slack) serves the bot.")
    contact_phone: str | None = Field(
        default=None, description="Offered to the customer when no agent channel serves the bot.")
    callback: bool = Field(
        default=True, description="Without an agent channel, offer to take a phone number for a call back.")
    require_agent_online: bool = Field(
        default=False,
        description="Count the web desk as able to answer only while an agent who serves the bot is online "
                    "(logged in with the desk open). With no desk able to answer (this, and Slack off or "
                    "failing), a customer asking for a person is told so honestly and offered the alternatives.")
