"""Outbox settings (``delivery`` in farm.yml)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ChannelRateLimit(BaseModel):
    """Override of an adapter's declared send limits (messages per second)."""

    model_config = ConfigDict(extra="forbid")

    per_bot: float | None = Field(default=None, gt=0)
    per_chat: float | None = Field(default=None, gt=0)
    per_chat_burst: int | None = Field(default=None, ge=1)


class DeliveryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workers: int = Field(default=64, ge=1, description="Concurrent sends.")
    batch: int = Field(default=128, ge=1, description="Items claimed per poll.")
    lease_seconds: float = Field(
        default=30.0, gt=0,
        description="How long a sender holds a claimed reply; renewed every third of it while the reply is "
        "sent or recorded. Right before sending it proves the claim (renewing it in the store when less than "
        "half is left), so keep send_timeout below half of it. Bounds how soon another process picks up a "
        "dead process's replies.",
    )
    takeover_grace_seconds: float = Field(
        default=30.0, ge=0,
        description="How long a sender waits before sending a reply whose earlier claim ran out without a "
        "recorded result (in doubt: the earlier sender died, or its 'sent' still sits in a slow store). It keeps "
        "its claim meanwhile, then proves it and sends only if nobody recorded the reply as sent. Default: "
        "lease_seconds; 0 sends at once. A reply in flight when its process dies goes out again after "
        "lease_seconds + this (on SQLite at once: the restarted farm knows the old one is gone).",
    )
    send_timeout: float = Field(
        default=10.0, gt=0, description="Seconds one platform send may take before it counts as a transient failure."
    )
    max_attempts: int = Field(default=12, ge=1)
    backoff_initial: float = Field(default=0.5, gt=0)
    backoff_max: float = Field(default=60.0, gt=0)
    poll_interval: float = Field(default=0.5, gt=0)
    min_retry_seconds: float = Field(
        default=600.0, ge=0,
        description="A retryable failure is final only after max_attempts AND this long since queueing "
        "(429s count as attempts, so a long rate-limit storm alone never fails a message).",
    )
    metrics_interval: float = Field(default=10.0, gt=0, description="Seconds between outbox gauge refreshes.")
    rate_limits: dict[str, ChannelRateLimit] = Field(
        default_factory=dict, description="Per channel name, e.g. {telegram: {per_chat: 1}}."
    )

    @model_validator(mode="before")
    @classmethod
    def _grace_defaults_to_the_lease(cls, data: Any) -> Any:
        # A farm that shortens the lease (a fast store) shortens the wait for a late "sent" with it.
        if isinstance(data, dict) and "takeover_grace_seconds" not in data and "lease_seconds" in data:
            return {**data, "takeover_grace_seconds": data["lease_seconds"]}
        return data

    @model_validator(mode="after")
    def _send_fits_in_the_lease(self) -> DeliveryConfig:
        # A sender proves its claim with half the lease left; the send must end within it.
        if self.send_timeout >= self.lease_seconds / 2:
            raise ValueError("delivery.send_timeout must be less than half of delivery.lease_seconds")
        return self
