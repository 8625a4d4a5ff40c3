"""`InboxStore`: the inbox: durably accepted customer messages, failed turns (backoff) and dead letters."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime

from core.model import Event, Inbound, Outbound
from core.store.records import DeadLetter, InboxItem


class InboxStore(ABC):
    """The inbox: durably accepted customer messages, failed turns (backoff) and dead letters."""

    @abstractmethod
    async def ingest(self, conversation_id: str, inbound: Inbound) -> bool:
        """Durably accept a customer message; False if (channel, platform id) was seen before."""

    @abstractmethod
    async def pending_inbox(self, conversation_id: str, limit: int = 50) -> list[InboxItem]:
        """Unprocessed inbox items of one conversation, oldest first (backing-off ones too)."""

    @abstractmethod
    async def conversations_with_pending_inbox(self, limit: int = 100) -> list[str]:
        """Ids of conversations whose oldest unprocessed inbox item is due, oldest item first.

        A conversation whose oldest item backs off (`inbox_retry`) is left out until then,
        so failing conversations do not fill the window of a sweeper.
        """

    @abstractmethod
    async def inbox_retry(self, item_id: int, not_before: datetime, error: str) -> bool:
        """Count a failed turn of a pending item; try it (and its conversation) again at
        ``not_before``. False if the item is not pending (nothing written)."""

    @abstractmethod
    async def dead_letter(
        self, item_id: int, error: str, *, events: Sequence[Event] = (), outbound: Sequence[Outbound] = ()
    ) -> bool:
        """Atomically: park a pending item as a dead letter (its conversation moves on), count
        the attempt, append ``events`` to its conversation and queue ``outbound`` (the apology).
        False, and nothing written, if the item is not pending."""

    @abstractmethod
    async def dead_letters(self, *, bot: str | None = None, limit: int = 100) -> list[DeadLetter]:
        """Dead letters, oldest first."""

    @abstractmethod
    async def count_dead_letters(self) -> int: ...

    @abstractmethod
    async def replay_dead_letter(self, item_id: int) -> str | None:
        """Make a dead letter pending again (attempts reset, ``replays`` + 1); its
        conversation id, or None if it is no dead letter."""

    @abstractmethod
    async def drop_dead_letter(self, item_id: int) -> str | None:
        """Mark a dead letter processed without a turn; its conversation id, or None if it is
        no dead letter."""
