"""Data-subject rights and retention: export, forget, purge, and the audit trail around them.

Every call that shows, exports or erases personal data writes an audit entry naming
the actor (``customer``, ``system``, ``agent:<id>``, ``admin:<name>``), so an operator
can answer "who saw, exported or deleted what, and when". Audit entries hold ids and
counts only, never personal text.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import structlog

from core.errors import NotFound, SwitchboardError
from core.privacy.config import PrivacyConfig
from core.store.base import AuditEntry, Store

log = structlog.get_logger(__name__)


class PrivacyService:
    """Export, erase and purge personal data through the `Store`, auditing each action."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def export(self, contact_id: str, actor: str) -> dict[str, Any]:
        """Everything held about the contact (JSON-serialisable); {} if unknown or forgotten."""
        data = await self.store.export_contact(contact_id)
        bot = data.get("contact", {}).get("bot") if data else None
        if bot is None:
            contact = await self.store.get_contact(contact_id)
            bot = contact.bot if contact else None
        await self.store.audit(AuditEntry(
            actor=actor, action="export", target=contact_id, bot=bot,
            detail={"found": bool(data), "conversations": len(data.get("conversations", ()))},
        ))
        log.info("privacy.exported", contact=contact_id, actor=actor, found=bool(data))
        return data

    async def forget(self, contact_id: str, actor: str) -> None:
        """Erase the contact's personal data and transcript text; raise `NotFound` if unknown."""
        contact = await self.store.get_contact(contact_id)
        if contact is None:
            raise NotFound(f"contact {contact_id}")
        await self.store.forget_contact(contact_id)
        for key in (f"link:active:{contact_id}", f"link:fail:{contact_id}", f"link:no-phone-link:{contact_id}"):
            await self.store.kv_delete(key)
        await self.store.audit(AuditEntry(
            actor=actor, action="forget", target=contact_id, bot=contact.bot,
            detail={"already_deleted": contact.deleted},
        ))
        log.info("privacy.forgotten", contact=contact_id, bot=contact.bot, actor=actor)

    async def purge(self, bot: str, retention_days: int, *, actor: str = "system") -> int:
        """Delete ``bot``'s transcript events older than ``retention_days``; return how many."""
        older_than = self.store.clock.now() - timedelta(days=retention_days)
        count = await self.store.purge_transcripts(bot, older_than)
        await self.store.audit(AuditEntry(
            actor=actor, action="purge", target=bot, bot=bot,
            detail={"events": count, "retention_days": retention_days},
        ))
        log.info("privacy.purged", bot=bot, events=count, retention_days=retention_days)
        return count

    async def audit_view(self, conversation_id: str, agent: str, *, desk: str | None = None) -> None:
        """Record that ``agent`` (an agent id) opened the transcript of a conversation."""
        conversation = await self.store.get_conversation(conversation_id)
        await self.store.audit(AuditEntry(
            actor=agent if ":" in agent else f"agent:{agent}", action="viewed", target=conversation_id,
            bot=conversation.bot if conversation else None,
            detail={"desk": desk} if desk else {},
        ))


class RetentionScheduler:
    """Purges every bot's transcripts older than its ``retention_days`` every ``interval_seconds``.

    With several farm processes on one store, a store lease makes only one of them purge
    per interval. A failing run is logged and retried at the next interval.
    """

    LEASE = "privacy.retention"

    def __init__(
        self, store: Store, configs: Mapping[str, PrivacyConfig], interval_seconds: float = 3600.0
    ) -> None:
        self.service = PrivacyService(store)
        self.store = store
        self.configs = configs
        self.interval_seconds = interval_seconds
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{id(self)}"
        self.runs = 0
        self.failures = 0
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> dict[str, int]:
        """Purge every bot with a retention period now (if this process holds the lease)."""
        purged: dict[str, int] = {}
        if not await self.store.acquire_lease(self.LEASE, self.owner, max(self.interval_seconds * 0.9, 1.0)):
            return purged
        for bot, config in self.configs.items():
            if config.retention_days is None:
                continue
            purged[bot] = await self.service.purge(bot, config.retention_days)
        self.runs += 1
        return purged

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except SwitchboardError as exc:
                self.failures += 1
                log.error("privacy.retention_failed", error=str(exc), failures=self.failures)
            except Exception:  # a background task must not die silently; logged with traceback
                self.failures += 1
                log.exception("privacy.retention_crashed", failures=self.failures)
            await asyncio.sleep(self.interval_seconds)

    async def start(self) -> None:
        """Start the background task; idempotent."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="retention-scheduler")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(SwitchboardError):
            await self.store.release_lease(self.LEASE, self.owner)
