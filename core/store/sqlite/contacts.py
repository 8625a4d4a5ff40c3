"""Contacts and identities on SQLite: the operations (functions of a connection) and `SQLiteContactStore`."""

from __future__ import annotations

import sqlite3

from core.errors import NotFound
from core.model import Contact, Identity, new_id
from core.store.ports import ContactStore
from core.store.sqlite.conversations import conversation_for
from core.store.sqlite.encoding import from_ts, ts
from core.store.sqlite.engine import SQLiteEngine
from core.store.sqlite.transcript import merge_transcripts


def contact_from_row(db: sqlite3.Connection, row: sqlite3.Row) -> Contact:
    ids = db.execute(
        "SELECT channel, channel_user_id, chat_id FROM identities WHERE contact_id=? ORDER BY rowid",
        (row["id"],),
    ).fetchall()
    return Contact(
        id=row["id"],
        bot=row["bot"],
        identities=tuple(Identity(i["channel"], i["channel_user_id"], i["chat_id"]) for i in ids),
        display_name=row["display_name"],
        phone=row["phone"],
        last_agent=row["last_agent"],
        last_channel=row["last_channel"],
        consent=bool(row["consent"]),
        deleted=bool(row["deleted"]),
        created_at=from_ts(row["created_at"]),
    )


def read_contact(db: sqlite3.Connection, contact_id: str) -> Contact | None:
    row = db.execute("SELECT * FROM contacts WHERE id=?", (contact_id,)).fetchone()
    return contact_from_row(db, row) if row else None


def resolve(db: sqlite3.Connection, bot: str, identity: Identity, display_name: str | None, *, at: float) -> str:
    """The id of the contact owning ``identity``, created (at ``at``) if new; marks the channel as last used."""
    row = db.execute(
        "SELECT contact_id, chat_id FROM identities WHERE bot=? AND channel=? AND channel_user_id=?",
        (bot, identity.channel, identity.channel_user_id),
    ).fetchone()
    if row is None:
        contact_id = new_id("ct")
        db.execute(
            "INSERT INTO contacts (id, bot, display_name, last_channel, created_at) VALUES (?,?,?,?,?)",
            (contact_id, bot, display_name, identity.channel, at),
        )
        db.execute(
            "INSERT INTO identities (bot, channel, channel_user_id, chat_id, contact_id) VALUES (?,?,?,?,?)",
            (bot, identity.channel, identity.channel_user_id, identity.chat_id, contact_id),
        )
        return contact_id
    contact_id = str(row["contact_id"])
    if row["chat_id"] != identity.chat_id:
        db.execute(
            "UPDATE identities SET chat_id=? WHERE bot=? AND channel=? AND channel_user_id=?",
            (identity.chat_id, bot, identity.channel, identity.channel_user_id),
        )
    db.execute(  # only when something changes: most messages come where the last one did
        "UPDATE contacts SET last_channel=?, display_name=COALESCE(display_name, ?)"
        " WHERE id=? AND (last_channel IS NOT ? OR (display_name IS NULL AND ? IS NOT NULL))",
        (identity.channel, display_name, contact_id, identity.channel, display_name),
    )
    return contact_id


def phone_of(db: sqlite3.Connection, contact_id: str) -> str | None:
    phone: str | None = db.execute("SELECT phone FROM contacts WHERE id=?", (contact_id,)).fetchone()[0]
    return phone


