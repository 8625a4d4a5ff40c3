"""Outbox settings (``delivery`` in farm.yml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class DeliveryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workers: int = 16
    batch: int = 64
    lease_seconds: float = 30.0
    max_attempts: int = 12
    backoff_initial: float = 0.5
    backoff_max: float = 60.0
    poll_interval: float = 0.2
