"""`ReviewStore`: the review queue of customer messages the bot handled badly, and their labels.

An item is one customer message (masked text only), keyed by ``<conversation>:<seq>`` so a
message that is added again (a fallback that also led to a handoff) is one item with the
reasons merged. A lead labels it with an intent or marks it out of scope. Forget and
retention purges delete a contact's items (``ComposedStore`` calls `forget_review_contact`
and `purge_review` next to the privacy port's own erasure).
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.errors import ConfigError

REASONS = ("fallback", "low_confidence", "handoff", "low_rating", "flagged", "imported")


class ReviewStatus(enum.StrEnum):
    OPEN = "open"
    LABELLED = "labelled"
    OUT_OF_SCOPE = "out_of_scope"


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """One customer message in the review queue (``text`` is already masked)."""

    id: str
    bot: str
    text: str
    reasons: tuple[str, ...]
    created_at: datetime
    conversation_id: str = ""
    contact_id: str = ""
    seq: int = 0
    language: str | None = None
    predicted_intent: str | None = None
    confidence: float | None = None
    status: ReviewStatus = ReviewStatus.OPEN
    label: str | None = None
    holdout: bool = False
    labelled_by: str | None = None
    labelled_at: datetime | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def key(conversation_id: str, seq: int) -> str:
        return f"{conversation_id}:{seq}"


class ReviewStore(ABC):
    """The review queue; every method is safe to call concurrently (several farm processes)."""

    @abstractmethod
    async def add_review(self, item: ReviewItem) -> ReviewItem:
        """Insert ``item``, or merge its reasons into the item with the same id (a label stays); the stored item."""

    @abstractmethod
    async def get_review(self, item_id: str) -> ReviewItem | None: ...

    @abstractmethod
    async def review_items(self, *, bot: str | None = None, status: ReviewStatus | None = None,
                           limit: int = 200) -> list[ReviewItem]:
        """Items newest first, of one bot and one status if given."""

    @abstractmethod
    async def label_review(self, item_id: str, *, status: ReviewStatus, label: str | None, holdout: bool,
                           by: str, at: datetime) -> ReviewItem | None:
        """Set (or with `ReviewStatus.OPEN`, clear) the item's label; None if there is no such item."""

    @abstractmethod
    async def contact_reviews(self, contact_id: str) -> list[ReviewItem]:
        """The contact's items, oldest first (for a data export)."""

    @abstractmethod
    async def forget_review_contact(self, contact_id: str) -> int:
        """Delete every item of the contact (a forget); how many."""

    @abstractmethod
    async def purge_review(self, bot: str, older_than: datetime) -> int:
        """Delete the bot's items created before ``older_than`` (retention); how many."""


def review_port(store: Any) -> ReviewStore:
    """The review queue of a farm's store (both built-in stores compose one as ``store.review``)."""
    port = getattr(store, "review", None)
    if not isinstance(port, ReviewStore):
        raise ConfigError(f"the store {type(store).__name__} keeps no review queue", key="store")
    return port
