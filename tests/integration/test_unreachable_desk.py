"""No false promises when desks are configured but none can answer now (issue 15).

Through the WhatsApp webhook with the platform fakes: a farm whose only desk is Slack tells a
customer "a person will answer" while Slack works; once Slack refuses the card (the app was
removed from the agents' channel) the next customer asking for a person hears honestly that
nobody can answer in this chat right now, with the configured alternatives. With
``handoff.require_agent_online`` a web-desk-only farm does the same while no agent of the bot
has the desk open, and the ordinary notice comes back as soon as one does (an agent counts as
online while their desk's live stream is open, refreshed with each keepalive).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from core.model import ConversationStatus
from tests.fakes.slack_api import AGENT, AGENTS_CHANNEL, SIGNING_SECRET, FakeSlackAPI
from tests.fakes.whatsapp_api import FakeWhatsAppAPI, post_webhook, text_webhook
from tests.handoff.handoff_support import PASSWORDS, desk_config
from tests.integration.test_handoff_slack import (
    WA_PHONE,
    WA_SECRET,
    WA_TOKEN,
    wait_until,
)
from tests.support.farm import DEMO_PROJECT, RunningFarm, running_farm

ALWAYS = {d: "00:00-24:00" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
EMAIL = "hilfe@nordhost.example"




@pytest.fixture
async def whatsapp() -> AsyncIterator[FakeWhatsAppAPI]:
    async with FakeWhatsAppAPI(WA_TOKEN, WA_PHONE) as api:
        yield api


def demo_bot(whatsapp: FakeWhatsAppAPI, **handoff: Any) -> dict[str, Any]:
    return {"demo": {
        "project": str(DEMO_PROJECT), "languages": ["de", "en"], "default_language": "de",
        "handoff": {"business_hours": ALWAYS, "contact_email": EMAIL, **handoff},
        "channels": {"whatsapp": {"access_token": WA_TOKEN, "app_secret": WA_SECRET, "verify_token": "v",
                                  "phone_number_id": WA_PHONE, "api_base": whatsapp.url}},
    }}


def sent_to(whatsapp: FakeWhatsAppAPI, wa_id: str) -> list[dict[str, Any]]:
    return [m for m in whatsapp.messages() if m.get("to") == wa_id]


async def asks_for_a_person(farm: RunningFarm, whatsapp: FakeWhatsAppAPI, wa_id: str, wamid: str) -> str:
    """The customer's request through the webhook, and the bot's answer to it."""
    before = len(sent_to(whatsapp, wa_id))
    payload = text_webhook(wa_id, "Ich möchte mit einem Mitarbeiter sprechen", wamid=wamid, phone_number_id=WA_PHONE)
    assert await post_webhook(f"{farm.url}/webhooks/demo/whatsapp", payload, app_secret=WA_SECRET) == 200
    await farm.farm.settle()
    await wait_until(lambda: len(sent_to(whatsapp, wa_id)) > before, "the answer to the request")
    message = sent_to(whatsapp, wa_id)[-1]
    body = message["text"]["body"] if message.get("type") == "text" else message["interactive"]["body"]["text"]
    return str(body)


async def why(farm: RunningFarm, wa_id: str) -> list[Any]:
    conversation = None
    for candidate in await farm.store.list_conversations("demo", None, limit=50):
        contact = await farm.store.get_contact(candidate.contact_id)
        if contact is not None and any(i.channel_user_id == wa_id for i in contact.identities):
            conversation = candidate
    assert conversation is not None
    assert conversation.status is ConversationStatus.WAITING  # recorded: a desk that comes back sees it
    return [e.data.get("why") for e in await farm.store.transcript(conversation.id, limit=50)
            if e.type == "handoff" and e.data.get("action") == "no_desk"]


async def test_a_failing_slack_desk_gets_the_next_customer_an_honest_answer(
    tmp_path: Path, slack: FakeSlackAPI, whatsapp: FakeWhatsAppAPI,
) -> None:
    desk = {"web": {"enabled": False}, "slack": {
        "enabled": True, "bot_token": slack.bot_token, "signing_secret": SIGNING_SECRET,
        "channel": AGENTS_CHANNEL, "agents": [AGENT], "api_base": slack.url,
    }}
    async with running_farm(tmp_path, bots=demo_bot(whatsapp), desk=desk) as farm:
        slack.fail_next("chat.postMessage", "not_in_channel")  # someone removed the app from the channel
        first = await asks_for_a_person(farm, whatsapp, "491700000001", "wamid.u1")
        assert "Person aus unserem Team" in first, first  # Slack worked when this was promised ...
        await slack.wait_for("chat.postMessage")  # ... and the card is refused

        second = await asks_for_a_person(farm, whatsapp, "491700000002", "wamid.u2")
        assert "niemand aus unserem Team" in second and EMAIL in second, second
        assert "Minuten" not in second
        assert await why(farm, "491700000002") == ["unreachable"]
        assert slack.count("chat.postMessage") == 1  # no card for a promise nobody made


async def test_with_require_agent_online_the_web_desk_counts_only_while_an_agent_has_it_open(
    tmp_path: Path, whatsapp: FakeWhatsAppAPI,
) -> None:
    async with running_farm(tmp_path, bots=demo_bot(whatsapp, require_agent_online=True),
                            desk=desk_config()) as farm:
        nobody = await asks_for_a_person(farm, whatsapp, "491700000003", "wamid.w1")
        assert "niemand aus unserem Team" in nobody and EMAIL in nobody, nobody
        assert await why(farm, "491700000003") == ["unreachable"]

        headers = {"X-Desk-Request": "1", "Content-Type": "application/json"}
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:  # cookies from 127.0.0.1
            async with http.post(f"{farm.url}/desk/api/login", json={"agent": "anna", "password": PASSWORDS["anna"]},
                                 headers=headers) as response:
                assert response.status == 200
            async with http.get(f"{farm.url}/desk/api/stream") as stream:
                assert b"hello" in await stream.content.readuntil(b"\n\n")  # Anna has the desk open
                served = await asks_for_a_person(farm, whatsapp, "491700000004", "wamid.w2")
                assert "Person aus unserem Team" in served and "niemand" not in served, served
