"""`TranscriptStore`: a conversation's transcript: events in order, numbered by ``seq``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from core.model import Event, Outbound


class TranscriptStore(ABC):
    """A conversation's transcript: events in order, numbered by ``seq``."""

    @abstractmethod
    async def append_events(
        self, conversation_id: str, events: Sequence[Event], outbound: Sequence[Outbound] = ()
    ) -> list[Event]:
        """Append events (and queue outbound) outside a turn, e.g. delivery receipts, notes."""

    @abstractmethod
    async def transcript(
        self, conversation_id: str, *, after_seq: int = 0, limit: int | None = None
    ) -> list[Event]:
        """Events in order with their ``seq``; ``limit`` keeps the newest ones."""
