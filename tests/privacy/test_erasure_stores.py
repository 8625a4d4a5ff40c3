"""Erasure jobs work on both stores: queued by forget in the bot's erasure queue (not the
customer's), claimed by a sender, their state read back for ``forget --status``."""

from __future__ import annotations

from core.privacy.erasure import ERASURE_CHANNEL, QUEUE_CONTACT, ErasureCount, record_copy
from core.privacy.service import PrivacyService
from core.store.base import OutboxState, Store
from tests.store.conftest import store  # noqa: F401  (fixture: SQLite and MongoDB)
from tests.store.contract_support import contact_and_conversation, queue
from tests.store.mongo_server import mongo_database, mongo_url  # noqa: F401  (fixtures)


async def test_forget_queues_the_desk_erasure_apart_from_customers_and_reports_its_state(store: Store) -> None:  # noqa: F811
    contact, conversation = await contact_and_conversation(store)
    other_contact, other = await contact_and_conversation(store, user="u2")
    await record_copy(store, conversation.id, "slack", "1712000000.000100")
    privacy = PrivacyService(store)

    report = await privacy.forget(contact.id, actor="admin:test")
    [job] = report.jobs
    assert (job.desk, job.thread, job.state) == ("slack", "1712000000.000100", "pending")
    [reply] = await queue(store, other, "hello")  # another customer's reply is not held back by the job

    claimed = await store.claim_outbox("sender", limit=10, lease_seconds=30)
    assert {item.outbound.id for item in claimed} == {job.id, reply.id}
    [item] = [i for i in claimed if i.outbound.id == job.id]
    assert item.outbound.channel == ERASURE_CHANNEL and item.outbound.chat_id == "slack:1712000000.000100"
    queue_conversation = await store.get_conversation(item.outbound.conversation_id)
    assert queue_conversation is not None and queue_conversation.contact_id == QUEUE_CONTACT

    await store.outbox_sent(job.id, ErasureCount(deleted=4, blanked=1).encode(), token=item.lease_token)
    [done] = await privacy.erasure_status(contact.id)
    assert done.state == OutboxState.SENT.value and done.count == ErasureCount(deleted=4, blanked=1)
    assert other_contact.id != contact.id
