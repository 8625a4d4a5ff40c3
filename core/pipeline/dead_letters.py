"""Replaying and dropping dead letters: the one place the web desk and the CLI go through.

A replay makes the message pending again (first in its conversation's line, attempts
reset) and asks for a turn now (``schedule``; a CLI has none and leaves it to the
running farm's sweeper). Both actions are audited with the actor.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection

import structlog

from core.store.base import AuditEntry, DeadLetter, Store

log = structlog.get_logger(__name__)


async def _nothing() -> None:
    return None


class DeadLetters:
    def __init__(
        self,
        store: Store,
        *,
        schedule: Callable[[str], None] = lambda conversation_id: None,
        changed: Callable[[], Awaitable[None]] = _nothing,
    ) -> None:
        self.store = store
        self.schedule = schedule
        self.changed = changed  # e.g. refresh the /metrics gauge

    async def list(self, bots: Collection[str] | None = None, limit: int = 100) -> list[DeadLetter]:
        """Oldest first; ``bots`` None: every bot."""
        if bots is None:
            return await self.store.dead_letters(limit=limit)
        letters = [d for bot in sorted(set(bots)) for d in await self.store.dead_letters(bot=bot, limit=limit)]
        return sorted(letters, key=lambda d: (d.dead_at, d.item.id))[:limit]

    async def replay(self, item_id: int, *, actor: str) -> str | None:
        """Make the dead letter pending again; its conversation id, or None if there is no such dead letter."""
        conversation_id = await self.store.replay_dead_letter(item_id)
        if conversation_id is not None:
            await self._record(actor, "dead_letter.replay", item_id, conversation_id)
            self.schedule(conversation_id)
        return conversation_id

    async def drop(self, item_id: int, *, actor: str) -> str | None:
        """End the dead letter without a turn; its conversation id, or None if there is no such dead letter."""
        conversation_id = await self.store.drop_dead_letter(item_id)
        if conversation_id is not None:
            await self._record(actor, "dead_letter.drop", item_id, conversation_id)
        return conversation_id

    async def _record(self, actor: str, action: str, item_id: int, conversation_id: str) -> None:
        conversation = await self.store.get_conversation(conversation_id)
        await self.store.audit(AuditEntry(actor, action, conversation_id, {"inbox": item_id}, self.store.clock.now(),
                                          conversation.bot if conversation else None))
        log.info(action, inbox=item_id, conversation=conversation_id, actor=actor)
        await self.changed()
