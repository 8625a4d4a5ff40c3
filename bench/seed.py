"""Fill a SQLite store with many stored conversations quickly (for the memory figure).

The schema is created by `SQLiteStore.open()` (its migrations); rows are then written
with plain ``executemany`` in large transactions, the same rows the store would write:
a contact with a Telegram or WhatsApp identity, its conversation, a short transcript
(user + bot events), a processed inbox item and a sent outbox item.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

from core.model import Outbound
from core.store import codec
from core.store.sqlite import SQLiteStore

SEED_TELEGRAM_BASE = 600_000_000


def seed_identity(i: int) -> tuple[str, str]:
    """(channel, user id) of seeded customer ``i`` (even: Telegram, odd: WhatsApp)."""
    return ("telegram", str(SEED_TELEGRAM_BASE + i)) if i % 2 == 0 else ("whatsapp", f"49160{i:07d}")


async def _migrate(path: Path) -> None:
    store = SQLiteStore(path)
    await store.open()
    await store.close()


def seed(path: Path, conversations: int, bot: str, *, chunk: int = 20_000) -> float:
    """Write ``conversations`` contacts/conversations into the store at ``path``; returns seconds."""
    started = time.perf_counter()
    asyncio.run(_migrate(path))
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    now = time.time()
    for low in range(0, conversations, chunk):
        high = min(conversations, low + chunk)
        contacts, identities, convs, events, inbox, outbox = [], [], [], [], [], []
        for i in range(low, high):
            channel, user = seed_identity(i)
            contact, conv = f"ct_seed{i:08d}", f"conv_seed{i:08d}"
            ts = now - 86400 + i * 0.001
            contacts.append((contact, bot, f"Customer {i}", channel, ts))
            identities.append((bot, channel, user, user, contact))
            convs.append((conv, bot, contact, "bot", "{}", 2, 4, ts, ts))
            user_event = {"text": "Wo ist meine Rechnung?", "message_id": f"{channel}:seed{i}",
                          "parse_data": {"intent": {"name": "invoice", "confidence": 0.93}, "entities": []}}
            reply = "Ihre Rechnung finden Sie im Kundenkonto unter Rechnungen."
            bot_event = {"text": reply,
                         "data": {"buttons": []}, "metadata": {"outbound_id": f"out_seed{i:08d}"}}
            events += [
                (conv, 1, "user", channel, ts, json.dumps(user_event)),
                (conv, 2, "action", channel, ts, json.dumps({"name": "utter_invoice"})),
                (conv, 3, "bot", channel, ts, json.dumps(bot_event)),
                (conv, 4, "action", channel, ts, json.dumps({"name": "action_listen"})),
            ]
            inbox.append((conv, bot, channel, f"{channel}:seed{i}", "{}", ts, 1))
            payload = codec.outbound_to_dict(Outbound(conv, bot, channel, user, text=reply,
                                                      id=f"out_seed{i:08d}"))
            outbox.append((f"out_seed{i:08d}", conv, bot, channel, json.dumps(payload), "sent", 1,
                           f"{channel}:seedmsg{i}", ts, ts))
        db.execute("BEGIN")
        db.executemany("INSERT INTO contacts (id, bot, display_name, last_channel, created_at) VALUES (?,?,?,?,?)",
                       contacts)
        db.executemany("INSERT INTO identities (bot, channel, channel_user_id, chat_id, contact_id)"
                       " VALUES (?,?,?,?,?)", identities)
        db.executemany("INSERT INTO conversations (id, bot, contact_id, status, slots, version, last_seq,"
                       " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)", convs)
        db.executemany("INSERT INTO events (conversation_id, seq, type, channel, ts, data) VALUES (?,?,?,?,?,?)",
                       events)
        db.executemany("INSERT INTO inbox (conversation_id, bot, channel, platform_message_id, payload,"
                       " received_at, processed) VALUES (?,?,?,?,?,?,?)", inbox)
        db.executemany("INSERT INTO outbox (id, conversation_id, bot, channel, payload, state, attempts,"
                       " platform_message_id, created_at, sent_at) VALUES (?,?,?,?,?,?,?,?,?,?)", outbox)
        db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return time.perf_counter() - started
