"""The MongoDB connection every concern store of `MongoStore` shares: client, database,
transactions (when the deployment has them), counters, indexes, and the mapping of driver
errors to the store's (`guarded`). It knows no collection's meaning beyond its indexes.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, Concatenate, ParamSpec, TypeVar

import structlog
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, DuplicateKeyError, PyMongoError

from core.clock import SYSTEM_CLOCK, Clock
from core.errors import StoreError, StoreUnavailable

log = structlog.get_logger("core.store.mongo")

P = ParamSpec("P")
S = TypeVar("S")
T = TypeVar("T")
Doc = dict[str, Any]
Session = AsyncClientSession | None

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ERROR_MAX = 500


def us(value: datetime) -> int:
    """A datetime as int microseconds since the epoch (naive values are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // timedelta(microseconds=1)


def dt(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def guarded(
    fn: Callable[Concatenate[S, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    """Map driver errors to the store's: unreachable → `StoreUnavailable`, others → `StoreError`."""

    @functools.wraps(fn)
    async def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(self, *args, **kwargs)
        except ConnectionFailure as exc:
            log.warning("store.unavailable", kind="mongodb", operation=fn.__name__, error=type(exc).__name__)
            raise StoreUnavailable(f"MongoDB unreachable during {fn.__name__}: {exc}") from exc
        except PyMongoError as exc:
            log.error("store.failed", kind="mongodb", operation=fn.__name__, error=type(exc).__name__)
            raise StoreError(f"MongoDB error during {fn.__name__}: {exc}") from exc

    return wrapper


class MongoConnection:
    """One `AsyncMongoClient` on ``database`` (``url`` as for `AsyncMongoClient`).

    ``transactions`` forces multi-document transactions on or off; by default they
    are used when the server is a replica set member or mongos (``hello``).
    """

    def __init__(
        self, url: str, database: str = "switchboard", *, transactions: bool | None = None, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.url = url
        # The store's time: leases, claims, TTLs and timestamps are stamped and compared with it
        # (the client's clock, not the server's; expiry-only TTL indexes merely clean up).
        self.clock = clock
        self.database = database
        self._transactions_wanted = transactions
        self.transactions = False
        self._client: AsyncMongoClient[Doc] | None = None
        self._db: AsyncDatabase[Doc] | None = None

    async def open(self) -> None:
        if self._client is not None:
            return
        client: AsyncMongoClient[Doc] = AsyncMongoClient(self.url, tz_aware=True, appname="switchboard")
        try:
            hello = await client.admin.command("hello")
            self._client, self._db = client, client[self.database]
            await self._create_indexes()
        except ConnectionFailure as exc:
            await client.close()
            self._client = self._db = None
            raise StoreUnavailable(f"cannot reach MongoDB: {exc}") from exc
        except PyMongoError as exc:
            await client.close()
            self._client = self._db = None
            raise StoreError(f"cannot prepare MongoDB database {self.database}: {exc}") from exc
        replicated = "setName" in hello or hello.get("msg") == "isdbgrid"
        self.transactions = replicated if self._transactions_wanted is None else self._transactions_wanted
        log.info("store.opened", kind="mongodb", database=self.database, transactions=self.transactions)

    async def _create_indexes(self) -> None:
        db = self.require()
        specs: dict[str, list[IndexModel]] = {
            "identities": [
                IndexModel([("bot", ASCENDING), ("channel", ASCENDING), ("channel_user_id", ASCENDING)],
                           unique=True, name="identity_unique"),
                IndexModel([("contact_id", ASCENDING)], name="identity_contact"),
            ],
            "contacts": [IndexModel([("bot", ASCENDING), ("phone", ASCENDING)], name="contact_phone")],
            "conversations": [
                IndexModel([("bot", ASCENDING), ("contact_id", ASCENDING)], unique=True, name="conversation_contact"),
                IndexModel([("bot", ASCENDING), ("desk_thread", ASCENDING)], name="conversation_thread"),
                IndexModel([("bot", ASCENDING), ("updated_at", DESCENDING)], name="conversation_recent"),
                IndexModel([("updated_at", DESCENDING)], name="conversation_recent_all"),
            ],
            "inbox": [
                IndexModel([("bot", ASCENDING), ("channel", ASCENDING), ("platform_message_id", ASCENDING)],
                           unique=True, name="inbox_dedupe"),
                IndexModel([("processed", ASCENDING), ("conversation_id", ASCENDING), ("_id", ASCENDING)],
                           name="inbox_pending"),
                IndexModel([("dead_at", ASCENDING)], sparse=True, name="inbox_dead"),
            ],
            "events": [
                IndexModel([("conversation_id", ASCENDING), ("seq", ASCENDING)], unique=True, name="event_seq"),
                IndexModel([("bot", ASCENDING), ("ts", ASCENDING)], name="event_age"),
            ],
            "outbox": [
                IndexModel([("state", ASCENDING), ("not_before", ASCENDING)], name="outbox_due"),
                IndexModel([("state", ASCENDING), ("conversation_id", ASCENDING), ("oseq", ASCENDING)],
                           name="outbox_head"),
                IndexModel([("conversation_id", ASCENDING), ("oseq", ASCENDING)], name="outbox_conversation"),
                IndexModel([("channel", ASCENDING), ("platform_message_id", ASCENDING)], name="outbox_platform"),
            ],
            "seen": [IndexModel([("expire_at", ASCENDING)], expireAfterSeconds=0, name="seen_ttl")],
            "kv": [IndexModel([("expire_at", ASCENDING)], expireAfterSeconds=0, name="kv_ttl")],
            "audit": [IndexModel([("bot", ASCENDING), ("_id", DESCENDING)], name="audit_bot")],
        }
        for collection, indexes in specs.items():
            await db[collection].create_indexes(indexes)
        for counter in ("inbox", "audit"):
            # Created up front so processes starting together do not race on the first upsert.
            with contextlib.suppress(DuplicateKeyError):
                await db.counters.update_one({"_id": counter}, {"$setOnInsert": {"n": 0}}, upsert=True)
        # "leases" needs only its _id index (the lease name), which MongoDB always has.

    def now_us(self) -> int:
        """The store clock's time as int microseconds since the epoch."""
        return us(self.clock.now())

    @property
    def client(self) -> AsyncMongoClient[Doc] | None:
        """The client while open."""
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            client, self._client, self._db = self._client, None, None
            await client.close()

    async def ping(self) -> None:
        if self._client is None:
            raise StoreUnavailable("store is not open")
        try:
            await self._client.admin.command("ping")
        except PyMongoError as exc:
            raise StoreUnavailable(f"MongoDB ping failed: {exc}") from exc

    def require(self) -> AsyncDatabase[Doc]:
        if self._db is None:
            raise StoreUnavailable("store is not open")
        return self._db

    async def atomic(self, fn: Callable[[Session], Awaitable[T]]) -> T:
        """Run ``fn`` in a transaction (retried on transient errors) when supported, else directly.

        ``fn`` must be safe to run again from the start: it re-reads what it decides on.
        """
        self.require()
        if not self.transactions or self._client is None:
            return await fn(None)
        async with self._client.start_session() as session:
            return await session.with_transaction(fn)

    async def next_id(self, name: str) -> int:
        """A strictly increasing number from the ``counters`` collection (atomic ``$inc``; gaps possible)."""
        counters = self.require().counters
        for _ in range(10):
            try:
                doc = await counters.find_one_and_update(
                    {"_id": name}, {"$inc": {"n": 1}}, upsert=True, return_document=ReturnDocument.AFTER
                )
            except DuplicateKeyError:
                continue  # two first upserts raced; the counter exists now
            # Some servers answer a raced first upsert with no document (SecantusDB); ask again.
            if doc is not None:
                return int(doc["n"])
        raise StoreError(f"could not allocate a number from counter {name}")
