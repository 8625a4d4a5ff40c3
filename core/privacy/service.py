"""Data-subject rights and retention: export, forget, purge, and the audit trail around them.

Every call that shows, exports or erases personal data writes an audit entry naming
the actor (``customer``, ``system``, ``agent:<id>``, ``admin:<name>``), so an operator
can answer "who saw, exported or deleted what, and when". Audit entries hold ids and
counts only, never personal text.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from core.errors import NotFound, SwitchboardError
from core.periodic import Periodic
from core.privacy.config import PrivacyConfig
from core.privacy.erasure import (
    COPIES_PREFIX,
    MEDIA_PREFIX,
    JobStatus,
    copies_of,
    job_for,
    job_status,
    media_key,
    media_of,
    media_refs,
    queue_jobs,
    recorded_copies,
)
from core.store.base import AuditEntry, Store

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ForgetReport:
    """What `PrivacyService.forget` erased where (ids and counts only; kept in the audit log)."""

    contact: str
    bot: str
    conversations: int = 0
    events: int = 0
    media: int = 0
    jobs: tuple[JobStatus, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        return {"contact": self.contact, "bot": self.bot, "conversations": self.conversations,
                "events": self.events, "media": self.media, "desk_copies": [j.as_dict() for j in self.jobs]}


class PrivacyService:
    """Export, erase and purge personal data through the `Store`, auditing each action."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def export(self, contact_id: str, actor: str) -> dict[str, Any]:
        """Everything held about the contact (JSON-serialisable); {} if unknown or forgotten."""
        data = await self.store.export_contact(contact_id)
        data = await self._with_copies(contact_id, data)
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

    async def _with_copies(self, contact_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """Where copies went (desk threads, stored media) and how their erasure stands."""
        jobs = [j.as_dict() for j in await job_status(self.store, contact_id)]
        if not data:
            return {"contact": {"id": contact_id, "deleted": True}, "erasure": jobs} if jobs else {}
        threads: list[dict[str, Any]] = []
        media: list[dict[str, Any]] = []
        bot = str(data["contact"]["bot"])
        for conversation in data.get("conversations", ()):
            for copy in await copies_of(self.store, conversation["id"], conversation.get("desk_thread")):
                threads.append({**copy.as_dict(), "conversation": conversation["id"], "status": "held"})
            refs = media_refs(conversation.get("transcript", ()))
            refs += [r for r in await media_of(self.store, conversation["id"]) if r not in refs]
            for channel, file_id in refs:
                held = await self.store.kv_get(media_key(bot, channel, file_id)) is not None
                media.append({"conversation": conversation["id"], "channel": channel, "file_id": file_id,
                              "stored": held})
        return {**data, "copies": {"desk_threads": threads, "media": media}, "erasure": jobs}

    async def forget(self, contact_id: str, actor: str) -> ForgetReport:
        """Erase the contact's personal data, transcript text, stored media and desk copies;
        raise `NotFound` if unknown. Desk copies (Slack) are erased by outbox jobs queued here
        (retried until done); the report lists them as they stand right after queueing."""
        contact = await self.store.get_contact(contact_id)
        if contact is None:
            raise NotFound(f"contact {contact_id}")
        held = await self.store.export_contact(contact_id)
        conversations = [c for c in held.get("conversations", ())] if held else []
        copies = []
        for conversation in conversations:
            copies += await copies_of(self.store, conversation["id"], conversation.get("desk_thread"))
        media = [ref for conversation in conversations for ref in media_refs(conversation.get("transcript", ()))]
        for conversation in conversations:
            media += [ref for ref in await media_of(self.store, conversation["id"]) if ref not in media]
        await self.store.forget_contact(contact_id)
        for key in (f"link:active:{contact_id}", f"link:fail:{contact_id}", f"link:no-phone-link:{contact_id}"):
            await self.store.kv_delete(key)
        erased_media = 0
        for channel, file_id in media:
            key = media_key(contact.bot, channel, file_id)
            if await self.store.kv_get(key) is not None:
                await self.store.kv_delete(key)
                erased_media += 1
        for conversation in conversations:
            await self.store.kv_delete(COPIES_PREFIX + conversation["id"])
            await self.store.kv_delete(MEDIA_PREFIX + conversation["id"])
        jobs = [job_for(contact.bot, copy) for copy in copies]
        await queue_jobs(self.store, contact_id, jobs)
        report = ForgetReport(
            contact=contact_id, bot=contact.bot, conversations=len(conversations),
            events=sum(len(c.get("transcript", ())) for c in conversations), media=erased_media,
            jobs=tuple(await job_status(self.store, contact_id)),
        )
        await self.store.audit(AuditEntry(
            actor=actor, action="forget", target=contact_id, bot=contact.bot,
            detail={"already_deleted": contact.deleted, "conversations": report.conversations,
                    "events": report.events, "media": erased_media,
                    "desk_copies": [{"desk": c.desk, "thread": c.thread, "job": j.id} for c, j in zip(copies, jobs)]},
        ))
        log.info("privacy.forgotten", contact=contact_id, bot=contact.bot, actor=actor,
                 desk_copies=len(jobs), media=erased_media)
        return report

    async def erasure_status(self, subject: str) -> list[JobStatus]:
        """The desk erasure jobs queued for a contact (or ``purge:<bot>``): pending, done or failed."""
        return await job_status(self.store, subject)

    async def purge(self, bot: str, retention_days: int, *, actor: str = "system") -> int:
        """Delete ``bot``'s transcript events older than ``retention_days``; return how many."""
        older_than = self.store.clock.now() - timedelta(days=retention_days)
        count = await self.store.purge_transcripts(bot, older_than)
        jobs = await self._purge_copies(bot, older_than)
        await self.store.audit(AuditEntry(
            actor=actor, action="purge", target=bot, bot=bot,
            detail={"events": count, "retention_days": retention_days, "desk_copies": len(jobs)},
        ))
        log.info("privacy.purged", bot=bot, events=count, retention_days=retention_days, desk_copies=len(jobs))
        return count

    async def _purge_copies(self, bot: str, older_than: datetime) -> list[str]:
        """Queue erasure of desk threads opened before ``older_than`` (copies of purged text)."""
        jobs = []
        # The recorded copies only (a range scan of their keys): a sweep over every conversation
        # read 100,000 conversations and as many keys on the event loop at each start (1.3 s, +68 MB).
        for key, held in await self.store.kv_items(COPIES_PREFIX):
            copies = recorded_copies(held)
            old = [c for c in copies if c.at and datetime.fromisoformat(c.at) < older_than]
            if not old:
                continue
            conversation = await self.store.get_conversation(key.removeprefix(COPIES_PREFIX))
            if conversation is None or conversation.bot != bot:
                continue
            kept = [c.as_dict() for c in copies if c not in old]
            if kept:
                await self.store.kv_set(key, kept)
            else:
                await self.store.kv_delete(key)
            jobs += [job_for(bot, c) for c in old]
        await queue_jobs(self.store, f"purge:{bot}", jobs)
        return [j.id for j in jobs]

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
        self._job = Periodic("retention-scheduler", interval_seconds, self._step)

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

    async def _step(self) -> None:
        try:
            await self.run_once()
        except SwitchboardError as exc:
            self.failures += 1
            log.error("privacy.retention_failed", error=str(exc), failures=self.failures)
        except Exception:  # counted here; `Periodic` logs it with its traceback
            self.failures += 1
            raise

    async def start(self) -> None:
        """Start the background job; idempotent."""
        await self._job.start()

    async def stop(self) -> None:
        await self._job.stop()
        with contextlib.suppress(SwitchboardError):
            await self.store.release_lease(self.LEASE, self.owner)
