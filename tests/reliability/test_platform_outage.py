"""The platform APIs fail (5xx, 429 with retry_after, timeouts) for a while and then recover:
every reply is delivered, exactly once, in order per chat, none lost or sent twice.

The outage lasts ``SWITCHBOARD_OUTAGE_SECONDS`` (3 s in CI; ``python -m bench.faults``
runs it for 60 s)."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bench import load
from bench.procs import UNLIMITED
from tests.reliability.support import (
    OUTAGE_SECONDS,
    PlatformMessage,
    make_message,
    outbox_states,
    post_until_acked,
    reply_order,
    wait_for_replies,
)
from tests.support.engines import EchoEngine
from tests.support.farm import DEMO_PROJECT, running_farm

pytestmark = [
    pytest.mark.timeout(60 + 3 * OUTAGE_SECONDS),
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

BOT = "demo"
TIMEOUT = 0.5  # adapters' HTTP timeout: a hanging API is a timeout after this long


@pytest.fixture
async def fakes() -> AsyncIterator[load.Fakes]:
    replies = load.Replies()
    telegram = await load.BenchTelegramAPI(replies, hang_seconds=TIMEOUT * 4).start()
    whatsapp = await load.BenchWhatsAppAPI(replies, hang_seconds=TIMEOUT * 4).start()
    yield load.Fakes(replies, telegram, whatsapp)
    await telegram.stop()
    await whatsapp.stop()


def bots(fakes: load.Fakes) -> dict[str, Any]:
    channels = load.farm_channels(fakes)
    channels["telegram"]["timeout"] = TIMEOUT
    channels["telegram"]["webhook_url"] = "https://bench.invalid/webhooks/demo/telegram"
    channels["whatsapp"]["timeout"] = TIMEOUT
    return {BOT: {"project": str(DEMO_PROJECT), "languages": ["en"], "default_language": "en",
                  "channels": channels}}


DELIVERY = {"poll_interval": 0.05, "backoff_initial": 0.05, "backoff_max": 0.5, "max_attempts": 4,
            "rate_limits": {"telegram": dict(UNLIMITED), "whatsapp": dict(UNLIMITED)}}


async def outage(fakes: load.Fakes, seconds: float) -> None:
    """A third of the time 5xx, a third 429 with retry_after, a third hanging requests."""
    third = seconds / 3
    fakes.telegram.fail_for(third, status=500)
    fakes.whatsapp.fail_for(third, code=131000)
    await asyncio.sleep(third)
    fakes.telegram.fail_for(third, status=429, retry_after=1)
    fakes.whatsapp.fail_for(third, code=130429)
    await asyncio.sleep(third)
    fakes.telegram.fail_for(third, status=0)
    fakes.whatsapp.fail_for(third, code=None)
    await asyncio.sleep(third)


async def test_api_outage_then_recovery_delivers_every_reply_once_in_order(
    tmp_path: Path, fakes: load.Fakes, record_property: pytest.RecordProperty
) -> None:
    people = load.customers(8)
    sent: dict[str, list[str]] = defaultdict(list)  # chat -> keys in the order the customer wrote
    messages: list[PlatformMessage] = []
    async with running_farm(tmp_path, bots=bots(fakes), engines={BOT: EchoEngine()}, delivery=DELIVERY) as farm, \
            aiohttp.ClientSession() as session:
        failing = asyncio.create_task(outage(fakes, OUTAGE_SECONDS))
        started = time.monotonic()
        n = 0
        while not failing.done():  # customers keep writing during the whole outage
            n += 1
            for customer in people:
                message = make_message(BOT, customer, f"{customer.user}-{n}")
                await post_until_acked(session, farm.url, message, deadline=time.monotonic() + 10)
                sent[customer.user].append(message.key)
                messages.append(message)
            await asyncio.sleep(0.25)
        missing = await wait_for_replies(fakes.replies, [m.key for m in messages], timeout=30)
        recovered_after = time.monotonic() - started
        await farm.farm.settle(timeout=10)
        states = outbox_states(farm.db_path)

    assert not missing, f"{len(missing)} replies never delivered, e.g. {missing[:5]}"
    assert fakes.replies.duplicates() == 0, "a reply was delivered twice"
    assert states.get("failed", 0) == 0 and states.get("pending", 0) == 0, states
    telegram_texts = [str(c.params.get("text", "")) for c in fakes.telegram.requests if c.method == "sendMessage"]
    whatsapp_texts = [b.get("text", {}).get("body", "") for b in fakes.whatsapp.messages()]
    failed_attempts = len(telegram_texts) + len(whatsapp_texts) - sum(fakes.replies.arrivals.values())
    assert failed_attempts > 0, "the outage did not hit any send"
    by_chat: dict[str, list[str]] = defaultdict(list)
    for key in reply_order(telegram_texts) + reply_order(whatsapp_texts):
        by_chat[key.rsplit("-", 1)[0]].append(key)
    for chat, keys in sent.items():
        delivered = [k for k in by_chat[chat] if k in set(keys)]
        # Failed attempts of the same reply are recorded by the fakes too; collapse them.
        collapsed = [k for i, k in enumerate(delivered) if i == 0 or delivered[i - 1] != k]
        assert collapsed == keys, f"chat {chat}: replies out of order"
    record_property("outage_seconds", OUTAGE_SECONDS)
    record_property("messages", len(messages))
    record_property("all_delivered_after_s", round(recovered_after, 1))
    record_property("failed_attempts", failed_attempts)
    print(f"\noutage {OUTAGE_SECONDS:.0f} s: {len(messages)} messages, {failed_attempts} failed send attempts; "
          f"all replies delivered once, in order, {recovered_after:.1f} s after the outage began; outbox {states}")
