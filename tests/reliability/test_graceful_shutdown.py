"""SIGTERM while turns are in flight: the farm stops taking requests, finishes the turns it is
running, exits 0, and after a restart every accepted message is answered exactly once."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import aiohttp
import pytest

from bench import load, procs
from tests.reliability.support import make_message, post_until_acked, stored_inbox, wait_for_replies
from tests.support.wait import eventually

pytestmark = pytest.mark.timeout(60)

BOT = "bench"


def processed(db_path: Path) -> int:
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        return int(db.execute("SELECT COUNT(*) FROM inbox WHERE processed=1").fetchone()[0])
    finally:
        db.close()


async def test_sigterm_drains_turns_in_flight_and_loses_nothing(tmp_path: Path, fakes: load.Fakes) -> None:
    config, port, db_path = procs.write_farm_config(tmp_path, load.farm_channels(fakes), bot=BOT)
    farm = await asyncio.to_thread(procs.start_farm, config, port, engine_delay=0.4)
    people = load.customers(6)
    messages = [make_message(BOT, c, f"{c.user}-{n}") for n in range(3) for c in people]
    async with aiohttp.ClientSession() as session:
        deadline = time.monotonic() + 10
        await asyncio.gather(*(post_until_acked(session, farm.url, m, deadline=deadline) for m in messages))
    # once the first turn is done, the customers' other turns are inside the (slow) engine or queued
    await eventually(lambda: processed(db_path) >= 1, timeout=10)
    done_before = processed(db_path)
    started = time.monotonic()
    code = await asyncio.to_thread(farm.stop, 20.0)  # SIGTERM, SIGKILL only after 20 s
    took = time.monotonic() - started
    done_after = processed(db_path)

    assert code == 0, farm.log_tail()
    assert took < 15, f"shutdown took {took:.1f} s"
    assert done_after > done_before, "turns in flight at SIGTERM were not finished"
    assert "turn.drain_failed" not in farm.log_tail(200)

    farm = await asyncio.to_thread(procs.start_farm, config, port)
    try:
        missing = await wait_for_replies(fakes.replies, [m.key for m in messages], timeout=20)
    finally:
        await asyncio.to_thread(farm.stop)
    assert not missing, missing
    assert fakes.replies.duplicates() == 0
    inbox = stored_inbox(db_path)
    assert all(inbox[m.platform_id] == 1 for m in messages)
