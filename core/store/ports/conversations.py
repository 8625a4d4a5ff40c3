"""`ConversationStore`: conversations: one per contact and bot, saved with a version check; found by desk thread."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from core.model import Conversation, ConversationStatus


class ConversationStore(ABC):
    """Conversations: one per contact and bot, saved with a version check; found by desk thread."""

    @abstractmethod
    async def conversation_for(self, bot: str, contact_id: str) -> Conversation:
        """The contact's conversation with ``bot``, created on first use."""

    @abstractmethod
    async def get_conversation(self, conversation_id: str) -> Conversation | None: ...

    @abstractmethod
    async def find_conversation_by_thread(self, bot: str, desk_thread: str) -> Conversation | None: ...

    @abstractmethod
    async def list_conversations(
        self,
        bot: str | None = None,
        statuses: Sequence[ConversationStatus] | None = None,
        limit: int = 100,
    ) -> list[Conversation]:
        """Most recently updated first."""

    @abstractmethod
    async def save_conversation(self, conversation: Conversation) -> Conversation:
        """Save if the stored version equals ``conversation.version``; return it with version + 1.

        Raises `ConcurrencyConflict` otherwise.
        """

    @abstractmethod
    async def count_conversations(self, bot: str | None = None) -> int: ...
