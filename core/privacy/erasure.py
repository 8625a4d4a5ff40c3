"""Erasure beyond the store: the copies desks hold (Slack cards and threads) and stored media.

Where copies went is recorded as they are made: `record_copy` (called by the handoff
service for every desk thread it opens) keeps ``{desk, thread, at}`` under the
conversation's key ``privacy:copies:<conversation id>``. `forget` and retention purges turn
each copy into an *erasure job*: an outbox item on the pseudo channel `ERASURE_CHANNEL`
(``chat_id`` = ``<desk>:<thread>``), so the outbox sender retries it with backoff until the
desk is reachable, and a job that fails for good stays visible as a failed item (dead letter).
A bot's jobs share one outbox queue of their own (`queue_jobs`), so a Slack outage never
holds back customers' messages.

`DeskErasureChannel` is the "adapter" the sender delivers such jobs through: it asks the
desk's `ErasureTarget` to erase the thread and audits the counts; the counts become the
item's platform message id (``deleted=3 blanked=1 gone=0 left=0``). The jobs of one forget
or purge are listed under ``privacy:erasure:<subject>`` for ``switchboard forget --status``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Protocol

import structlog

from core.engine import TurnOutput
from core.errors import BadRequest, ChannelError
from core.model import Event, Inbound, Outbound, new_id, utcnow
from core.pipeline.hooks import TurnContext
from core.ports import Capabilities, RateLimits, Route
from core.store.base import AuditEntry, OutboxItem, Store

log = structlog.get_logger(__name__)

ERASURE_CHANNEL = "desk-erasure"
COPIES_PREFIX = "privacy:copies:"
JOBS_PREFIX = "privacy:erasure:"
MEDIA_PREFIX = "privacy:media:"
QUEUE_CONTACT = "privacy:erasure-queue"  # the pseudo contact whose conversation holds a bot's erasure jobs
_COUNT = re.compile(r"(deleted|blanked|gone|left)=(\d+)")


@dataclass(frozen=True, slots=True)
class ErasureCount:
    """What erasing one desk thread did: messages deleted, blanked (edited to a marker),
    already gone, and left (the token may neither delete nor edit them)."""

    deleted: int = 0
    blanked: int = 0
    gone: int = 0
    left: int = 0

    def __add__(self, other: ErasureCount) -> ErasureCount:
        return ErasureCount(self.deleted + other.deleted, self.blanked + other.blanked,
                            self.gone + other.gone, self.left + other.left)

    def encode(self) -> str:
        return f"deleted={self.deleted} blanked={self.blanked} gone={self.gone} left={self.left}"

    @classmethod
    def decode(cls, text: str | None) -> ErasureCount | None:
        found = dict(_COUNT.findall(text or ""))
        return cls(**{k: int(v) for k, v in found.items()}) if found else None


class ErasureTarget(Protocol):
    """A desk that can erase what it posted for a handoff (the Slack desk)."""

    async def erase_thread(self, thread: str) -> ErasureCount: ...


@dataclass(frozen=True, slots=True)
class Copy:
    """A copy of a conversation outside the store: a desk thread."""

    desk: str
    thread: str
    at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"desk": self.desk, "thread": self.thread, "at": self.at}


@dataclass(frozen=True, slots=True)
class JobStatus:
    """One erasure job as ``forget --status`` shows it."""

    id: str
    desk: str
    thread: str
    state: str  # pending / sent (done) / failed (dead letter) / unknown
    attempts: int = 0
    error: str | None = None
    count: ErasureCount | None = None

    def as_dict(self) -> dict[str, Any]:
        done = self.state == "sent"
        return {"job": self.id, "desk": self.desk, "thread": self.thread,
                "status": "erased" if done else "failed" if self.state == "failed" else self.state,
                "attempts": self.attempts, "error": self.error,
                "counts": None if self.count is None else {"deleted": self.count.deleted,
                                                           "blanked": self.count.blanked,
                                                           "gone": self.count.gone, "left": self.count.left}}


async def record_copy(store: Store, conversation_id: str, desk: str, thread: str) -> None:
    """Remember that ``desk`` holds a copy of the conversation in ``thread`` (idempotent)."""
    key = COPIES_PREFIX + conversation_id
    held = await store.kv_get(key)
    copies = list(held) if isinstance(held, list) else []
    if any(c.get("desk") == desk and c.get("thread") == thread for c in copies if isinstance(c, dict)):
        return
    copies.append({"desk": desk, "thread": thread, "at": utcnow().isoformat()})
    await store.kv_set(key, copies)


async def copies_of(store: Store, conversation_id: str, desk_thread: str | None = None) -> list[Copy]:
    """The desk copies recorded for a conversation (plus its current desk thread, for
    conversations handed off before copies were recorded); web desk "threads" are views of
    the store itself and are not copies."""
    copies = recorded_copies(await store.kv_get(COPIES_PREFIX + conversation_id))
    if desk_thread and not desk_thread.startswith("web:") and all(c.thread != desk_thread for c in copies):
        copies.append(Copy("slack", desk_thread))
    return copies


def recorded_copies(held: Any) -> list[Copy]:
    """The desk copies `record_copy` stored under a conversation's key (web desk "threads" are
    views of the store itself, not copies: left out)."""
    return [Copy(str(c["desk"]), str(c["thread"]), c.get("at")) for c in (held if isinstance(held, list) else [])
            if isinstance(c, dict) and c.get("desk") and c.get("thread") and c.get("desk") != "web"]


def job_for(bot: str, copy: Copy) -> Outbound:
    """The outbox item that erases ``copy`` (its queue is set by `queue_jobs`)."""
    return Outbound(conversation_id="", bot=bot, channel=ERASURE_CHANNEL, chat_id=f"{copy.desk}:{copy.thread}",
                    id=new_id("erase"))


async def queue_jobs(store: Store, subject: str, jobs: Sequence[Outbound]) -> list[Outbound]:
    """Queue erasure jobs durably, in their bot's erasure queue, and list them under ``subject``
    (a contact id or ``purge:<bot>``). Each bot has one queue: a conversation of the pseudo
    contact `QUEUE_CONTACT` (no transcript, never handed off, so no desk lists it), so an
    outage of Slack holds back no customer's messages, only the next erasures."""
    queued: list[Outbound] = []
    for bot in dict.fromkeys(j.bot for j in jobs):
        queue = await store.conversation_for(bot, QUEUE_CONTACT)
        mine = [replace(j, conversation_id=queue.id) for j in jobs if j.bot == bot]
        await store.append_events(queue.id, [], mine)
        queued += mine
    if queued:
        key = JOBS_PREFIX + subject
        held = await store.kv_get(key)
        listed = list(held) if isinstance(held, list) else []
        await store.kv_set(key, [*listed, *(j.id for j in queued)])
    return queued


