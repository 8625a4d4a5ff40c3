"""Shared pieces of the fault tests: platform-side messages that can be re-posted byte for byte
(platforms retry exactly what they sent), reply bookkeeping, and a look into the SQLite file."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench import load
from tests.support.wait import eventually

#: Length of the simulated platform-API outage; CI keeps it short, bench/ runs it for 60 s.
OUTAGE_SECONDS = float(os.environ.get("SWITCHBOARD_OUTAGE_SECONDS", "3"))


@dataclass(frozen=True)
class PlatformMessage:
    """One customer message exactly as the platform POSTs it (and re-POSTs it on retry)."""

    key: str
    customer: load.Customer
    path: str
    body: bytes
    headers: dict[str, str]

    @property
    def platform_id(self) -> str:
        """The namespaced id the adapter stores (``telegram:<update_id>`` / ``whatsapp:<wamid>``)."""
        import json

        data = json.loads(self.body)
        if self.customer.channel == "telegram":
            return f"telegram:{data['update_id']}"
        return f"whatsapp:{data['entry'][0]['changes'][0]['value']['messages'][0]['id']}"


def make_message(bot: str, customer: load.Customer, key: str) -> PlatformMessage:
    url, body, headers = load.webhook_request("", bot, customer, key)
    return PlatformMessage(key, customer, url, body, headers)


async def post(session: aiohttp.ClientSession, base_url: str, message: PlatformMessage) -> int:
    """POST once like the platform; 0 when the connection failed (the farm is down)."""
    try:
        async with session.post(base_url + message.path, data=message.body, headers=message.headers,
                                timeout=aiohttp.ClientTimeout(total=15)) as response:
            await response.read()
            return response.status
    except (aiohttp.ClientError, TimeoutError):
        return 0


async def post_until_acked(session: aiohttp.ClientSession, base_url: str, message: PlatformMessage,
                           *, deadline: float, pause: float = 0.2) -> list[int]:
    """Retry like Telegram/Meta do until a 2xx; returns every status seen."""
    statuses = []
    while True:
        status = await post(session, base_url, message)
        statuses.append(status)
        if 200 <= status < 300:
            return statuses
        if time.monotonic() > deadline:
            raise AssertionError(f"{message.key} never acknowledged: {statuses[-5:]}")
        await asyncio.sleep(pause)


async def wait_for_replies(replies: load.Replies, keys: Iterable[str], timeout: float) -> list[str]:
    """Wait until every key's reply arrived at a fake API; returns the keys still missing."""
    wanted = set(keys)

    def missing() -> list[str]:
        return sorted(k for k in wanted if replies.arrivals.get(k, 0) == 0)

    with contextlib.suppress(AssertionError):
        await eventually(lambda: not missing(), timeout=timeout)
    return missing()


def stored_inbox(db_path: Path) -> Counter[str]:
    """How often each platform message id is in the inbox (a second, read-only connection)."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        return Counter(r[0] for r in db.execute("SELECT platform_message_id FROM inbox"))
    finally:
        db.close()


def transcript_user_messages(db_path: Path) -> Counter[str]:
    """How often each platform message id appears as a ``user`` event in any transcript."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        rows = db.execute("SELECT json_extract(data, '$.message_id') FROM events WHERE type='user'")
        return Counter(r[0] for r in rows)
    finally:
        db.close()


def outbox_states(db_path: Path) -> dict[str, int]:
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        return {r[0]: r[1] for r in db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state")}
    finally:
        db.close()


def replies_in_doubt(db_path: Path) -> dict[str, int]:
    """Message key (of its ``echo: <key>`` reply) -> claims of that reply that ended without a
    recorded result (the outbox's ``in_doubt``: sends inside the crash window)."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        found = {}
        for text, in_doubt in db.execute("SELECT json_extract(payload, '$.text'), in_doubt FROM outbox"):
            at = str(text).rfind(load.ECHO)
            if at >= 0:
                found[str(text)[at + len(load.ECHO):]] = int(in_doubt)
        return found
    finally:
        db.close()


def reply_order(texts: Sequence[str]) -> list[str]:
    """Keys of ``echo: <key>`` replies in arrival order."""
    out = []
    for text in texts:
        at = text.rfind(load.ECHO)
        if at >= 0:
            out.append(text[at + len(load.ECHO):])
    return out
