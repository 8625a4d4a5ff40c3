"""Turn settings (``turns`` in farm.yml): retries of failed turns and dead letters."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TurnsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(
        default=3, ge=1,
        description="Turns of one message that may fail before it becomes a dead letter "
        "(the customer is told once, agents are told; replay or drop it from the desk or CLI).",
    )
    backoff_initial: float = Field(default=1.0, gt=0, description="Seconds before the first retry of a failed turn.")
    backoff_max: float = Field(default=60.0, gt=0, description="Longest wait between retries (the step doubles).")
    timeout_seconds: float = Field(
        default=30.0, gt=0,
        description="Longest a turn's hooks and engine (custom actions included) may take; a turn that takes "
        "longer ends like a failing action: the customer gets an apology and the next message is processed.",
    )
    concurrency: int = Field(
        default=1000, ge=1, description="Conversations processed at once per farm process; more wait their turn.",
    )