async def job_status(store: Store, subject: str) -> list[JobStatus]:
    """Where the erasure jobs of ``subject`` stand (the outbox keeps their state)."""
    held = await store.kv_get(JOBS_PREFIX + subject)
    statuses: list[JobStatus] = []
    for job_id in held if isinstance(held, list) else []:
        item = await store.get_outbox_item(str(job_id))
        if item is None:
            statuses.append(JobStatus(str(job_id), "?", "?", "unknown"))
            continue
        statuses.append(status_of(item))
    return statuses


def status_of(item: OutboxItem) -> JobStatus:
    desk, _, thread = item.outbound.chat_id.partition(":")
    return JobStatus(item.outbound.id, desk, thread, item.state.value, item.attempts, item.last_error,
                     ErasureCount.decode(item.platform_message_id))


def media_key(bot: str, channel: str, file_id: str) -> str:
    """Where an adapter keeps an upload in its key-value space (`channels.webchat_files`:
    ``file:<id>`` under the adapter scope ``<bot>:<channel>``)."""
    return f"adapter:{bot}:{channel}:file:{file_id}"


def media_refs(transcript: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(channel, file id) of every attachment in an exported transcript."""
    refs: list[tuple[str, str]] = []
    for event in transcript:
        data = event.get("data") or {}
        for attachment in data.get("attachments") or () if isinstance(data, Mapping) else ():
            if isinstance(attachment, Mapping) and attachment.get("file_id"):
                refs.append((str(event.get("channel") or ""), str(attachment["file_id"])))
    return list(dict.fromkeys(refs))


class DeskErasureChannel:
    """Delivers erasure jobs from the outbox to the desks (one instance per bot)."""

    name: ClassVar[str] = ERASURE_CHANNEL
    capabilities: ClassVar[Capabilities] = Capabilities()
    rate_limits: ClassVar[RateLimits] = RateLimits(per_bot=20.0, per_chat=20.0, per_chat_burst=20)

    def __init__(self, bot: str, targets: Mapping[str, ErasureTarget], store: Store) -> None:
        self.bot = bot
        self.targets = targets
        self.store = store

    def routes(self) -> Sequence[Route]:
        return ()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, message: Outbound) -> str:
        count = await erase(self.targets, self.store, message)
        return count.encode()

    async def typing(self, chat_id: str) -> None:
        return None

    async def mark_read(self, message: Inbound, *, typing: bool = True) -> None:
        return None

    def in_service_window(self, last_customer_message_age_seconds: float) -> bool:
        return True


async def erase(targets: Mapping[str, ErasureTarget], store: Store, job: Outbound, *, actor: str = "system") -> ErasureCount:
    """Run one erasure job against its desk and audit the counts; raises the desk's errors."""
    desk, _, thread = job.chat_id.partition(":")
    target = targets.get(desk)
    if target is None:
        raise BadRequest(f"no '{desk}' desk configured to erase thread {thread} in")
    count = await target.erase_thread(thread)
    await store.audit(AuditEntry(actor=actor, action="erasure", target=job.id, bot=job.bot, detail={
        "desk": desk, "thread": thread, "deleted": count.deleted, "blanked": count.blanked,
        "gone": count.gone, "left": count.left}))
    log.info("privacy.erasure_done", job=job.id, desk=desk, deleted=count.deleted, blanked=count.blanked,
             left=count.left)
    return count


async def attempt_pending(store: Store, targets: Mapping[str, ErasureTarget], subject: str, *,
                          actor: str) -> list[JobStatus]:
    """Try the pending erasure jobs of ``subject`` once, now (``switchboard forget`` does, so its
    report can say what was erased); what fails stays queued for the farm's outbox sender."""
    for status in await job_status(store, subject):
        item = await store.get_outbox_item(status.id) if status.state == "pending" else None
        if item is None or status.desk not in targets:
            continue
        try:
            count = await erase(targets, store, item.outbound, actor=actor)
        except ChannelError as exc:
            log.warning("privacy.erasure_deferred", job=status.id, error=str(exc))
            await store.outbox_retry(status.id, utcnow(), str(exc))
            continue
        await store.outbox_sent(status.id, count.encode())
    return await job_status(store, subject)


def describe(status: JobStatus) -> str:
    """One line of the forget report."""
    where = f"{status.desk} thread {status.thread}"
    if status.state == "sent" and status.count is not None:
        c = status.count
        left = f", {c.left} LEFT (the token may not delete them; set desk.slack.erasure_token)" if c.left else ""
        return f"{where}: erased ({c.deleted} deleted, {c.blanked} blanked, {c.gone} already gone{left})"
    if status.state == "failed":
        return f"{where}: FAILED for good after {status.attempts} attempts ({status.error}); queue it again " \
               "with `switchboard forget --retry`"
    if status.state == "pending":
        error = f" (last error: {status.error})" if status.error else ""
        return f"{where}: pending{error}; the running farm retries it until done"
    return f"{where}: {status.state}"


async def retry_failed(store: Store, subject: str) -> int:
    """Queue failed erasure jobs of ``subject`` again (new jobs for the same threads)."""
    jobs, kept = [], []
    for status in await job_status(store, subject):
        item = await store.get_outbox_item(status.id) if status.state == "failed" else None
        if item is None:
            kept.append(status.id)
            continue
        jobs.append(job_for(item.outbound.bot, Copy(status.desk, status.thread)))
    if jobs:
        await store.kv_set(JOBS_PREFIX + subject, kept)
    await queue_jobs(store, subject, jobs)
    return len(jobs)


async def record_media(store: Store, conversation_id: str, refs: Iterable[tuple[str, str]]) -> None:
    """Remember media a conversation received (channel, file id): a caption's turn keeps no
    attachment in its transcript event, and `forget` must still find the stored file."""
    key = MEDIA_PREFIX + conversation_id
    held = await store.kv_get(key)
    known = [tuple(r) for r in held if isinstance(r, list) and len(r) == 2] if isinstance(held, list) else []
    new = [list(r) for r in refs if tuple(r) not in known]
    if new:
        await store.kv_set(key, [*(list(k) for k in known), *new])


async def media_of(store: Store, conversation_id: str) -> list[tuple[str, str]]:
    held = await store.kv_get(MEDIA_PREFIX + conversation_id)
    return [(str(r[0]), str(r[1])) for r in held if isinstance(r, list) and len(r) == 2] \
        if isinstance(held, list) else []


class MediaRecorder:
    """After-commit hook: records the file ids of a turn's attachments (`record_media`)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def has_work(self, ctx: TurnContext, output: TurnOutput) -> bool:
        return any(a.file_id for a in ctx.turn.message.attachments)

    async def committed(self, ctx: TurnContext, output: TurnOutput, events: Sequence[Event]) -> None:
        message = ctx.turn.message
        refs = [(message.channel, str(a.file_id)) for a in message.attachments if a.file_id]
        if refs:
            await record_media(self.store, ctx.turn.conversation.id, refs)
