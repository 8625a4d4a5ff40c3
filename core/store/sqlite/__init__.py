"""The embedded default store: one SQLite file in WAL mode.

`SQLiteStore` is a thin facade: it owns the `SQLiteEngine` (``engine.py``: connection,
group commit, savepoints, worker thread, checkpoints, the file's OS lock) and composes
one store per concern, each in its own module with its SQL (``contacts.py``,
``conversations.py``, ``inbox.py``, ``transcript.py``, ``outbox.py``, ``receipts.py``,
``coordination.py``, ``privacy.py``) and the hot path's units of work (``hotpath.py``).

A farm on SQLite is one process (use MongoDB to scale out). The store that holds
the file's OS lock is that process: it keeps the named leases (turns, pollers) in
memory, so taking and releasing a turn writes nothing, and a second farm on the
file refuses to start (`serve_check`). Other openers (``switchboard export``,
``forget``) use the leases table and wait ``busy_timeout`` for the write lock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from core.errors import StoreUnavailable
from core.model import (
    Contact,
    Conversation,
    ConversationStatus,
    DeliveryReceipt,
    Event,
    Identity,
    Inbound,
    Outbound,
)
from core.store.base import (
    Accepted,
    AuditEntry,
    DeadLetter,
    InboxItem,
    OutboxItem,
    OutboxState,
    ReceiptOutcome,
    Store,
    TurnCommit,
    TurnState,
)
from core.store.migrations import MIGRATIONS
from core.store.sqlite.contacts import SQLiteContactStore
from core.store.sqlite.conversations import SQLiteConversationStore
from core.store.sqlite.coordination import (
    MemoryLeases,
    SQLiteKeyValueStore,
    SQLiteLeaseStore,
    clear_stale_leases,
)
from core.store.sqlite.engine import SQLiteEngine
from core.store.sqlite.hotpath import SQLiteTurnUnitOfWork
from core.store.sqlite.inbox import SQLiteInboxStore
from core.store.sqlite.outbox import SQLiteOutboxStore
from core.store.sqlite.privacy import SQLiteAuditStore, SQLitePrivacyStore
from core.store.sqlite.receipts import SQLiteReceiptStore
from core.store.sqlite.transcript import SQLiteTranscriptStore

__all__ = ["SQLiteStore"]

log = structlog.get_logger(__name__)


class SQLiteStore(Store):
    """`Store` on one SQLite file (``path``; ``:memory:`` works for throwaway use)."""

    def __init__(self, path: str | Path, *, busy_timeout: float = 5.0, checkpoint_interval: float = 0.1) -> None:
        self.path = str(path)
        self._engine = SQLiteEngine(self.path, busy_timeout=busy_timeout, checkpoint_interval=checkpoint_interval)
        engine = self._engine
        self.contacts = SQLiteContactStore(engine)
        self.conversations = SQLiteConversationStore(engine)
        self.inbox = SQLiteInboxStore(engine)
        self.transcripts = SQLiteTranscriptStore(engine)
        self.outbox = SQLiteOutboxStore(engine)
        self.receipts = SQLiteReceiptStore(engine)
        self.leases = SQLiteLeaseStore(engine)
        self.kv = SQLiteKeyValueStore(engine)
        self.privacy = SQLitePrivacyStore(engine)
        self.audits = SQLiteAuditStore(engine)
        self.turns = SQLiteTurnUnitOfWork(engine, self.leases)

    # -- lifecycle -----------------------------------------------------------------
    @property
    def _db(self) -> sqlite3.Connection | None:
        """The engine's connection while open (tests reach the file through it)."""
        return self._engine.db

    async def open(self) -> None:
        if self._engine.is_open:
            return
        version = await self._engine.open(MIGRATIONS)
        owns_file = self._engine.owns_file
        if owns_file:
            cleared = await self._engine.direct(clear_stale_leases)
            if cleared:
                log.info("store.stale_leases_cleared", count=cleared)
        if owns_file or self.path == ":memory:":
            self.leases.memory = MemoryLeases()
        log.info("store.opened", kind="sqlite", path=self.path, schema_version=version)

    async def close(self) -> None:
        await self._engine.close()
        self.leases.memory = None

    def serve_check(self) -> None:
        """A farm serves from this file only if no other process does (see `Store.serve_check`).

        The process that holds the file's OS lock is its only farm: its leases (turns,
        pollers, sweeps) then live in memory, saving two writes per message, and end with
        the process. Another farm on the same file would not see them, so it refuses.
        """
        if not self._engine.is_open:
            raise StoreUnavailable("store is not open")
        if self.leases.memory is None:
            raise StoreUnavailable(
                f"{self.path} is already served by another farm process (it holds {self.path}.lock); "
                "a farm on SQLite is one process: stop the other one, or use MongoDB to run several"
            )

    async def ping(self) -> None:
        # Ready means able to take writes: an empty write transaction, which waits for
        # (and fails on) a write lock another process holds, as an ingest would.
        await self._engine.tx(lambda db: None)

    # -- ContactStore (contacts) --------------------------------------------------
    async def resolve_contact(self, bot: str, identity: Identity, *, display_name: str | None = None) -> Contact:
        return await self.contacts.resolve_contact(bot, identity, display_name=display_name)

    async def get_contact(self, contact_id: str) -> Contact | None:
        return await self.contacts.get_contact(contact_id)

    async def save_contact(self, contact: Contact) -> None:
        await self.contacts.save_contact(contact)

    async def find_contacts(
        self,
        bot: str,
        *,
        phone: str | None = None,
        identity: Identity | None = None,
    ) -> list[Contact]:
        return await self.contacts.find_contacts(bot, phone=phone, identity=identity)

    async def merge_contacts(self, keep_id: str, drop_id: str) -> Contact:
        return await self.contacts.merge_contacts(keep_id, drop_id)

    # -- ConversationStore (conversations) ----------------------------------------
    async def conversation_for(self, bot: str, contact_id: str) -> Conversation:
        return await self.conversations.conversation_for(bot, contact_id)

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        return await self.conversations.get_conversation(conversation_id)

    async def find_conversation_by_thread(self, bot: str, desk_thread: str) -> Conversation | None:
        return await self.conversations.find_conversation_by_thread(bot, desk_thread)

    async def list_conversations(
        self,
        bot: str | None = None,
        statuses: Sequence[ConversationStatus] | None = None,
        limit: int = 100,
    ) -> list[Conversation]:
        return await self.conversations.list_conversations(bot, statuses, limit)

    async def save_conversation(self, conversation: Conversation) -> Conversation:
        return await self.conversations.save_conversation(conversation)

    async def count_conversations(self, bot: str | None = None) -> int:
        return await self.conversations.count_conversations(bot)

    # -- InboxStore (inbox) -------------------------------------------------------
    async def ingest(self, conversation_id: str, inbound: Inbound) -> bool:
        return await self.inbox.ingest(conversation_id, inbound)

    async def pending_inbox(self, conversation_id: str, limit: int = 50) -> list[InboxItem]:
        return await self.inbox.pending_inbox(conversation_id, limit)

    async def conversations_with_pending_inbox(self, limit: int = 100) -> list[str]:
        return await self.inbox.conversations_with_pending_inbox(limit)

    async def inbox_retry(self, item_id: int, not_before: datetime, error: str) -> bool:
        return await self.inbox.inbox_retry(item_id, not_before, error)

    async def dead_letter(
        self,
        item_id: int,
        error: str,
        *,
        events: Sequence[Event] = (),
        outbound: Sequence[Outbound] = (),
    ) -> bool:
        return await self.inbox.dead_letter(item_id, error, events=events, outbound=outbound)

    async def dead_letters(self, *, bot: str | None = None, limit: int = 100) -> list[DeadLetter]:
        return await self.inbox.dead_letters(bot=bot, limit=limit)

    async def count_dead_letters(self) -> int:
        return await self.inbox.count_dead_letters()

    async def replay_dead_letter(self, item_id: int) -> str | None:
        return await self.inbox.replay_dead_letter(item_id)

    async def drop_dead_letter(self, item_id: int) -> str | None:
        return await self.inbox.drop_dead_letter(item_id)

    # -- TranscriptStore (transcripts) --------------------------------------------
    async def append_events(
        self,
        conversation_id: str,
        events: Sequence[Event],
        outbound: Sequence[Outbound] = (),
    ) -> list[Event]:
        return await self.transcripts.append_events(conversation_id, events, outbound)

    async def transcript(self, conversation_id: str, *, after_seq: int = 0, limit: int | None = None) -> list[Event]:
        return await self.transcripts.transcript(conversation_id, after_seq=after_seq, limit=limit)

    # -- OutboxStore (outbox) -----------------------------------------------------
    async def claim_outbox(self, owner: str, *, limit: int, lease_seconds: float) -> list[OutboxItem]:
        return await self.outbox.claim_outbox(owner, limit=limit, lease_seconds=lease_seconds)

    async def outbox_renew(self, outbound_id: str, token: str, lease_seconds: float) -> bool:
        return await self.outbox.outbox_renew(outbound_id, token, lease_seconds)

    async def outbox_sent(self, outbound_id: str, platform_message_id: str, *, token: str | None = None) -> bool:
        return await self.outbox.outbox_sent(outbound_id, platform_message_id, token=token)

    async def outbox_retry(
        self,
        outbound_id: str,
        not_before: datetime,
        error: str,
        *,
        token: str | None = None,
    ) -> bool:
        return await self.outbox.outbox_retry(outbound_id, not_before, error, token=token)

    async def outbox_failed(self, outbound_id: str, error: str, *, token: str | None = None) -> bool:
        return await self.outbox.outbox_failed(outbound_id, error, token=token)

    async def get_outbox_item(self, outbound_id: str) -> OutboxItem | None:
        return await self.outbox.get_outbox_item(outbound_id)

    async def outbox_counts(self) -> dict[OutboxState, int]:
        return await self.outbox.outbox_counts()

    # -- ReceiptStore (receipts) --------------------------------------------------
    async def find_by_platform_message(self, channel: str, platform_message_id: str) -> OutboxItem | None:
        return await self.receipts.find_by_platform_message(channel, platform_message_id)

    async def record_receipt(self, receipt: DeliveryReceipt) -> ReceiptOutcome:
        return await self.receipts.record_receipt(receipt)

    async def apply_parked_receipts(self, limit: int = 100) -> int:
        return await self.receipts.apply_parked_receipts(limit)

    # -- LeaseStore (leases) ------------------------------------------------------
    async def acquire_lease(self, name: str, owner: str, ttl_seconds: float) -> bool:
        return await self.leases.acquire_lease(name, owner, ttl_seconds)

    async def release_lease(self, name: str, owner: str) -> None:
        await self.leases.release_lease(name, owner)

    # -- KeyValueStore (kv) -------------------------------------------------------
    async def remember(self, key: str, ttl_seconds: float) -> bool:
        return await self.kv.remember(key, ttl_seconds)

    async def kv_get(self, key: str) -> Any | None:
        return await self.kv.kv_get(key)

    async def kv_set(self, key: str, value: Any, ttl_seconds: float | None = None) -> None:
        await self.kv.kv_set(key, value, ttl_seconds)

    async def kv_delete(self, key: str) -> None:
        await self.kv.kv_delete(key)

    # -- PrivacyStore (privacy) ---------------------------------------------------
    async def export_contact(self, contact_id: str) -> dict[str, Any]:
        return await self.privacy.export_contact(contact_id)

    async def forget_contact(self, contact_id: str) -> None:
        await self.privacy.forget_contact(contact_id)

    async def purge_transcripts(self, bot: str, older_than: datetime) -> int:
        return await self.privacy.purge_transcripts(bot, older_than)

    # -- AuditStore (audits) ------------------------------------------------------
    async def audit(self, entry: AuditEntry) -> None:
        await self.audits.audit(entry)

    async def audit_log(self, *, bot: str | None = None, limit: int = 100) -> list[AuditEntry]:
        return await self.audits.audit_log(bot=bot, limit=limit)

    # -- TurnUnitOfWork (turns) ---------------------------------------------------
    async def commit_turn(
        self,
        conversation: Conversation,
        *,
        inbox_ids: Sequence[int] = (),
        events: Sequence[Event] = (),
        outbound: Sequence[Outbound] = (),
    ) -> Conversation:
        return await self.turns.commit_turn(conversation, inbox_ids=inbox_ids, events=events, outbound=outbound)

    async def accept_inbound(self, inbound: Inbound, *, phone: str | None = None) -> Accepted | None:
        return await self.turns.accept_inbound(inbound, phone=phone)

    async def next_turn(
        self,
        conversation_id: str,
        *,
        lease: str,
        owner: str,
        lease_seconds: float,
        history: int,
        cached: tuple[int, int] | None = None,
    ) -> TurnState | None:
        return await self.turns.next_turn(
            conversation_id, lease=lease, owner=owner, lease_seconds=lease_seconds, history=history, cached=cached)

    async def finish_turn(
        self,
        conversation: Conversation,
        *,
        inbox_ids: Sequence[int] = (),
        events: Sequence[Event] = (),
        outbound: Sequence[Outbound] = (),
        owner: str,
        lease_seconds: float,
        claim: bool = True,
        release: str | None = None,
    ) -> TurnCommit:
        return await self.turns.finish_turn(
            conversation, inbox_ids=inbox_ids, events=events, outbound=outbound, owner=owner, lease_seconds=lease_seconds, claim=claim, release=release)
