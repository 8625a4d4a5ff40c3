"""kill -9 of the farm process in the middle of a webhook load: after a restart every
acknowledged message is in the transcript once and got its reply; a reply that reached the
platform twice is one the store knew to be in doubt (sent, result not recorded: the crash window)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from bench import load, procs
from tests.reliability.support import (
    PlatformMessage,
    make_message,
    post,
    post_until_acked,
    replies_in_doubt,
    stored_inbox,
    transcript_user_messages,
    wait_for_replies,
)
from tests.support.wait import eventually

pytestmark = pytest.mark.timeout(90)

BOT = "bench"


async def customer_loop(
    session: aiohttp.ClientSession, url: str, customer: load.Customer, acked: list[PlatformMessage],
    unacked: list[PlatformMessage], stop: asyncio.Event,
) -> None:
    """Send one message after the other until the farm stops answering; keep the first failure."""
    n = 0
    while not stop.is_set():
        n += 1
        message = make_message(BOT, customer, f"{customer.user}-{n}")
        status = await post(session, url, message)
        if status == 200:
            acked.append(message)
        else:
            unacked.append(message)  # the platform will retry this one
            return


async def test_kill9_under_load_then_restart_loses_no_acknowledged_message(
    tmp_path: Path, fakes: load.Fakes, record_property: pytest.RecordProperty
) -> None:
    config, port, db_path = procs.write_farm_config(tmp_path, load.farm_channels(fakes), bot=BOT)
    farm = await asyncio.to_thread(procs.start_farm, config, port)
    acked: list[PlatformMessage] = []
    unacked: list[PlatformMessage] = []
    stop = asyncio.Event()
    try:
        async with aiohttp.ClientSession() as session:
            loops = [asyncio.create_task(customer_loop(session, farm.url, c, acked, unacked, stop))
                     for c in load.customers(30)]
            await eventually(lambda: len(acked) > 50, timeout=30, message="the load did not get going")
            await asyncio.to_thread(farm.kill)  # SIGKILL: no drain, no cleanup
            stop.set()
            await asyncio.wait_for(asyncio.gather(*loops), timeout=20)
            killed_at = len(acked)
            replied_before_restart = sum(1 for m in acked if fakes.replies.arrivals.get(m.key))

            farm = await asyncio.to_thread(procs.start_farm, config, port)
            deadline = time.monotonic() + 20
            # Platforms re-send what was not acknowledged, and sometimes what was (at-least-once).
            retried = unacked + acked[:: max(1, len(acked) // 10)]
            await asyncio.gather(*(post_until_acked(session, farm.url, m, deadline=deadline) for m in retried))
            every = {m.key: m for m in [*acked, *unacked]}
            missing = await wait_for_replies(fakes.replies, every, timeout=20)
    finally:
        await asyncio.to_thread(farm.stop)

    assert farm.popen.returncode == 0, farm.log_tail()
    assert not missing, f"{len(missing)} messages without a reply, e.g. {missing[:5]}\n{farm.log_tail()}"
    inbox = stored_inbox(db_path)
    transcript = transcript_user_messages(db_path)
    for message in every.values():
        assert inbox[message.platform_id] == 1, message.key
        assert transcript[message.platform_id] == 1, message.key
    duplicates = fakes.replies.duplicates()
    # Every duplicate is inside the crash window: the store has the reply's claim, not its result.
    in_doubt = replies_in_doubt(db_path)
    doubled = sorted(key for key, n in fakes.replies.arrivals.items() if n > 1)
    outside = [key for key in doubled if not in_doubt.get(key)]
    assert not outside, f"replies sent twice without a claim in doubt: {outside[:5]}"
    record_property("replies_in_doubt", sum(1 for n in in_doubt.values() if n))
    record_property("acked_before_kill", killed_at)
    record_property("replied_before_kill", replied_before_restart)
    record_property("duplicate_replies", duplicates)
    print(f"\nkill -9: {killed_at} acknowledged before the kill ({replied_before_restart} already answered), "
          f"{len(unacked)} re-sent by the platform, {len(every)} messages in all; "
          f"duplicate replies after restart: {duplicates} ({len(doubled)} replies), all of them among the "
          f"{sum(1 for n in in_doubt.values() if n)} replies in doubt (claimed, no result recorded)")
    # A reply can go out twice only if the kill fell between the platform's answer and the
    # store's "sent" mark: at most one per send in flight.
    assert duplicates <= 64
