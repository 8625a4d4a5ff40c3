"""Contacts and identities on MongoDB: the operations and `MongoContactStore`."""

from __future__ import annotations

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from core.errors import NotFound, StoreError
from core.model import Contact, Identity, new_id
from core.store.mongo.connection import Doc, MongoConnection, Session, dt, guarded, us
from core.store.mongo.conversations import conversation_for
from core.store.ports import ContactStore


async def contact_from_doc(conn: MongoConnection, doc: Doc, session: Session = None) -> Contact:
    cursor = conn.require().identities.find({"contact_id": doc["_id"]}, session=session).sort("_id", ASCENDING)
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
        created_at=dt(doc["created_at"]),
    )


async def merge_into(conn: MongoConnection, keep_conv: str, drop_conv: str, session: Session) -> None:
    """Re-sequence both transcripts in time order into ``keep_conv``; move inbox and outbox."""
    db = conn.require()
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

class MongoContactStore(ContactStore):
    """`ContactStore` on the connection's database."""

    def __init__(self, conn: MongoConnection) -> None:
        self._conn = conn

    @guarded
    async def resolve_contact(
        self, bot: str, identity: Identity, *, display_name: str | None = None
    ) -> Contact:
        db = self._conn.require()
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
                    return await contact_from_doc(self._conn, doc)
                # The identity points at a contact that is gone: drop the stale claim and retry.
                await db.identities.delete_one({"_id": found["_id"], "contact_id": contact_id})
                continue
            # The contact is written before the identity claim, so a claim never points at nothing.
            contact_id = new_id("ct")
            await db.contacts.insert_one({
                "_id": contact_id, "bot": bot, "display_name": display_name, "phone": None, "last_agent": None,
                "last_channel": identity.channel, "consent": True, "deleted": False, "created_at": self._conn.now_us(),
            })
            try:
                await db.identities.insert_one({**key, "chat_id": identity.chat_id, "contact_id": contact_id})
            except DuplicateKeyError:
                await db.contacts.delete_one({"_id": contact_id})  # another process won the race
                continue
            doc = await db.contacts.find_one({"_id": contact_id})
            assert doc is not None
            return await contact_from_doc(self._conn, doc)
        raise StoreError(f"could not resolve a contact for bot {bot} on {identity.channel}")

    @guarded
    async def get_contact(self, contact_id: str) -> Contact | None:
        doc = await self._conn.require().contacts.find_one({"_id": contact_id})
        return await contact_from_doc(self._conn, doc) if doc else None

    @guarded
    async def save_contact(self, contact: Contact) -> None:
        async def unit(session: Session) -> None:
            db = self._conn.require()
            fields = {
                "display_name": contact.display_name, "phone": contact.phone, "last_agent": contact.last_agent,
                "last_channel": contact.last_channel, "consent": contact.consent, "deleted": contact.deleted,
            }
            await db.contacts.update_one(
                {"_id": contact.id},
                {"$set": fields, "$setOnInsert": {"bot": contact.bot, "created_at": us(contact.created_at)}},
                upsert=True, session=session,
            )
            await db.identities.delete_many({"contact_id": contact.id}, session=session)
            for i in contact.identities:
                key = {"bot": contact.bot, "channel": i.channel, "channel_user_id": i.channel_user_id}
                # An identity belongs to one contact: saving it here moves it from any other.
                await db.identities.delete_many(key, session=session)
                await db.identities.insert_one({**key, "chat_id": i.chat_id, "contact_id": contact.id}, session=session)

        await self._conn.atomic(unit)

    @guarded
    async def find_contacts(
        self, bot: str, *, phone: str | None = None, identity: Identity | None = None
    ) -> list[Contact]:
        db = self._conn.require()
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
                contacts.append(await contact_from_doc(self._conn, doc))
        return contacts

    @guarded
    async def merge_contacts(self, keep_id: str, drop_id: str) -> Contact:
        async def unit(session: Session) -> Contact:
            db = self._conn.require()
            keep = await db.contacts.find_one({"_id": keep_id}, session=session)
            drop = await db.contacts.find_one({"_id": drop_id}, session=session)
            if keep is None or drop is None or keep["bot"] != drop["bot"]:
                raise NotFound(f"cannot merge {drop_id} into {keep_id}")
            if keep_id == drop_id:
                return await contact_from_doc(self._conn, keep, session)
            bot = keep["bot"]
            await db.identities.update_many({"contact_id": drop_id}, {"$set": {"contact_id": keep_id}}, session=session)
            fill = {f: drop.get(f) for f in ("phone", "display_name", "last_agent") if keep.get(f) is None}
            if fill:
                await db.contacts.update_one({"_id": keep_id}, {"$set": fill}, session=session)
            dropped = await db.conversations.find_one({"bot": bot, "contact_id": drop_id}, session=session)
            if dropped is not None:
                kept = await conversation_for(self._conn, bot, keep_id, session)
                await merge_into(self._conn, kept.id, dropped["_id"], session)
            await db.contacts.delete_one({"_id": drop_id}, session=session)
            merged = await db.contacts.find_one({"_id": keep_id}, session=session)
            assert merged is not None
            return await contact_from_doc(self._conn, merged, session)

        return await self._conn.atomic(unit)
