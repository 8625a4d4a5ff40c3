"""The scale-out store: MongoDB through PyMongo's `AsyncMongoClient`.

Several farm processes share one database. Every race is decided by the server:
inbox de-duplication by a unique index, turn commits by a version check in
``find_one_and_update`` (inside a transaction when the deployment supports
them), transcript ``seq`` by an atomic ``$inc`` on the conversation, outbox
claims and named leases by conditional updates on owner + expiry. The features
relied on are listed in ``docs/mongodb.md`` and checked by ``tests/store/``.

Timestamps are int64 microseconds since the Unix epoch (exact round trip, plain
range queries); only the TTL fields (``expire_at``) are BSON dates. Free-form
JSON (event data, slots, kv values, audit detail) is stored as JSON text so any
key survives.

`MongoStore` is a thin facade: it owns the `MongoConnection` (``connection.py``) and
composes one store per concern, each in its own module (``contacts.py``,
``conversations.py``, ``inbox.py``, ``transcript.py``, ``outbox.py``, ``receipts.py``,
``coordination.py``, ``privacy.py``) and the hot path (``hotpath.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

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
from core.store.mongo.connection import Doc, MongoConnection
from core.store.mongo.contacts import MongoContactStore
from core.store.mongo.conversations import MongoConversationStore
from core.store.mongo.coordination import MongoKeyValueStore, MongoLeaseStore
from core.store.mongo.hotpath import MongoTurnUnitOfWork
from core.store.mongo.inbox import MongoInboxStore
from core.store.mongo.outbox import MongoOutboxStore
from core.store.mongo.privacy import MongoAuditStore, MongoPrivacyStore
from core.store.mongo.receipts import MongoReceiptStore
from core.store.mongo.transcript import MongoTranscriptStore

__all__ = ["MongoStore"]


class MongoStore(Store):
    """`Store` on a MongoDB database (``url`` as for `AsyncMongoClient`, ``database`` name).

    ``transactions`` forces multi-document transactions on or off; by default they
    are used when the server is a replica set member or mongos (``hello``).
    """

    def __init__(self, url: str, database: str = "switchboard", *, transactions: bool | None = None) -> None:
        self._conn = conn = MongoConnection(url, database, transactions=transactions)
        self.contacts = MongoContactStore(conn)
        self.conversations = MongoConversationStore(conn)
        self.inbox = MongoInboxStore(conn)
        self.transcripts = MongoTranscriptStore(conn)
        self.outbox = MongoOutboxStore(conn)
        self.leases = MongoLeaseStore(conn)
        self.kv = MongoKeyValueStore(conn)
        self.receipts = MongoReceiptStore(conn, self.kv)
        self.privacy = MongoPrivacyStore(conn)
        self.audits = MongoAuditStore(conn)
        self.turns = MongoTurnUnitOfWork(
            conn, self.contacts, self.conversations, self.inbox, self.transcripts, self.leases)

    @property
    def url(self) -> str:
        return self._conn.url

    @property
    def database(self) -> str:
        return self._conn.database

    @property
    def transactions(self) -> bool:
        """Whether multi-document transactions are used (known once open)."""
        return self._conn.transactions

    # The raw database and client, for harnesses that read what the contract does not expose
    # (``bench/scale_out.py``: sent_at, dropping its database).
    def _require(self) -> AsyncDatabase[Doc]:
        return self._conn.require()

    @property
    def _client(self) -> AsyncMongoClient[Doc] | None:
        return self._conn.client

    # -- lifecycle -----------------------------------------------------------------
    async def open(self) -> None:
        await self._conn.open()

    async def close(self) -> None:
        await self._conn.close()

    async def ping(self) -> None:
        await self._conn.ping()

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
