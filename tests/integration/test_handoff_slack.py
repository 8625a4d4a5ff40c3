"""Human handoff end to end: a WhatsApp customer mid-form asks for a person, an agent takes
over in the (fake) Slack channel's thread, answers, notes, closes; the customer rates.

The whole farm runs in-process (real SQLite, the demo bot project) behind its HTTP routes;
WhatsApp and Slack are the local fakes. Slack's requests are signed like Slack signs them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from core.model import ConversationStatus
from tests.fakes.slack_api import (
    AGENT,
    AGENTS_CHANNEL,
    SIGNING_SECRET,
    FakeSlackAPI,
    block_actions_payload,
    event_callback,
    message_event,
    signed_action_request,
    signed_event_request,
)
from tests.fakes.whatsapp_api import FakeWhatsAppAPI, post_webhook, text_webhook
from tests.support.farm import DEMO_PROJECT, RunningFarm, running_farm
from tests.support.wait import eventually

WA_TOKEN = "EAAG-handoff"
WA_SECRET = "wa-app-secret"
WA_PHONE = "106540352242922"
CUSTOMER = "491701234567"




@pytest.fixture
async def whatsapp() -> AsyncIterator[FakeWhatsAppAPI]:
    async with FakeWhatsAppAPI(WA_TOKEN, WA_PHONE) as api:
        yield api


async def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    await eventually(predicate, timeout=timeout, message=f"timed out waiting for: {what}")


def texts(whatsapp: FakeWhatsAppAPI) -> list[str]:
    """What the customer received, as text (interactive bodies included)."""
    found = []
    for message in whatsapp.messages():
        if message.get("type") == "text":
            found.append(message["text"]["body"])
        elif message.get("type") == "interactive":
            found.append(message["interactive"]["body"]["text"])
    return found


async def customer_says(farm: RunningFarm, text: str, wamid: str) -> None:
    url = f"{farm.url}/webhooks/demo/whatsapp"
    assert await post_webhook(url, text_webhook(CUSTOMER, text, name="Anna Schmidt", wamid=wamid),
                              app_secret=WA_SECRET) == 200
    await farm.farm.settle()


async def slack_post(farm: RunningFarm, body: bytes, headers: dict[str, str]) -> None:
    async with aiohttp.ClientSession() as session, \
            session.post(f"{farm.url}/slack/events", data=body, headers=headers) as resp:
        assert resp.status == 200


async def test_whatsapp_customer_reaches_a_slack_agent_and_rates_the_help(
    tmp_path: Path, slack: FakeSlackAPI, whatsapp: FakeWhatsAppAPI,
) -> None:
    bots = {"demo": {
        "project": str(DEMO_PROJECT), "languages": ["de", "en"], "default_language": "de",
        # agents are always in: the test must not depend on the time of day
        "handoff": {"business_hours": {d: "00:00-24:00" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}},
        "channels": {"whatsapp": {"access_token": WA_TOKEN, "app_secret": WA_SECRET, "verify_token": "v",
                                  "phone_number_id": WA_PHONE, "api_base": whatsapp.url}},
    }}
    desk = {"web": {"enabled": False}, "slack": {
        "enabled": True, "bot_token": slack.bot_token, "signing_secret": SIGNING_SECRET,
        "channel": AGENTS_CHANNEL, "agents": [AGENT], "api_base": slack.url,
    }}
    async with running_farm(tmp_path, bots=bots, desk=desk) as farm:
        # 1. mid-form: the bot asks for the order number
        await customer_says(farm, "Wo ist meine Bestellung?", "wamid.h1")
        await wait_until(lambda: len(whatsapp.messages()) >= 1, "the form's question")
        asked = len(whatsapp.messages())

        # 2. ... and the customer asks for a person instead
        await customer_says(farm, "Ich möchte lieber mit einem Mitarbeiter sprechen", "wamid.h2")
        cards = await slack.wait_for("chat.postMessage")
        card = slack.posted(AGENTS_CHANNEL)[0]
        thread = card["ts"]
        card_text = json.dumps(card["blocks"], ensure_ascii=False)
        for expected in ("Anna Schmidt", "WhatsApp", "Wo ist meine Bestellung?", "Mitarbeiter", "claim"):
            assert expected in card_text, expected
        assert cards[0].token == slack.bot_token
        await wait_until(lambda: len(whatsapp.messages()) > asked, "the honest 'a person will answer' message")

        # while waiting, what the customer writes shows up in the thread
        await customer_says(farm, "Meine Bestellnummer ist HW-123456", "wamid.h2b")
        await wait_until(lambda: any("HW-" in m["text"] or "Bestellnummer" in m["text"]
                                     for m in slack.posted(AGENTS_CHANNEL, thread_ts=thread)), "the relayed message")
        relayed = slack.posted(AGENTS_CHANNEL, thread_ts=thread)[-1]["text"]
        assert relayed.startswith("*Anna Schmidt* (WhatsApp): ")

        # 3. an agent claims and answers in the thread
        body, headers = signed_action_request(
            block_actions_payload("claim", _conversation_id(card), user=AGENT, message_ts=thread), SIGNING_SECRET)
        await slack_post(farm, body, headers)
        await slack.wait_for("chat.update")
        await farm.farm.settle()
        before_reply = len(whatsapp.messages())
        reply = "Hallo Frau Schmidt, ich schaue mir Ihre Bestellung an."
        body, headers = signed_event_request(event_callback(message_event(reply, user=AGENT, thread_ts=thread)),
                                             SIGNING_SECRET)
        await slack_post(farm, body, headers)
        await wait_until(lambda: any(reply in t for t in texts(whatsapp)), "the agent's reply at the customer")
        await farm.farm.settle()
        received = texts(whatsapp)
        named = [t for t in received[asked:] if "Anna aus unserem Team" in t]
        assert named, "the customer is told which person answers"
        assert received.index(named[0]) < next(i for i, t in enumerate(received) if reply in t)
        assert len(whatsapp.messages()) > before_reply
        assert f"Anna: {reply}" in received, "the agent's reply itself carries the agent's name"

        # 4. an internal note stays internal
        note = "!Kunde wartet seit Montag, bitte Express prüfen"
        body, headers = signed_event_request(event_callback(message_event(note, user=AGENT, thread_ts=thread)),
                                             SIGNING_SECRET)
        count = len(whatsapp.messages())
        await slack_post(farm, body, headers)
        conversation_id = _conversation_id(card)
        async def noted() -> bool:
            return any(e.type == "note" for e in await farm.store.transcript(conversation_id, limit=200))

        await eventually(noted, message="the note never reached the transcript")
        note_event = next(e for e in await farm.store.transcript(conversation_id, limit=200) if e.type == "note")
        assert note_event.data["text"] == note[1:]
        assert note_event.data["agent_name"] == "Anna"
        await farm.farm.settle()  # had the note become a reply, it would have been sent by now
        assert len(whatsapp.messages()) == count
        assert not any("Express" in t for t in texts(whatsapp))

        # 5. close -> the customer is asked for a rating and answers it
        body, headers = signed_action_request(
            block_actions_payload("close", conversation_id, user=AGENT, message_ts=thread), SIGNING_SECRET)
        await slack_post(farm, body, headers)
        await wait_until(lambda: any("zufrieden" in t for t in texts(whatsapp)), "the CSAT question")
        await farm.farm.settle()
        await customer_says(farm, "5", "wamid.h3")
        await wait_until(lambda: any("Bewertung" in t for t in texts(whatsapp)), "thanks for the rating")
        await wait_until(lambda: any("5/5" in m.get("text", "") for m in slack.posted(AGENTS_CHANNEL, thread_ts=thread)),
                         "the rating in the agents' thread")
        final = await farm.store.get_conversation(conversation_id)
        assert final is not None and final.status is ConversationStatus.CLOSED
        assert "Closed" in json.dumps(slack.message(AGENTS_CHANNEL, thread)["blocks"])


def _conversation_id(card: dict[str, Any]) -> str:
    for block in card["blocks"]:
        if block.get("type") == "actions":
            return str(block["elements"][0]["value"])
    raise AssertionError("card without buttons")
