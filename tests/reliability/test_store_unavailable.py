"""The store is briefly unavailable (another process holds SQLite's write lock longer than
the store waits for it): webhooks are answered 503 so the platforms retry, /readyz says so, and once the
store is back every message is stored once and answered once."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bench import load
from bench.procs import UNLIMITED
from core.store.sqlite import SQLiteStore
from tests.reliability.support import (
    PlatformMessage,
    make_message,
    post,
    post_until_acked,
    stored_inbox,
    transcript_user_messages,
    wait_for_replies,
)
from tests.support.engines import EchoEngine
from tests.support.farm import DEMO_PROJECT, running_farm

pytestmark = [pytest.mark.timeout(60), pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")]

BOT = "demo"
BUSY_TIMEOUT = 0.5  # how long the store waits for another process's lock before giving up


def bots(fakes: load.Fakes) -> dict[str, Any]:
    channels = load.farm_channels(fakes)
    channels["telegram"]["webhook_url"] = "https://bench.invalid/webhooks/demo/telegram"
    return {BOT: {"project": str(DEMO_PROJECT), "languages": ["en"], "default_language": "en",
                  "channels": channels}}


def hold_write_lock(db_path: Path, taken: threading.Event, release: threading.Event) -> None:
    """What a backup tool or a stray second process does: an exclusive transaction, held until ``release``."""
    db = sqlite3.connect(db_path, isolation_level=None, timeout=10)
    try:
        db.execute("BEGIN EXCLUSIVE")
        taken.set()
        release.wait(60)
        db.execute("ROLLBACK")
    finally:
        db.close()


async def test_store_unavailable_answers_503_and_loses_nothing(
    tmp_path: Path, fakes: load.Fakes, record_property: pytest.RecordProperty
) -> None:
    delivery = {"poll_interval": 0.05, "backoff_initial": 0.05, "backoff_max": 0.5,
                "rate_limits": {"telegram": dict(UNLIMITED), "whatsapp": dict(UNLIMITED)}}
    people = load.customers(6)
    statuses: Counter[int] = Counter()
    store = SQLiteStore(tmp_path / "switchboard.db", busy_timeout=BUSY_TIMEOUT)
    async with running_farm(tmp_path, bots=bots(fakes), engines={BOT: EchoEngine()}, delivery=delivery,
                            store=store) as farm, \
            aiohttp.ClientSession() as session:
        before = [make_message(BOT, c, f"{c.user}-before") for c in people]
        for message in before:
            statuses.update(await post_until_acked(session, farm.url, message, deadline=time.monotonic() + 10))
        taken, release = threading.Event(), threading.Event()
        locker = asyncio.create_task(asyncio.to_thread(hold_write_lock, farm.db_path, taken, release))
        await asyncio.to_thread(taken.wait, 5)
        during = [make_message(BOT, c, f"{c.user}-during") for c in people]
        try:
            # While the lock is held every webhook waits busy_timeout, then answers 503 (the
            # platform retries it later), and the farm reports itself not ready.
            readiness, *refused = await asyncio.gather(
                _get_status(session, f"{farm.url}/readyz"), *(post(session, farm.url, m) for m in during)
            )
            assert set(refused) == {503}, refused
            statuses.update(refused)
        finally:
            release.set()
            await locker
        results = await asyncio.gather(*(
            post_until_acked(session, farm.url, m, deadline=time.monotonic() + 30, pause=0.3) for m in during
        ))
        for seen in results:
            statuses.update(seen)
        after = [make_message(BOT, c, f"{c.user}-after") for c in people]
        for message in after:
            statuses.update(await post_until_acked(session, farm.url, message, deadline=time.monotonic() + 10))
        every: list[PlatformMessage] = before + during + after
        missing = await wait_for_replies(fakes.replies, [m.key for m in every], timeout=20)
        await farm.farm.settle(timeout=10)

    assert statuses[503] > 0, f"no 503 while the store was locked: {dict(statuses)}"
    assert set(statuses) <= {200, 503}, dict(statuses)
    assert readiness == 503
    assert not missing, missing
    assert fakes.replies.duplicates() == 0
    inbox, transcript = stored_inbox(farm.db_path), transcript_user_messages(farm.db_path)
    for message in every:
        assert inbox[message.platform_id] == 1 and transcript[message.platform_id] == 1, message.key
    record_property("statuses", dict(statuses))
    print(f"\nstore locked: webhook answers {dict(statuses)}, /readyz {readiness}; "
          f"{len(every)} messages stored and answered once")


async def _get_status(session: aiohttp.ClientSession, url: str) -> int:
    async with session.get(url) as response:
        return response.status
