"""Slack's side of hostile input: a correctly signed request replayed after more than five
minutes is refused and leaves nothing behind; a retried event (same ``event_id``) is acted
on once, so the customer gets the agent's reply once."""

from __future__ import annotations

import json
import time

import pytest

from bench.load import TG_SECRET
from core.model import ConversationStatus, Identity
from tests.fakes.slack_api import (
    AGENT,
    AGENTS_CHANNEL,
    SIGNING_SECRET,
    event_callback,
    message_event,
    signed_headers,
)
from tests.fakes.telegram_api import text_update
from tests.fuzz.conftest import BOT, FuzzFarm
from tests.support.wait import eventually

pytestmark = [pytest.mark.timeout(60), pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")]

THREAD = "1763820100.000100"


def agent_reply(text: str, event_id: str) -> bytes:
    event = message_event(text, user=AGENT, channel=AGENTS_CHANNEL, thread_ts=THREAD)
    return json.dumps(event_callback(event, event_id=event_id)).encode()


async def test_signed_request_replayed_after_five_minutes_is_rejected(fuzz_farm: FuzzFarm) -> None:
    body = agent_reply("hello from the past", "Ev0REPLAY01")
    before = fuzz_farm.stored()
    status, _ = await fuzz_farm.request("POST", "/slack/events", body,
                                        signed_headers(body, SIGNING_SECRET, timestamp=int(time.time()) - 301))
    assert status == 401
    await fuzz_farm.quiesce()  # nothing runs in the background either
    assert fuzz_farm.stored() == before
    status, _ = await fuzz_farm.request("POST", "/slack/events", body,
                                        signed_headers(body, SIGNING_SECRET, timestamp=int(time.time()) - 240))
    assert status == 200  # the same request inside the window is fine


async def handed_off_conversation(fuzz_farm: FuzzFarm) -> str:
    """A Telegram customer whose conversation waits for an agent in Slack thread THREAD."""
    body = json.dumps(text_update(4242, "hello", update_id=501)).encode()
    status, _ = await fuzz_farm.request("POST", "/webhooks/demo/telegram", body,
                                        {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET})
    assert status == 200
    await fuzz_farm.farm.farm.settle()
    store = fuzz_farm.farm.store
    [contact] = await store.find_contacts(BOT, identity=Identity("telegram", "4242", "4242"))
    conversation = await store.conversation_for(BOT, contact.id)
    await store.save_conversation(conversation.evolve(status=ConversationStatus.WAITING, desk_thread=THREAD))
    return conversation.id


async def test_retried_slack_event_reaches_the_customer_once(fuzz_farm: FuzzFarm) -> None:
    await handed_off_conversation(fuzz_farm)
    body = agent_reply("Your invoice is on its way", "Ev0RETRY001")
    for retry in (None, "1", "2"):
        headers = signed_headers(body, SIGNING_SECRET)
        if retry:
            headers.update({"X-Slack-Retry-Num": retry, "X-Slack-Retry-Reason": "http_timeout"})
        started = time.monotonic()
        status, _ = await fuzz_farm.request("POST", "/slack/events", body, headers)
        assert status == 200
        assert time.monotonic() - started < 3, "Slack must be acknowledged within 3 s"

    def delivered() -> int:
        return sum("Your invoice is on its way" in str(c.params.get("text", ""))
                   for c in fuzz_farm.fakes.telegram.requests if c.method == "sendMessage")

    await eventually(delivered, timeout=10)
    await fuzz_farm.farm.farm.settle()  # every turn done and every reply sent: a second copy would be out now
    assert delivered() == 1