class SQLiteContactStore(ContactStore):
    """`ContactStore` on the engine's file."""

    def __init__(self, engine: SQLiteEngine) -> None:
        self._engine = engine

    async def resolve_contact(
        self, bot: str, identity: Identity, *, display_name: str | None = None
    ) -> Contact:
        def unit(db: sqlite3.Connection) -> Contact:
            contact_id = resolve(db, bot, identity, display_name, at=self._engine.clock.time())
            return contact_from_row(db, db.execute("SELECT * FROM contacts WHERE id=?", (contact_id,)).fetchone())

        return await self._engine.tx(unit)

    async def get_contact(self, contact_id: str) -> Contact | None:
        return await self._engine.run(lambda db: read_contact(db, contact_id))

    async def save_contact(self, contact: Contact) -> None:
        def unit(db: sqlite3.Connection) -> None:
            updated = db.execute(
                "UPDATE contacts SET display_name=?, phone=?, last_agent=?, last_channel=?, consent=?, deleted=?"
                " WHERE id=? AND bot=?",
                (contact.display_name, contact.phone, contact.last_agent, contact.last_channel,
                 int(contact.consent), int(contact.deleted), contact.id, contact.bot),
            ).rowcount
            if not updated:
                db.execute(
                    "INSERT INTO contacts (id, bot, display_name, phone, last_agent, last_channel, consent,"
                    " deleted, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                    (contact.id, contact.bot, contact.display_name, contact.phone, contact.last_agent,
                     contact.last_channel, int(contact.consent), int(contact.deleted), ts(contact.created_at)),
                )
            db.execute("DELETE FROM identities WHERE contact_id=?", (contact.id,))
            db.executemany(
                "INSERT INTO identities (bot, channel, channel_user_id, chat_id, contact_id) VALUES (?,?,?,?,?)",
                [(contact.bot, i.channel, i.channel_user_id, i.chat_id, contact.id) for i in contact.identities],
            )

        await self._engine.tx(unit)

    async def find_contacts(
        self, bot: str, *, phone: str | None = None, identity: Identity | None = None
    ) -> list[Contact]:
        def unit(db: sqlite3.Connection) -> list[Contact]:
            ids: list[str] = []
            if phone is not None:
                ids += [r[0] for r in db.execute(
                    "SELECT id FROM contacts WHERE bot=? AND phone=? AND deleted=0 ORDER BY created_at", (bot, phone)
                )]
            if identity is not None:
                ids += [r[0] for r in db.execute(
                    "SELECT contact_id FROM identities WHERE bot=? AND channel=? AND channel_user_id=?",
                    (bot, identity.channel, identity.channel_user_id),
                )]
            unique = list(dict.fromkeys(ids))
            return [
                contact_from_row(db, db.execute("SELECT * FROM contacts WHERE id=?", (i,)).fetchone()) for i in unique
            ]

        return await self._engine.run(unit)

    async def merge_contacts(self, keep_id: str, drop_id: str) -> Contact:
        def unit(db: sqlite3.Connection) -> Contact:
            keep = db.execute("SELECT * FROM contacts WHERE id=?", (keep_id,)).fetchone()
            drop = db.execute("SELECT * FROM contacts WHERE id=?", (drop_id,)).fetchone()
            if keep is None or drop is None or keep["bot"] != drop["bot"]:
                raise NotFound(f"cannot merge {drop_id} into {keep_id}")
            if keep_id == drop_id:
                return contact_from_row(db, keep)
            bot = keep["bot"]
            db.execute("UPDATE identities SET contact_id=? WHERE contact_id=?", (keep_id, drop_id))
            db.execute(
                "UPDATE contacts SET phone=COALESCE(phone, ?), display_name=COALESCE(display_name, ?),"
                " last_agent=COALESCE(last_agent, ?) WHERE id=?",
                (drop["phone"], drop["display_name"], drop["last_agent"], keep_id),
            )
            dropped_conv = db.execute(
                "SELECT * FROM conversations WHERE bot=? AND contact_id=?", (bot, drop_id)
            ).fetchone()
            if dropped_conv is not None:
                kept_conv = conversation_for(db, bot, keep_id, at=self._engine.clock.time())
                merge_transcripts(db, kept_conv.id, dropped_conv["id"])
                db.execute("UPDATE inbox SET conversation_id=? WHERE conversation_id=?", (kept_conv.id, dropped_conv["id"]))
                db.execute(
                    "UPDATE outbox SET conversation_id=?, payload=json_set(payload, '$.conversation_id', ?)"
                    " WHERE conversation_id=?",
                    (kept_conv.id, kept_conv.id, dropped_conv["id"]),
                )
                db.execute("DELETE FROM conversations WHERE id=?", (dropped_conv["id"],))
            db.execute("DELETE FROM contacts WHERE id=?", (drop_id,))
            return contact_from_row(db, db.execute("SELECT * FROM contacts WHERE id=?", (keep_id,)).fetchone())

        return await self._engine.tx(unit, bulk=True)
