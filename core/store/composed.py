"""`ComposedStore`: a `Store` made of one store per port, each method delegated to its owner.

A backend's facade (`core.store.sqlite.SQLiteStore`, `core.store.mongo.MongoStore`) builds its
concern stores and hands them to `ComposedStore.__init__`; the delegation lives here once. Each
call is one direct ``await`` of the owning store's method (the hot path included), as
``tests/store/test_ports.py`` maps methods to ports.
"""

from __future__ import annotations

from collections.abc import Coroutine, Sequence
from datetime import datetime
from typing import Any

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
from core.store.ports import (
    AnalyticsStore,
    AuditStore,
    ContactStore,
    ConversationStore,
    InboxStore,
    KeyValueStore,
    LeaseStore,
    OutboxStore,
    PrivacyStore,
    ReceiptStore,
    TranscriptStore,
    TurnUnitOfWork,
)
from core.store.ports.analytics import (
    CaseCell,
    CaseDurations,
    CaseQuery,
    CaseTotal,
    CaseUpdate,
    LiveCases,
)
from core.store.ports.review import ReviewStore
from core.store.records import TurnWrite

__all__ = ["ComposedStore"]


class ComposedStore(Store):
    """`Store` delegating every port method to the concern store that owns it.

    Subclasses build the concern stores and pass them in; they still implement the
    lifecycle (`open`, `close`, `ping`, and `serve_check` where it applies).
    """

    contacts: ContactStore
    conversations: ConversationStore
    inbox: InboxStore
    transcripts: TranscriptStore
    outbox: OutboxStore
    receipts: ReceiptStore
    leases: LeaseStore
    kv: KeyValueStore
    privacy: PrivacyStore
    audits: AuditStore
    analytics: AnalyticsStore
    turns: TurnUnitOfWork

    def __init__(
        self,
        *,
        contacts: ContactStore,
        conversations: ConversationStore,
        inbox: InboxStore,
        transcripts: TranscriptStore,
        outbox: OutboxStore,
        receipts: ReceiptStore,
        leases: LeaseStore,
        kv: KeyValueStore,
        privacy: PrivacyStore,
        audits: AuditStore,
        analytics: AnalyticsStore,
        turns: TurnUnitOfWork,
        review: ReviewStore | None = None,
    ) -> None:
        self.contacts = contacts
        self.conversations = conversations
        self.inbox = inbox
        self.transcripts = transcripts
        self.outbox = outbox
        self.receipts = receipts
        self.leases = leases
        self.kv = kv
        self.privacy = privacy
        self.audits = audits
        self.analytics = analytics
        self.turns = turns
        self.review = review  # the review queue (core.store.ports.review): erased with a contact

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

    def outbox_sent(  # the hot path: the port's coroutine itself, no frame of ours around it
        self, outbound_id: str, platform_message_id: str, *, token: str | None = None,
    ) -> Coroutine[Any, Any, bool]:
        return self.outbox.outbox_sent(outbound_id, platform_message_id, token=token)

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

    async def kv_items(self, prefix: str) -> list[tuple[str, Any]]:
        return await self.kv.kv_items(prefix)

    # -- PrivacyStore (privacy) ---------------------------------------------------
    async def export_contact(self, contact_id: str) -> dict[str, Any]:
        exported = await self.privacy.export_contact(contact_id)
        if exported and self.review is not None:  # the review queue holds the contact's words too
            exported["review_queue"] = [
                {"id": i.id, "text": i.text, "reasons": list(i.reasons), "created_at": i.created_at.isoformat(),
                 "status": i.status.value, "label": i.label} for i in await self.review.contact_reviews(contact_id)]
        return exported

    async def forget_contact(self, contact_id: str) -> None:
        if self.review is not None:  # first: the privacy port's erasure then flushes the file's log
            await self.review.forget_review_contact(contact_id)
        await self.privacy.forget_contact(contact_id)

    async def purge_transcripts(self, bot: str, older_than: datetime) -> int:
        if self.review is not None:
            await self.review.purge_review(bot, older_than)
        return await self.privacy.purge_transcripts(bot, older_than)

    # -- AuditStore (audits) ------------------------------------------------------
    async def audit(self, entry: AuditEntry) -> None:
        await self.audits.audit(entry)

    async def audit_log(self, *, bot: str | None = None, limit: int = 100) -> list[AuditEntry]:
        return await self.audits.audit_log(bot=bot, limit=limit)

    # -- AnalyticsStore (analytics) -----------------------------------------------
    async def record_case(self, update: CaseUpdate) -> None:
        await self.analytics.record_case(update)

    def turn_write(self, update: CaseUpdate) -> TurnWrite:
        return self.analytics.turn_write(update)

    async def case_cells(self, query: CaseQuery) -> list[CaseCell]:
        return await self.analytics.case_cells(query)

    async def case_durations(self, query: CaseQuery) -> list[CaseDurations]:
        return await self.analytics.case_durations(query)

    async def case_totals(self) -> list[CaseTotal]:
        return await self.analytics.case_totals()

    async def live_cases(self, now: datetime) -> list[LiveCases]:
        return await self.analytics.live_cases(now)

    async def agent_seen(self, bot: str, agent_id: str, at: datetime) -> None:
        await self.analytics.agent_seen(bot, agent_id, at)

    async def agents_active(self, since: datetime) -> dict[str, int]:
        return await self.analytics.agents_active(since)

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

    # The hot path (accept, next turn, finish turn): the port's coroutine itself is returned, so
    # each message's store calls do not pay for a delegating coroutine frame each.
    def accept_inbound(self, inbound: Inbound, *, phone: str | None = None) -> Coroutine[Any, Any, Accepted | None]:
        return self.turns.accept_inbound(inbound, phone=phone)

    def next_turn(
        self,
        conversation_id: str,
        *,
        lease: str,
        owner: str,
        lease_seconds: float,
        history: int,
        cached: tuple[int, int] | None = None,
    ) -> Coroutine[Any, Any, TurnState | None]:
        return self.turns.next_turn(
            conversation_id, lease=lease, owner=owner, lease_seconds=lease_seconds, history=history, cached=cached)

    def finish_turn(
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
        also: Sequence[TurnWrite] = (),
    ) -> Coroutine[Any, Any, TurnCommit]:
        return self.turns.finish_turn(
            conversation, inbox_ids=inbox_ids, events=events, outbound=outbound, owner=owner, lease_seconds=lease_seconds, claim=claim, release=release, also=also)
