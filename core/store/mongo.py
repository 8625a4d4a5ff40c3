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
"""

from __future__ import annotations

import contextlib
import functools
import json
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Concatenate, ParamSpec, TypeVar

import structlog
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, DuplicateKeyError, PyMongoError

from core.errors import ConcurrencyConflict, NotFound, StoreError, StoreUnavailable
from core.model import (
    Contact,
    Conversation,
    ConversationStatus,
    DeliveryReceipt,
    Event,
    Identity,
    Inbound,
    Outbound,
    new_id,
    utcnow,
)
from core.store import codec
from core.store.base import (
    RECEIPT_TTL_SECONDS,
    AuditEntry,
    DeadLetter,
    InboxItem,
    OutboxItem,
    OutboxState,
    ReceiptOutcome,
    Store,
    receipt_event,
    receipt_key,
)

log = structlog.get_logger(__name__)

P = ParamSpec("P")
T = TypeVar("T")
Doc = dict[str, Any]
Session = AsyncClientSession | None

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ERROR_MAX = 500


def _us(value: datetime) -> int:
    """A datetime as int microseconds since the epoch (naive values are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // timedelta(microseconds=1)


def _dt(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def _now_us() -> int:
    return _us(utcnow())


def _guarded(
    fn: Callable[Concatenate[MongoStore, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[MongoStore, P], Coroutine[Any, Any, T]]:
    """Map driver errors to the store's: unreachable → `StoreUnavailable`, others → `StoreError`."""

    @functools.wraps(fn)
    async def wrapper(self: MongoStore, /, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(self, *args, **kwargs)
        except ConnectionFailure as exc:
            log.warning("store.unavailable", kind="mongodb", operation=fn.__name__, error=type(exc).__name__)
            raise StoreUnavailable(f"MongoDB unreachable during {fn.__name__}: {exc}") from exc
        except PyMongoError as exc:
            log.error("store.failed", kind="mongodb", operation=fn.__name__, error=type(exc).__name__)
            raise StoreError(f"MongoDB error during {fn.__name__}: {exc}") from exc

    return wrapper


class _NotYet(Exception):
    """A parked receipt's message still has no platform id (rolls the unit back)."""


class MongoStore(Store):
    """`Store` on a MongoDB database (``url`` as for `AsyncMongoClient`, ``database`` name).

    ``transactions`` forces multi-document transactions on or off; by default they
    are used when the server is a replica set member or mongos (``hello``).
    """

    def __init__(self, url: str, database: str = "switchboard", *, transactions: bool | None = None) -> None:
        self.url = url
        self.database = database
        self._transactions_wanted = transactions
        self.transactions = False
        self._client: AsyncMongoClient[Doc] | None = None
        self._db: AsyncDatabase[Doc] | None = None

    # -- lifecycle -----------------------------------------------------------------
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
        db = self._require()
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

    def _require(self) -> AsyncDatabase[Doc]:
        if self._db is None:
            raise StoreUnavailable("store is not open")
        return self._db

    async def _atomic(self, fn: Callable[[Session], Awaitable[T]]) -> T:
        """Run ``fn`` in a transaction (retried on transient errors) when supported, else directly.

        ``fn`` must be safe to run again from the start: it re-reads what it decides on.
        """
        self._require()
        if not self.transactions or self._client is None:
            return await fn(None)
        async with self._client.start_session() as session:
            return await session.with_transaction(fn)

    async def _next_id(self, name: str) -> int:
        """A strictly increasing number from the ``counters`` collection (atomic ``$inc``; gaps possible)."""
        counters = self._require().counters
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

    # -- document mapping ------------------------------------------------------------
    async def _contact(self, doc: Doc, session: Session = None) -> Contact:
        cursor = self._require().identities.find({"contact_id": doc["_id"]}, session=session).sort("_id", ASCENDING)
        identities = tuple([Identity(i["channel"], i["channel_user_id"], i["chat_id"]) async for i in cursor])
        return Contact(
            id=doc["_id"],
            bot=doc["bot"],
            identities=identities,
            display_name=doc.get("display_name"),
            phone=doc.get("phone"),
            last_agent=doc.get("last_agent"),
            last_channel=doc.get("last_channel"),
            consent=bool(doc.get("consent", True)),
            deleted=bool(doc.get("deleted", False)),
            created_at=_dt(doc["created_at"]),
        )

    @staticmethod
    def _conversation(doc: Doc) -> Conversation:
        return Conversation(
            id=doc["_id"],
            bot=doc["bot"],
            contact_id=doc["contact_id"],
            status=ConversationStatus(doc["status"]),
            assigned_agent=doc.get("assigned_agent"),
            desk_thread=doc.get("desk_thread"),
            language=doc.get("language"),
            slots=json.loads(doc.get("slots") or "{}"),
            active_form=doc.get("active_form"),
            handoff_reason=doc.get("handoff_reason"),
            version=int(doc["version"]),
            created_at=_dt(doc["created_at"]),
            updated_at=_dt(doc["updated_at"]),
        )

    @staticmethod
    def _conversation_fields(c: Conversation) -> Doc:
        return {
            "status": c.status.value,
            "assigned_agent": c.assigned_agent,
            "desk_thread": c.desk_thread,
            "language": c.language,
            "slots": json.dumps(c.slots),
            "active_form": c.active_form,
            "handoff_reason": c.handoff_reason,
        }

    @staticmethod
    def _event(doc: Doc) -> Event:
        return Event(
            type=doc["type"], data=json.loads(doc["data"]), channel=doc.get("channel"),
            timestamp=_dt(doc["ts"]), seq=int(doc["seq"]),
        )

    @staticmethod
    def _outbox(doc: Doc) -> OutboxItem:
        return OutboxItem(
            outbound=codec.outbound_from_dict(doc["outbound"]),
            state=OutboxState(doc["state"]),
            attempts=int(doc.get("attempts", 0)),
            not_before=_dt(doc["not_before"]) if doc.get("not_before") else None,
            last_error=doc.get("last_error"),
            platform_message_id=doc.get("platform_message_id"),
            lease_token=doc.get("lease_token"),
            lease_until=_dt(doc["lease_until"]) if doc.get("lease_until") else None,
        )

    # -- contacts ------------------------------------------------------------------
    @_guarded
    async def resolve_contact(
        self, bot: str, identity: Identity, *, display_name: str | None = None
    ) -> Contact:
        db = self._require()
        key = {"bot": bot, "channel": identity.channel, "channel_user_id": identity.channel_user_id}
        for _ in range(5):
            found = await db.identities.find_one(key)
            if found is not None:
                contact_id = found["contact_id"]
                if found["chat_id"] != identity.chat_id:
                    await db.identities.update_one({"_id": found["_id"]}, {"$set": {"chat_id": identity.chat_id}})
                await db.contacts.update_one({"_id": contact_id}, {"$set": {"last_channel": identity.channel}})
                if display_name is not None:
                    await db.contacts.update_one(
                        {"_id": contact_id, "display_name": None}, {"$set": {"display_name": display_name}}
                    )
                doc = await db.contacts.find_one({"_id": contact_id})
                if doc is not None:
                    return await self._contact(doc)
                # The identity points at a contact that is gone: drop the stale claim and retry.
                await db.identities.delete_one({"_id": found["_id"], "contact_id": contact_id})
                continue
            # The contact is written before the identity claim, so a claim never points at nothing.
            contact_id = new_id("ct")
            await db.contacts.insert_one({
                "_id": contact_id, "bot": bot, "display_name": display_name, "phone": None, "last_agent": None,
                "last_channel": identity.channel, "consent": True, "deleted": False, "created_at": _now_us(),
            })
            try:
                await db.identities.insert_one({**key, "chat_id": identity.chat_id, "contact_id": contact_id})
            except DuplicateKeyError:
                await db.contacts.delete_one({"_id": contact_id})  # another process won the race
                continue
            doc = await db.contacts.find_one({"_id": contact_id})
            assert doc is not None
            return await self._contact(doc)
        raise StoreError(f"could not resolve a contact for bot {bot} on {identity.channel}")

    @_guarded
    async def get_contact(self, contact_id: str) -> Contact | None:
        doc = await self._require().contacts.find_one({"_id": contact_id})
        return await self._contact(doc) if doc else None

    @_guarded
    async def save_contact(self, contact: Contact) -> None:
        async def unit(session: Session) -> None:
            db = self._require()
            fields = {
                "display_name": contact.display_name, "phone": contact.phone, "last_agent": contact.last_agent,
                "last_channel": contact.last_channel, "consent": contact.consent, "deleted": contact.deleted,
            }
            await db.contacts.update_one(
                {"_id": contact.id},
                {"$set": fields, "$setOnInsert": {"bot": contact.bot, "created_at": _us(contact.created_at)}},
                upsert=True, session=session,
            )
            await db.identities.delete_many({"contact_id": contact.id}, session=session)
            for i in contact.identities:
                key = {"bot": contact.bot, "channel": i.channel, "channel_user_id": i.channel_user_id}
                # An identity belongs to one contact: saving it here moves it from any other.
                await db.identities.delete_many(key, session=session)
                await db.identities.insert_one({**key, "chat_id": i.chat_id, "contact_id": contact.id}, session=session)

        await self._atomic(unit)

    @_guarded
    async def find_contacts(
        self, bot: str, *, phone: str | None = None, identity: Identity | None = None
    ) -> list[Contact]:
        db = self._require()
        ids: list[str] = []
        if phone is not None:
            cursor = db.contacts.find({"bot": bot, "phone": phone, "deleted": False}, {"_id": 1}).sort("created_at")
            ids += [d["_id"] async for d in cursor]
        if identity is not None:
            found = await db.identities.find_one(
                {"bot": bot, "channel": identity.channel, "channel_user_id": identity.channel_user_id}
            )
            if found is not None:
                ids.append(found["contact_id"])
        contacts = []
        for contact_id in dict.fromkeys(ids):
            doc = await db.contacts.find_one({"_id": contact_id})
            if doc is not None:
                contacts.append(await self._contact(doc))
        return contacts

    @_guarded
    async def merge_contacts(self, keep_id: str, drop_id: str) -> Contact:
        async def unit(session: Session) -> Contact:
            db = self._require()
            keep = await db.contacts.find_one({"_id": keep_id}, session=session)
            drop = await db.contacts.find_one({"_id": drop_id}, session=session)
            if keep is None or drop is None or keep["bot"] != drop["bot"]:
                raise NotFound(f"cannot merge {drop_id} into {keep_id}")
            if keep_id == drop_id:
                return await self._contact(keep, session)
            bot = keep["bot"]
            await db.identities.update_many({"contact_id": drop_id}, {"$set": {"contact_id": keep_id}}, session=session)
            fill = {f: drop.get(f) for f in ("phone", "display_name", "last_agent") if keep.get(f) is None}
            if fill:
                await db.contacts.update_one({"_id": keep_id}, {"$set": fill}, session=session)
            dropped = await db.conversations.find_one({"bot": bot, "contact_id": drop_id}, session=session)
            if dropped is not None:
                kept = await self._conversation_for(bot, keep_id, session)
                await self._merge_into(kept.id, dropped["_id"], session)
            await db.contacts.delete_one({"_id": drop_id}, session=session)
            merged = await db.contacts.find_one({"_id": keep_id}, session=session)
            assert merged is not None
            return await self._contact(merged, session)

        return await self._atomic(unit)

    async def _merge_into(self, keep_conv: str, drop_conv: str, session: Session) -> None:
        """Re-sequence both transcripts in time order into ``keep_conv``; move inbox and outbox."""
        db = self._require()
        rows = await db.events.find({"conversation_id": {"$in": [keep_conv, drop_conv]}}, session=session).to_list()
        rows.sort(key=lambda r: (r["ts"], r["conversation_id"] != keep_conv, r["seq"]))
        await db.events.delete_many({"conversation_id": {"$in": [keep_conv, drop_conv]}}, session=session)
        if rows:
            await db.events.insert_many(
                [{"conversation_id": keep_conv, "bot": r["bot"], "seq": n, "type": r["type"],
                  "channel": r.get("channel"), "ts": r["ts"], "data": r["data"]} for n, r in enumerate(rows, start=1)],
                session=session,
            )
        await db.inbox.update_many({"conversation_id": drop_conv}, {"$set": {"conversation_id": keep_conv}}, session=session)
        moved = await db.outbox.find({"conversation_id": drop_conv}, session=session).sort("oseq").to_list()
        counter = await db.conversations.find_one_and_update(
            {"_id": keep_conv},
            {"$set": {"last_seq": len(rows)}, "$inc": {"last_oseq": len(moved), "version": 1}},
            return_document=ReturnDocument.AFTER, session=session,
        )
        assert counter is not None
        first = int(counter["last_oseq"]) - len(moved) + 1
        for n, item in enumerate(moved):
            await db.outbox.update_one(
                {"_id": item["_id"]},
                {"$set": {"conversation_id": keep_conv, "oseq": first + n, "outbound.conversation_id": keep_conv}},
                session=session,
            )
        await db.conversations.delete_one({"_id": drop_conv}, session=session)

    # -- conversations -------------------------------------------------------------
    async def _conversation_for(self, bot: str, contact_id: str, session: Session = None) -> Conversation:
        db = self._require()
        doc = await db.conversations.find_one({"bot": bot, "contact_id": contact_id}, session=session)
        if doc is None:
            now = _now_us()
            fresh = Conversation(id=new_id("conv"), bot=bot, contact_id=contact_id)
            doc = {
                "_id": fresh.id, "bot": bot, "contact_id": contact_id, **self._conversation_fields(fresh),
                "version": 0, "last_seq": 0, "last_oseq": 0, "created_at": now, "updated_at": now,
            }
            try:
                await db.conversations.insert_one(doc, session=session)
            except DuplicateKeyError:
                doc = await db.conversations.find_one({"bot": bot, "contact_id": contact_id}, session=session)
                assert doc is not None
        return self._conversation(doc)

    @_guarded
    async def conversation_for(self, bot: str, contact_id: str) -> Conversation:
        return await self._conversation_for(bot, contact_id)

    @_guarded
    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        doc = await self._require().conversations.find_one({"_id": conversation_id})
        return self._conversation(doc) if doc else None

    @_guarded
    async def find_conversation_by_thread(self, bot: str, desk_thread: str) -> Conversation | None:
        doc = await self._require().conversations.find_one({"bot": bot, "desk_thread": desk_thread})
        return self._conversation(doc) if doc else None

    @_guarded
    async def list_conversations(
        self,
        bot: str | None = None,
        statuses: Sequence[ConversationStatus] | None = None,
        limit: int = 100,
    ) -> list[Conversation]:
        if limit <= 0:
            return []  # MongoDB reads limit 0 as "no limit"
        query: Doc = {}
        if bot is not None:
            query["bot"] = bot
        if statuses:
            query["status"] = {"$in": [s.value for s in statuses]}
        cursor = self._require().conversations.find(query).sort([("updated_at", DESCENDING), ("_id", DESCENDING)])
        return [self._conversation(d) async for d in cursor.limit(limit)]

    async def _save(self, c: Conversation, inc: Doc, session: Session) -> tuple[Conversation, Doc]:
        """The version-checked write every turn goes through; raises `ConcurrencyConflict`."""
        now = _now_us()
        doc = await self._require().conversations.find_one_and_update(
            {"_id": c.id, "version": c.version},
            {"$set": {**self._conversation_fields(c), "updated_at": now}, "$inc": {"version": 1, **inc}},
            return_document=ReturnDocument.AFTER, session=session,
        )
        if doc is None:
            raise ConcurrencyConflict(f"conversation {c.id} changed since version {c.version}")
        return c.evolve(version=c.version + 1, updated_at=_dt(now)), doc

    @_guarded
    async def save_conversation(self, conversation: Conversation) -> Conversation:
        saved, _ = await self._save(conversation, {}, None)
        return saved

    # -- inbox -----------------------------------------------------------------------
    @_guarded
    async def ingest(self, conversation_id: str, inbound: Inbound) -> bool:
        db = self._require()
        key = {"bot": inbound.bot, "channel": inbound.channel, "platform_message_id": inbound.platform_message_id}
        if await db.inbox.find_one(key, {"_id": 1}) is not None:
            return False  # cheap path for platform retries; the unique index decides races
        item_id = await self._next_id("inbox")
        try:
            await db.inbox.insert_one({
                "_id": item_id, **key, "conversation_id": conversation_id,
                "inbound": codec.inbound_to_dict(inbound), "received_at": _now_us(), "processed": False,
            })
        except DuplicateKeyError:
            return False
        return True

    @staticmethod
    def _inbox_item(d: Doc) -> InboxItem:
        not_before = d.get("not_before")
        return InboxItem(d["_id"], d["conversation_id"], codec.inbound_from_dict(d["inbound"]), _dt(d["received_at"]),
                         int(d.get("attempts", 0)), _dt(not_before) if not_before is not None else None,
                         d.get("last_error"), int(d.get("replays", 0)))

    @_guarded
    async def pending_inbox(self, conversation_id: str, limit: int = 50) -> list[InboxItem]:
        if limit <= 0:
            return []
        cursor = self._require().inbox.find({"processed": False, "conversation_id": conversation_id})
        return [self._inbox_item(d) async for d in cursor.sort("_id", ASCENDING).limit(limit)]

    @_guarded
    async def conversations_with_pending_inbox(self, limit: int = 100) -> list[str]:
        if limit <= 0:
            return []
        cursor = await self._require().inbox.aggregate([
            {"$match": {"processed": False}},
            {"$sort": {"conversation_id": 1, "_id": 1}},
            {"$group": {"_id": "$conversation_id", "first": {"$first": "$_id"},
                        "not_before": {"$first": "$not_before"}}},
            # A conversation whose oldest item backs off after a failed turn waits (missing = due).
            {"$match": {"$or": [{"not_before": None}, {"not_before": {"$lte": _now_us()}}]}},
            {"$sort": {"first": 1}},
            {"$limit": limit},
        ])
        return [d["_id"] async for d in cursor]

    # -- failed turns and dead letters ----------------------------------------------------
    @_guarded
    async def inbox_retry(self, item_id: int, not_before: datetime, error: str) -> bool:
        result = await self._require().inbox.update_one(
            {"_id": item_id, "processed": False},
            {"$set": {"not_before": _us(not_before), "last_error": error[:_ERROR_MAX]}, "$inc": {"attempts": 1}},
        )
        return result.modified_count == 1

    @_guarded
    async def dead_letter(
        self, item_id: int, error: str, *, events: Sequence[Event] = (), outbound: Sequence[Outbound] = ()
    ) -> bool:
        async def unit(session: Session) -> bool:
            db = self._require()
            item = await db.inbox.find_one_and_update(
                {"_id": item_id, "processed": False},
                {"$set": {"processed": True, "dead_at": _now_us(), "not_before": None, "last_error": error[:_ERROR_MAX]},
                 "$inc": {"attempts": 1}},
                session=session,
            )
            if item is None:
                return False
            if events or outbound:
                counters = await db.conversations.find_one_and_update(
                    {"_id": item["conversation_id"]}, {"$inc": {"last_seq": len(events), "last_oseq": len(outbound)}},
                    return_document=ReturnDocument.AFTER, session=session,
                )
                if counters is None:
                    raise NotFound(f"conversation {item['conversation_id']}")
                await self._write_turn(item["conversation_id"], counters["bot"], counters, events, outbound, session)
            return True

        return await self._atomic(unit)

    @_guarded
    async def dead_letters(self, *, bot: str | None = None, limit: int = 100) -> list[DeadLetter]:
        if limit <= 0:
            return []
        query: Doc = {"dead_at": {"$exists": True}}
        if bot is not None:
            query["bot"] = bot
        cursor = self._require().inbox.find(query).sort([("dead_at", ASCENDING), ("_id", ASCENDING)]).limit(limit)
        return [DeadLetter(self._inbox_item(d), d["bot"], d.get("last_error") or "", _dt(d["dead_at"]))
                async for d in cursor]

    @_guarded
    async def count_dead_letters(self) -> int:
        return int(await self._require().inbox.count_documents({"dead_at": {"$exists": True}}))

    @_guarded
    async def replay_dead_letter(self, item_id: int) -> str | None:
        doc = await self._require().inbox.find_one_and_update(
            {"_id": item_id, "dead_at": {"$exists": True}},
            {"$set": {"processed": False, "attempts": 0, "not_before": None}, "$unset": {"dead_at": ""},
             "$inc": {"replays": 1}},
        )
        return str(doc["conversation_id"]) if doc else None

    @_guarded
    async def drop_dead_letter(self, item_id: int) -> str | None:
        doc = await self._require().inbox.find_one_and_update(
            {"_id": item_id, "dead_at": {"$exists": True}}, {"$unset": {"dead_at": ""}},
        )
        return str(doc["conversation_id"]) if doc else None

    # -- turns and transcript --------------------------------------------------------
    async def _write_turn(
        self, conversation_id: str, bot: str, counters: Doc, events: Sequence[Event],
        outbound: Sequence[Outbound], session: Session,
    ) -> list[Event]:
        """Insert events and outbox items numbered from the counters the caller just advanced."""
        db = self._require()
        first_seq = int(counters["last_seq"]) - len(events) + 1
        stored = [Event(e.type, e.data, e.channel, e.timestamp, first_seq + i) for i, e in enumerate(events)]
        if stored:
            await db.events.insert_many(
                [{"conversation_id": conversation_id, "bot": bot, "seq": e.seq, "type": e.type, "channel": e.channel,
                  "ts": _us(e.timestamp), "data": json.dumps(e.data)} for e in stored],
                session=session,
            )
        first_oseq = int(counters["last_oseq"]) - len(outbound) + 1
        if outbound:
            await db.outbox.insert_many(
                [{"_id": o.id, "conversation_id": o.conversation_id, "bot": o.bot, "channel": o.channel,
                  "outbound": codec.outbound_to_dict(o), "state": OutboxState.PENDING.value, "attempts": 0,
                  "not_before": 0, "last_error": None, "platform_message_id": None, "lease_owner": None,
                  "lease_until": 0, "created_at": _us(o.created_at), "oseq": first_oseq + i}
                 for i, o in enumerate(outbound)],
                session=session,
            )
        return stored

    @_guarded
    async def commit_turn(
        self,
        conversation: Conversation,
        *,
        inbox_ids: Sequence[int] = (),
        events: Sequence[Event] = (),
        outbound: Sequence[Outbound] = (),
    ) -> Conversation:
        foreign = [o.id for o in outbound if o.conversation_id != conversation.id]
        if foreign:
            raise StoreError(f"outbound {foreign[0]} belongs to another conversation")

        ids = sorted(set(inbox_ids))

        async def unit(session: Session) -> Conversation:
            inbox = self._require().inbox
            if ids:
                # A turn for a message another process already answered must not commit (a lease
                # that expired mid-turn). Whoever processed it bumped the version after this
                # turn read the conversation, unless it happened before: then this check sees it.
                pending = await inbox.count_documents(
                    {"_id": {"$in": ids}, "conversation_id": conversation.id, "processed": False}, session=session
                )
                if pending != len(ids):
                    raise ConcurrencyConflict(f"conversation {conversation.id}: inbox items already processed")
            # The version check is the gate: without a transaction it lets exactly one committer
            # write the rest.
            saved, counters = await self._save(
                conversation, {"last_seq": len(events), "last_oseq": len(outbound)}, session
            )
            if ids:
                # Marking is conditional too, so that without a transaction a committer that
                # raced past the check above still cannot add a second answer.
                marked = await inbox.update_many(
                    {"_id": {"$in": ids}, "processed": False}, {"$set": {"processed": True}}, session=session
                )
                if marked.modified_count != len(ids):
                    raise ConcurrencyConflict(f"conversation {conversation.id}: inbox items processed meanwhile")
            await self._write_turn(conversation.id, conversation.bot, counters, events, outbound, session)
            return saved

        return await self._atomic(unit)

    @_guarded
    async def append_events(
        self, conversation_id: str, events: Sequence[Event], outbound: Sequence[Outbound] = ()
    ) -> list[Event]:
        async def unit(session: Session) -> list[Event]:
            counters = await self._require().conversations.find_one_and_update(
                {"_id": conversation_id}, {"$inc": {"last_seq": len(events), "last_oseq": len(outbound)}},
                return_document=ReturnDocument.AFTER, session=session,
            )
            if counters is None:
                raise NotFound(f"conversation {conversation_id}")
            return await self._write_turn(conversation_id, counters["bot"], counters, events, outbound, session)

        if not events and not outbound:
            return []
        return await self._atomic(unit)

    @_guarded
    async def transcript(
        self, conversation_id: str, *, after_seq: int = 0, limit: int | None = None
    ) -> list[Event]:
        query = {"conversation_id": conversation_id, "seq": {"$gt": after_seq}}
        if limit is not None and limit <= 0:
            return []
        if limit is None:
            cursor = self._require().events.find(query).sort("seq", ASCENDING)
            return [self._event(d) async for d in cursor]
        cursor = self._require().events.find(query).sort("seq", DESCENDING).limit(limit)
        newest = [self._event(d) async for d in cursor]
        return newest[::-1]

    # -- outbox ----------------------------------------------------------------------
    @_guarded
    async def claim_outbox(self, owner: str, *, limit: int, lease_seconds: float) -> list[OutboxItem]:
        if limit <= 0:
            return []
        db = self._require()
        now = _now_us()
        # Each conversation's head is its oldest pending item; only a due, unleased head is claimable.
        cursor = await db.outbox.aggregate([
            {"$match": {"state": OutboxState.PENDING.value}},
            {"$sort": {"conversation_id": 1, "oseq": 1}},
            {"$group": {"_id": "$conversation_id", "id": {"$first": "$_id"}, "not_before": {"$first": "$not_before"},
                        "lease_until": {"$first": "$lease_until"}, "created_at": {"$first": "$created_at"}}},
            {"$match": {"not_before": {"$lte": now}, "lease_until": {"$lte": now}}},
            {"$sort": {"created_at": 1, "id": 1}},
            # Extra candidates, so a sender that loses races to another still fills its batch.
            {"$limit": limit * 3},
        ])
        heads = [d["id"] async for d in cursor]
        claimed: list[OutboxItem] = []
        for item_id in heads:
            if len(claimed) >= limit:
                break
            # The conditional update decides races between senders: one of them gets the item.
            # The lease is stamped with a time read now, after the (possibly slow) search, and
            # a fresh token fences what the sender later records.
            stamp = _now_us()
            doc = await db.outbox.find_one_and_update(
                {"_id": item_id, "state": OutboxState.PENDING.value,
                 "not_before": {"$lte": stamp}, "lease_until": {"$lte": stamp}},
                {"$set": {"lease_owner": owner, "lease_until": stamp + int(lease_seconds * 1_000_000),
                          "lease_token": uuid.uuid4().hex}},
                return_document=ReturnDocument.AFTER,
            )
            if doc is not None:
                claimed.append(self._outbox(doc))
        return claimed

    @_guarded
    async def outbox_renew(self, outbound_id: str, token: str, lease_seconds: float) -> bool:
        stamp = _now_us()
        result = await self._require().outbox.update_one(
            {"_id": outbound_id, "lease_token": token, "state": OutboxState.PENDING.value},
            {"$set": {"lease_until": stamp + int(lease_seconds * 1_000_000)}},
        )
        return result.matched_count == 1

    async def _record(self, query: Doc, update: Doc, token: str | None) -> bool:
        if token is not None:
            query = {**query, "lease_token": token}
        result = await self._require().outbox.update_one(query, update)
        return result.matched_count == 1

    @_guarded
    async def outbox_sent(self, outbound_id: str, platform_message_id: str, *, token: str | None = None) -> bool:
        return await self._record(
            {"_id": outbound_id},
            {"$set": {"state": OutboxState.SENT.value, "platform_message_id": platform_message_id,
                      "lease_owner": None, "lease_until": 0, "lease_token": None, "sent_at": _now_us()},
             "$inc": {"attempts": 1}},
            token,
        )

    @_guarded
    async def outbox_retry(
        self, outbound_id: str, not_before: datetime, error: str, *, token: str | None = None
    ) -> bool:
        return await self._record(
            {"_id": outbound_id, "state": OutboxState.PENDING.value},
            {"$set": {"not_before": _us(not_before), "last_error": error[:_ERROR_MAX],
                      "lease_owner": None, "lease_until": 0, "lease_token": None},
             "$inc": {"attempts": 1}},
            token,
        )

    @_guarded
    async def outbox_failed(self, outbound_id: str, error: str, *, token: str | None = None) -> bool:
        return await self._record(
            {"_id": outbound_id},
            {"$set": {"state": OutboxState.FAILED.value, "last_error": error[:_ERROR_MAX],
                      "lease_owner": None, "lease_until": 0, "lease_token": None},
             "$inc": {"attempts": 1}},
            token,
        )

    @_guarded
    async def get_outbox_item(self, outbound_id: str) -> OutboxItem | None:
        doc = await self._require().outbox.find_one({"_id": outbound_id})
        return self._outbox(doc) if doc else None

    @_guarded
    async def outbox_counts(self) -> dict[OutboxState, int]:
        counts = {state: 0 for state in OutboxState}
        cursor = await self._require().outbox.aggregate([{"$group": {"_id": "$state", "n": {"$sum": 1}}}])
        async for row in cursor:
            counts[OutboxState(row["_id"])] = int(row["n"])
        return counts

    @_guarded
    async def find_by_platform_message(self, channel: str, platform_message_id: str) -> OutboxItem | None:
        doc = await self._require().outbox.find_one({"channel": channel, "platform_message_id": platform_message_id})
        return self._outbox(doc) if doc else None

    async def _record_receipt(self, receipt: DeliveryReceipt, session: Session) -> bool:
        item = await self._require().outbox.find_one(
            {"channel": receipt.channel, "platform_message_id": receipt.platform_message_id},
            {"_id": 1, "conversation_id": 1}, session=session,
        )
        if item is None:
            return False
        counters = await self._require().conversations.find_one_and_update(
            {"_id": item["conversation_id"]}, {"$inc": {"last_seq": 1, "last_oseq": 0}},
            return_document=ReturnDocument.AFTER, session=session,
        )
        if counters is None:
            raise NotFound(f"conversation {item['conversation_id']}")
        await self._write_turn(item["conversation_id"], counters["bot"], counters,
                               [receipt_event(receipt, item["_id"])], [], session)
        return True

    @_guarded
    async def record_receipt(self, receipt: DeliveryReceipt) -> ReceiptOutcome:
        key = receipt_key(receipt)
        db = self._require()
        if await db.seen.find_one({"_id": key, "expires_at": {"$gt": _now_us()}}, {"_id": 1}) is not None:
            return ReceiptOutcome.DUPLICATE

        async def unit(session: Session) -> ReceiptOutcome:
            if await self._record_receipt(receipt, session):
                return ReceiptOutcome.RECORDED
            await db.parked_receipts.insert_one(
                {"channel": receipt.channel, "platform_message_id": receipt.platform_message_id,
                 "receipt": codec.receipt_to_dict(receipt), "parked_at": _now_us()},
                session=session,
            )
            return ReceiptOutcome.PARKED

        outcome = await self._atomic(unit)
        # Remembered only once recorded (or parked): a failure before this point leaves the
        # platform's retry to record it. Two copies racing here may both be recorded.
        if not await self.remember(key, RECEIPT_TTL_SECONDS):
            log.info("store.receipt_raced", channel=receipt.channel)
        return outcome

    @_guarded
    async def apply_parked_receipts(self, limit: int = 100) -> int:
        db = self._require()
        await db.parked_receipts.delete_many({"parked_at": {"$lt": _now_us() - int(RECEIPT_TTL_SECONDS * 1_000_000)}})
        recorded = 0
        async for parked in db.parked_receipts.find().sort("_id", ASCENDING).limit(limit):
            receipt = codec.receipt_from_dict(parked["receipt"])

            async def unit(session: Session, parked_id: Any = parked["_id"], receipt: DeliveryReceipt = receipt) -> bool:
                # Deleting first decides between processes applying the same parked receipt.
                gone = await db.parked_receipts.delete_one({"_id": parked_id}, session=session)
                if gone.deleted_count != 1:
                    return False
                if not await self._record_receipt(receipt, session):
                    raise _NotYet
                return True

            try:
                recorded += await self._atomic(unit)
            except _NotYet:
                if not self.transactions:  # put it back: no transaction undid the delete
                    await db.parked_receipts.insert_one(parked)
        return recorded

    # -- coordination ------------------------------------------------------------------
    async def _claim_key(self, collection: str, key: str, doc: Doc, holder: Doc) -> bool:
        """Upsert ``key`` unless an unexpired document not matching ``holder`` exists.

        When the filter does not match, the upsert's insert hits the _id index
        (DuplicateKeyError): someone else holds the key. A fresh token tells whether the
        stored document is ours when the server answers without one.
        """
        now = _now_us()
        token = uuid.uuid4().hex
        coll = self._require()[collection]
        try:
            stored = await coll.find_one_and_update(
                {"_id": key, "$or": [holder, {"expires_at": {"$lte": now}}]}, {"$set": {**doc, "token": token}},
                upsert=True, return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            return False
        if stored is None:
            stored = await coll.find_one({"_id": key})
        return stored is not None and stored.get("token") == token

    @_guarded
    async def acquire_lease(self, name: str, owner: str, ttl_seconds: float) -> bool:
        expires = _now_us() + int(ttl_seconds * 1_000_000)
        return await self._claim_key("leases", name, {"owner": owner, "expires_at": expires}, {"owner": owner})

    @_guarded
    async def release_lease(self, name: str, owner: str) -> None:
        await self._require().leases.delete_one({"_id": name, "owner": owner})

    @_guarded
    async def remember(self, key: str, ttl_seconds: float) -> bool:
        expires = _now_us() + int(ttl_seconds * 1_000_000)
        # ``holder`` never matches (no document has _never), so only an expired key is taken over.
        return await self._claim_key(
            "seen", key, {"expires_at": expires, "expire_at": _dt(expires)}, {"_never": True}
        )

    @_guarded
    async def kv_get(self, key: str) -> Any | None:
        doc = await self._require().kv.find_one(
            {"_id": key, "$or": [{"expires_at": None}, {"expires_at": {"$gt": _now_us()}}]}
        )
        return json.loads(doc["value"]) if doc else None

    @_guarded
    async def kv_set(self, key: str, value: Any, ttl_seconds: float | None = None) -> None:
        expires = _now_us() + int(ttl_seconds * 1_000_000) if ttl_seconds is not None else None
        await self._require().kv.replace_one(
            {"_id": key},
            {"value": json.dumps(value), "expires_at": expires,
             **({"expire_at": _dt(expires)} if expires is not None else {})},
            upsert=True,
        )

    @_guarded
    async def kv_delete(self, key: str) -> None:
        await self._require().kv.delete_one({"_id": key})

    # -- privacy ------------------------------------------------------------------------
    @_guarded
    async def export_contact(self, contact_id: str) -> dict[str, Any]:
        db = self._require()
        doc = await db.contacts.find_one({"_id": contact_id, "deleted": False})
        if doc is None:
            return {}
        contact = await self._contact(doc)
        conversations = []
        async for conv_doc in db.conversations.find({"contact_id": contact_id}):
            conv = self._conversation(conv_doc)
            events = db.events.find({"conversation_id": conv.id}).sort("seq", ASCENDING)
            outbox = db.outbox.find({"conversation_id": conv.id}).sort("oseq", ASCENDING)
            conversations.append({
                **codec.conversation_to_dict(conv),
                "transcript": [codec.event_to_dict(self._event(e)) async for e in events],
                "deliveries": [
                    {"id": o["_id"], "state": o["state"], "platform_message_id": o.get("platform_message_id")}
                    async for o in outbox
                ],
            })
        return {"contact": codec.contact_to_dict(contact), "conversations": conversations}

    @_guarded
    async def forget_contact(self, contact_id: str) -> None:
        async def unit(session: Session) -> None:
            db = self._require()
            conv_ids = [d["_id"] async for d in db.conversations.find({"contact_id": contact_id}, {"_id": 1},
                                                                     session=session)]
            await db.contacts.update_one(
                {"_id": contact_id},
                {"$set": {"display_name": None, "phone": None, "last_agent": None, "deleted": True, "consent": False}},
                session=session,
            )
            await db.identities.delete_many({"contact_id": contact_id}, session=session)
            scope = {"conversation_id": {"$in": conv_ids}}
            await db.events.update_many(scope, {"$set": {"data": "{}"}}, session=session)
            # Platform ids may embed a session or a phone number: each becomes "forgotten:<item id>"
            # (still unique, so the de-duplication index keeps working).
            async for item in db.inbox.find(scope, {"_id": 1}, session=session):
                forgotten = f"forgotten:{item['_id']}"
                await db.inbox.update_one(
                    {"_id": item["_id"]},
                    {"$set": {"processed": True, "platform_message_id": forgotten,
                              "inbound.platform_message_id": forgotten, "inbound.text": "",
                              "inbound.button_payload": None, "inbound.attachments": [], "inbound.shared_phone": None,
                              "inbound.display_name": None, "inbound.language_hint": None,
                              "inbound.channel_user_id": "", "inbound.chat_id": "",
                              "inbound.timestamp": "1970-01-01T00:00:00+00:00", "last_error": None},
                     "$unset": {"dead_at": ""}},
                    session=session,
                )
            await db.outbox.update_many(
                scope,
                {"$set": {"outbound.text": "", "outbound.chat_id": "", "outbound.buttons": [],
                          "outbound.attachments": []}},
                session=session,
            )
            await db.outbox.update_many(
                {**scope, "state": OutboxState.PENDING.value},
                {"$set": {"state": OutboxState.FAILED.value, "last_error": "contact forgotten"}},
                session=session,
            )
            await db.conversations.update_many(
                {"_id": {"$in": conv_ids}},
                {"$set": {"slots": "{}", "language": None, "active_form": None, "desk_thread": None,
                          "status": ConversationStatus.CLOSED.value, "updated_at": _now_us()},
                 "$inc": {"version": 1}},
                session=session,
            )

        await self._atomic(unit)

    @_guarded
    async def purge_transcripts(self, bot: str, older_than: datetime) -> int:
        db = self._require()
        cutoff = _us(older_than)
        # Message text also lives in processed inbox items and finished outbox items.
        await db.inbox.update_many(
            {"bot": bot, "processed": True, "received_at": {"$lt": cutoff}},
            {"$set": {"inbound.text": "", "inbound.attachments": []}},
        )
        await db.outbox.update_many(
            {"bot": bot, "state": {"$ne": OutboxState.PENDING.value}, "created_at": {"$lt": cutoff}},
            {"$set": {"outbound.text": "", "outbound.buttons": [], "outbound.attachments": []}},
        )
        result = await db.events.delete_many({"bot": bot, "ts": {"$lt": cutoff}})
        return int(result.deleted_count)

    @_guarded
    async def audit(self, entry: AuditEntry) -> None:
        at = entry.at or utcnow()
        await self._require().audit.insert_one({
            "_id": await self._next_id("audit"), "bot": entry.bot, "actor": entry.actor, "action": entry.action,
            "target": entry.target, "detail": json.dumps(entry.detail), "at": _us(at),
        })

    @_guarded
    async def audit_log(self, *, bot: str | None = None, limit: int = 100) -> list[AuditEntry]:
        if limit <= 0:
            return []
        query = {} if bot is None else {"bot": bot}
        cursor = self._require().audit.find(query).sort("_id", DESCENDING).limit(limit)
        return [
            AuditEntry(d["actor"], d["action"], d["target"], json.loads(d["detail"]), _dt(d["at"]), d.get("bot"))
            async for d in cursor
        ]

    @_guarded
    async def count_conversations(self, bot: str | None = None) -> int:
        return int(await self._require().conversations.count_documents({} if bot is None else {"bot": bot}))
