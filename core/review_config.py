"""The review loop's settings of one bot (``bots.<name>.review`` in farm.yml); a leaf module `core.config` aggregates."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ReviewConfig(BaseModel):
    """Which customer messages go to the review queue, and where labels are written."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    confidence_threshold: float = Field(
        default=0.6, ge=0.0, le=1.0,
        description="A message whose intent confidence is below this goes to the review queue (low confidence).")
    rating_at_most: int = Field(
        default=2, ge=1, le=5, description="The customer messages of a case rated this or lower go to the queue.")
    case_messages: int = Field(default=20, ge=1, le=200,
                               description="At most this many messages of a low-rated case are queued.")
    follow_seconds: float = Field(
        default=10.0, gt=0,
        description="How often a farm process looks for a model another process retrained (several processes).")
