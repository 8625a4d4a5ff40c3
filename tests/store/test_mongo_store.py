"""MongoDB-specific checks: the server features `MongoStore` relies on (docs/mongodb.md),
the contract without transactions, and races between separate clients and processes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from core.errors import ConcurrencyConflict, StoreError, StoreUnavailable
from core.model import Conversation
from core.store.base import OutboxState
from core.store.mongo import MongoStore
from tests.store.contract import (
    BOT,
    StoreContract,
    contact_and_conversation,
    event,
    inbound,
    outbound,
    queue,
)
from tests.support.clock import FakeClock

pytestmark = pytest.mark.mongo
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def mongo(mongo_url: str, mongo_database: str) -> AsyncIterator[MongoStore]:
    store = MongoStore(mongo_url, database=mongo_database)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def raw(mongo_url: str, mongo_database: str, mongo: MongoStore) -> AsyncIterator[AsyncMongoClient[dict]]:  # type: ignore[type-arg]
    client: AsyncMongoClient[dict] = AsyncMongoClient(mongo_url)  # type: ignore[type-arg]
    try:
        yield client
    finally:
        await client.close()


class TestMongoStoreWithoutTransactions(StoreContract):
    """The whole contract also holds on a standalone server (no multi-document transactions)."""

    @pytest.fixture
    async def store(self, mongo_url: str, mongo_database: str) -> AsyncIterator[MongoStore]:
        instance = MongoStore(mongo_url, database=mongo_database, transactions=False, clock=FakeClock())
        await instance.open()
        assert instance.transactions is False
        try:
            yield instance
        finally:
            await instance.close()


async def test_transactions_are_used_on_a_replica_set(mongo: MongoStore) -> None:
    # SecantusDB (and every real deployment we support for scale-out) reports a replica set.
    assert mongo.transactions is True


async def test_open_creates_the_indexes_the_guarantees_rest_on(mongo: MongoStore, raw: AsyncMongoClient[dict], mongo_database: str) -> None:  # type: ignore[type-arg]
    db = raw[mongo_database]
    inbox = await db.inbox.index_information()
    assert inbox["inbox_dedupe"]["unique"] is True
    assert inbox["inbox_dedupe"]["key"] == [("bot", 1), ("channel", 1), ("platform_message_id", 1)]
    identities = await db.identities.index_information()
    assert identities["identity_unique"]["unique"] is True
    assert identities["identity_unique"]["key"] == [("bot", 1), ("channel", 1), ("channel_user_id", 1)]
    conversations = await db.conversations.index_information()
    assert conversations["conversation_contact"]["unique"] is True
    assert conversations["conversation_contact"]["key"] == [("bot", 1), ("contact_id", 1)]
    events = await db.events.index_information()
    assert events["event_seq"]["unique"] is True
    outbox = await db.outbox.index_information()
    assert outbox["outbox_due"]["key"] == [("state", 1), ("not_before", 1)]
    for collection, name in (("seen", "seen_ttl"), ("kv", "kv_ttl")):
        info = await db[collection].index_information()
        assert info[name]["expireAfterSeconds"] == 0
        assert info[name]["key"] == [("expire_at", 1)]


async def test_open_twice_keeps_the_indexes(mongo: MongoStore, mongo_url: str, mongo_database: str) -> None:
    second = MongoStore(mongo_url, database=mongo_database)
    await second.open()  # create_indexes on existing identical indexes is a no-op
    await second.close()


async def test_unique_indexes_reject_duplicates_at_the_server(mongo: MongoStore, raw: AsyncMongoClient[dict], mongo_database: str) -> None:  # type: ignore[type-arg]
    db = raw[mongo_database]
    message = {"bot": BOT, "channel": "telegram", "platform_message_id": "telegram:1"}
    await db.inbox.insert_one({"_id": 1, **message})
    with pytest.raises(DuplicateKeyError) as err:
        await db.inbox.insert_one({"_id": 2, **message})
    assert err.value.code == 11000
    ident = {"bot": BOT, "channel": "telegram", "channel_user_id": "u1"}
    await db.identities.insert_one({**ident, "contact_id": "ct_1", "chat_id": "c"})
    with pytest.raises(DuplicateKeyError):
        await db.identities.insert_one({**ident, "contact_id": "ct_2", "chat_id": "c"})
    await db.conversations.insert_one({"_id": "conv_1", "bot": BOT, "contact_id": "ct_1"})
    with pytest.raises(DuplicateKeyError):
        await db.conversations.insert_one({"_id": "conv_2", "bot": BOT, "contact_id": "ct_1"})
    await db.events.insert_one({"conversation_id": "conv_1", "seq": 1})
    with pytest.raises(DuplicateKeyError):
        await db.events.insert_one({"conversation_id": "conv_1", "seq": 1})


async def test_timestamps_are_stored_as_exact_microseconds(mongo: MongoStore, raw: AsyncMongoClient[dict], mongo_database: str) -> None:  # type: ignore[type-arg]
    _, conv = await contact_and_conversation(mongo)
    original = event(1)
    await mongo.append_events(conv.id, [original])
    doc = await raw[mongo_database].events.find_one({"conversation_id": conv.id})
    assert doc is not None and doc["ts"] == int(original.timestamp.timestamp()) * 1_000_000 + original.timestamp.microsecond
    assert (await mongo.transcript(conv.id))[0].timestamp == original.timestamp


async def test_failed_commit_in_a_transaction_leaves_no_trace(mongo: MongoStore) -> None:
    _, conv = await contact_and_conversation(mongo)
    await mongo.ingest(conv.id, inbound(1))
    (item,) = await mongo.pending_inbox(conv.id)
    taken = outbound(conv, "first")
    await mongo.append_events(conv.id, [], [taken])
    # The second outbound reuses an existing id: its insert fails after the version check,
    # the event insert and the first outbound insert already ran inside the transaction.
    with pytest.raises(StoreError):
        await mongo.commit_turn(conv, inbox_ids=[item.id], events=[event(1)],
                                outbound=[outbound(conv, "new"), taken])
    stored = await mongo.get_conversation(conv.id)
    assert stored is not None and stored.version == conv.version
    assert await mongo.transcript(conv.id) == []
    assert [p.id for p in await mongo.pending_inbox(conv.id)] == [item.id]
    assert (await mongo.outbox_counts())[OutboxState.PENDING] == 1
    # and the conversation still commits normally afterwards
    saved = await mongo.commit_turn(conv, inbox_ids=[item.id], events=[event(1)])
    assert saved.version == conv.version + 1 and [e.seq for e in await mongo.transcript(conv.id)] == [1]


async def test_races_between_two_clients_are_decided_by_the_server(mongo_url: str, mongo_database: str) -> None:
    a, b = MongoStore(mongo_url, mongo_database), MongoStore(mongo_url, mongo_database)
    await a.open()
    await b.open()
    try:
        _, conv = await contact_and_conversation(a)
        ingested = await asyncio.gather(*(s.ingest(conv.id, inbound(n)) for n in range(10) for s in (a, b)))
        assert ingested.count(True) == 10
        items = await b.pending_inbox(conv.id)
        commits = await asyncio.gather(
            *(s.commit_turn(conv, inbox_ids=[i.id for i in items], events=[event(1)], outbound=[outbound(conv, name)])
              for s, name in ((a, "from a"), (b, "from b"))),
            return_exceptions=True,
        )
        assert sum(isinstance(r, Conversation) for r in commits) == 1
        assert sum(isinstance(r, ConcurrencyConflict) for r in commits) == 1
        assert len(await a.transcript(conv.id)) == 1
        leases = await asyncio.gather(a.acquire_lease("poller", "a", 30), b.acquire_lease("poller", "b", 30))
        assert sorted(leases) == [False, True]
        claims = await asyncio.gather(a.claim_outbox("a", limit=5, lease_seconds=30),
                                      b.claim_outbox("b", limit=5, lease_seconds=30))
        assert sum(len(c) for c in claims) == 1
    finally:
        await a.close()
        await b.close()


_WORKER = textwrap.dedent("""
    import asyncio, json, sys
    from core.store.mongo import MongoStore
    from tests.store.contract import inbound

    async def main(url, database, conv_ids, name):
        store = MongoStore(url, database)
        await store.open()
        accepted = 0
        order = range(40) if name == "a" else reversed(range(40))
        for n in order:
            conv_id = conv_ids[n % len(conv_ids)]
            accepted += await store.ingest(conv_id, inbound(n, user=conv_id))
        sent = []
        idle = 0
        while idle < 5:
            batch = await store.claim_outbox(name, limit=4, lease_seconds=30)
            idle = 0 if batch else idle + 1
            for item in batch:
                sent.append(item.outbound.id)
                await store.outbox_sent(item.outbound.id, f"telegram:{item.outbound.id}")
            await asyncio.sleep(0.02)
        await store.close()
        print(json.dumps({"accepted": accepted, "sent": sent}))

    asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]))
