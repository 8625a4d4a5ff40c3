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
``coordination.py``, ``privacy.py``, ``analytics.py``) and the hot path (``hotpath.py``).
"""

from __future__ import annotations

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from core.clock import SYSTEM_CLOCK, Clock
from core.store.composed import ComposedStore
from core.store.mongo.analytics import MongoAnalyticsStore
from core.store.mongo.connection import Doc, MongoConnection
from core.store.mongo.contacts import MongoContactStore
from core.store.mongo.conversations import MongoConversationStore
from core.store.mongo.coordination import MongoKeyValueStore, MongoLeaseStore
from core.store.mongo.hotpath import MongoTurnUnitOfWork
from core.store.mongo.inbox import MongoInboxStore
from core.store.mongo.outbox import MongoOutboxStore
from core.store.mongo.privacy import MongoAuditStore, MongoPrivacyStore
from core.store.mongo.receipts import MongoReceiptStore
from core.store.mongo.review import MongoReviewStore
from core.store.mongo.transcript import MongoTranscriptStore

__all__ = ["MongoStore"]


class MongoStore(ComposedStore):
    """`Store` on a MongoDB database (``url`` as for `AsyncMongoClient`, ``database`` name).

    ``transactions`` forces multi-document transactions on or off; by default they
    are used when the server is a replica set member or mongos (``hello``).
    """

    def __init__(
        self, url: str, database: str = "switchboard", *, transactions: bool | None = None, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.clock = clock  # leases, claims, TTLs and timestamps read the time from it
        self._conn = conn = MongoConnection(url, database, transactions=transactions, clock=clock)
        contacts = MongoContactStore(conn)
        conversations = MongoConversationStore(conn)
        inbox = MongoInboxStore(conn)
        transcripts = MongoTranscriptStore(conn)
        leases = MongoLeaseStore(conn)
        kv = MongoKeyValueStore(conn)
        super().__init__(
            contacts=contacts,
            conversations=conversations,
            inbox=inbox,
            transcripts=transcripts,
            outbox=MongoOutboxStore(conn),
            receipts=MongoReceiptStore(conn, kv),
            leases=leases,
            kv=kv,
            privacy=MongoPrivacyStore(conn),
            audits=MongoAuditStore(conn),
            analytics=MongoAnalyticsStore(conn),
            turns=MongoTurnUnitOfWork(conn, contacts, conversations, inbox, transcripts, leases),
            review=MongoReviewStore(conn),
        )

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