""")


async def test_two_processes_ingest_once_and_send_each_reply_once_in_order(
    mongo: MongoStore, raw: AsyncMongoClient[dict], mongo_url: str, mongo_database: str  # type: ignore[type-arg]
) -> None:
    convs = [(await contact_and_conversation(mongo, f"u{n}"))[1] for n in range(4)]
    queued = {c.id: [o.id for o in await queue(mongo, c, *(f"reply {k}" for k in range(5)))] for c in convs}
    args = [mongo_url, mongo_database, json.dumps([c.id for c in convs])]
    workers = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", _WORKER, *args, name, cwd=ROOT,
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for name in ("a", "b")
    ]
    outputs = await asyncio.wait_for(asyncio.gather(*(w.communicate() for w in workers)), timeout=90)
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err.decode()[-2000:]
    results = [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs]
    assert sum(r["accepted"] for r in results) == 40  # each message accepted by exactly one process
    sent = [i for r in results for i in r["sent"]]
    assert sorted(sent) == sorted(i for ids in queued.values() for i in ids)  # each reply sent exactly once
    for conv_id, ids in queued.items():
        # each process sees a conversation's replies in queue order
        for r in results:
            mine = [i for i in r["sent"] if i in ids]
            assert mine == [i for i in ids if i in mine], conv_id
    assert (await mongo.outbox_counts())[OutboxState.SENT] == 20
    sent_at = {d["_id"]: d["sent_at"] async for d in raw[mongo_database].outbox.find({}, {"sent_at": 1})}
    for conv_id, ids in queued.items():  # across both processes, replies left in queue order
        assert [sent_at[i] for i in ids] == sorted(sent_at[i] for i in ids), conv_id


async def test_unreachable_server_raises_store_unavailable() -> None:
    store = MongoStore("mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300&connectTimeoutMS=300")
    with pytest.raises(StoreUnavailable):
        await store.open()
    with pytest.raises(StoreUnavailable):
        await store.ping()


@pytest.mark.parametrize("transactions", [True, False])
async def test_commit_of_an_already_processed_message_is_a_conflict(
    mongo_url: str, mongo_database: str, transactions: bool
) -> None:
    # A process whose turn lease expired mid-turn must not answer a message twice, even
    # with a fresh conversation version (it reloaded after a conflict).
    store = MongoStore(mongo_url, mongo_database, transactions=transactions)
    await store.open()
    try:
        _, conv = await contact_and_conversation(store)
        await store.ingest(conv.id, inbound(1))
        (item,) = await store.pending_inbox(conv.id)
        first = await store.commit_turn(conv, inbox_ids=[item.id], events=[event(1, "answered")])
        late = outbound(conv, "answered twice")
        with pytest.raises(ConcurrencyConflict):
            await store.commit_turn(first, inbox_ids=[item.id], events=[event(2, "again")], outbound=[late])
        assert [e.data["text"] for e in await store.transcript(conv.id)] == ["answered"]
        assert await store.get_outbox_item(late.id) is None
        stored = await store.get_conversation(conv.id)
        assert stored is not None and stored.version == first.version
    finally:
        await store.close()


async def test_fresh_keys_raced_by_two_clients_have_one_winner_each(mongo_url: str, mongo_database: str) -> None:
    # Upserts of a key nobody holds yet, from separate connections at the same moment: the
    # server must let exactly one through (SecantusDB answers some of them with no document).
    a, b = MongoStore(mongo_url, mongo_database), MongoStore(mongo_url, mongo_database)
    await a.open()
    await b.open()
    try:
        for n in range(40):
            leases = await asyncio.gather(*(s.acquire_lease(f"turn:{n}", f"owner-{i}", 30)
                                            for i, s in enumerate((a, b, a, b))))
            assert leases.count(True) == 1, (n, leases)
            firsts = await asyncio.gather(*(s.remember(f"event:{n}", 60) for s in (a, b, a, b)))
            assert firsts.count(True) == 1, (n, firsts)
        ids = await asyncio.gather(*(s.ingest(f"conv_{n % 3}", inbound(n, user=f"u{n}")) for n in range(30)
                                     for s in (a, b)))
        assert ids.count(True) == 30
    finally:
        await a.close()
        await b.close()
