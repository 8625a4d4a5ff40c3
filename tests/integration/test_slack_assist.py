"""The bot as the agent's assistant in Slack, end to end through the farm's routes and the fakes.

A WhatsApp customer asks for a person: the thread gets the assistant's summary; they ask for the
opening hours: their message in the thread carries the bot's answer as a suggestion (intent and
confidence) with a "Use 1" button. Slack cannot prefill the message box, so the button opens a
modal with the text to edit (views.open); the agent edits and sends it (view_submission) and only
then the customer receives it, signed with the agent's name.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.slack_api import (
    AGENT,
    AGENTS_CHANNEL,
    SIGNING_SECRET,
    FakeSlackAPI,
    signed_action_request,
    suggestion_click_payload,
    view_submission_payload,
)
from tests.fakes.whatsapp_api import FakeWhatsAppAPI
from tests.integration.test_handoff_slack import (
    WA_PHONE,
    WA_SECRET,
    WA_TOKEN,
    customer_says,
    slack_post,
    texts,
    wait_until,
)
from tests.support.farm import DEMO_PROJECT, running_farm
from tests.support.wait import eventually

HOURS = "Unser Support ist Montag bis Freitag von 8 bis 18 Uhr erreichbar."




@pytest.fixture
async def whatsapp() -> AsyncIterator[FakeWhatsAppAPI]:
    async with FakeWhatsAppAPI(WA_TOKEN, WA_PHONE) as api:
        yield api


def farm_config(slack: FakeSlackAPI, whatsapp: FakeWhatsAppAPI) -> tuple[dict[str, Any], dict[str, Any]]:
    bots = {"demo": {
        "project": str(DEMO_PROJECT), "languages": ["de", "en"], "default_language": "de",
        "handoff": {"business_hours": {d: "00:00-24:00" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}},
        "channels": {"whatsapp": {"access_token": WA_TOKEN, "app_secret": WA_SECRET, "verify_token": "v",
                                  "phone_number_id": WA_PHONE, "api_base": whatsapp.url}},
    }}
    desk = {"web": {"enabled": False}, "slack": {
        "enabled": True, "bot_token": slack.bot_token, "signing_secret": SIGNING_SECRET,
        "channel": AGENTS_CHANNEL, "agents": [AGENT], "api_base": slack.url,
    }}
    return bots, desk


def use_button(message: dict[str, Any], n: int) -> dict[str, Any]:
    for block in message.get("blocks") or []:
        accessory = block.get("accessory") or {}
        if accessory.get("action_id") == f"use_suggestion_{n}":
            return dict(accessory)
    raise AssertionError(f"no 'Use {n}' button in {json.dumps(message, ensure_ascii=False)[:500]}")


async def test_a_suggestion_in_the_thread_opens_editable_and_reaches_the_customer_only_when_sent(
    tmp_path: Path, slack: FakeSlackAPI, whatsapp: FakeWhatsAppAPI,
) -> None:
    bots, desk = farm_config(slack, whatsapp)
    async with running_farm(tmp_path, bots=bots, desk=desk) as farm:
        await customer_says(farm, "Ich möchte mit einem Mitarbeiter sprechen", "wamid.s1")
        await slack.wait_for("chat.postMessage")
        thread = slack.posted(AGENTS_CHANNEL)[0]["ts"]
        await wait_until(lambda: any("Assistant" in m["text"] for m in slack.posted(AGENTS_CHANNEL, thread_ts=thread)),
                         "the assistant's summary in the thread")
        summary = next(m for m in slack.posted(AGENTS_CHANNEL, thread_ts=thread) if "Assistant" in m["text"])
        assert "Wants: a person" in summary["text"] and "handed off: requested" in summary["text"]

        await customer_says(farm, "Wann habt ihr geöffnet?", "wamid.s2")
        await wait_until(lambda: any("geöffnet" in m["text"] for m in slack.posted(AGENTS_CHANNEL, thread_ts=thread)),
                         "the customer's message in the thread")
        line = next(m for m in slack.posted(AGENTS_CHANNEL, thread_ts=thread) if "geöffnet" in m["text"])
        shown = json.dumps(line["blocks"], ensure_ascii=False)
        assert "`opening_hours` · 100 %" in shown and HOURS in shown
        button = use_button(line, 1)
        assert button["text"]["text"] == "Use 1"
        before = len(whatsapp.messages())

        body, headers = signed_action_request(suggestion_click_payload(button, thread_ts=thread, user=AGENT),
                                              SIGNING_SECRET)
        await slack_post(farm, body, headers)
        await slack.wait_for("views.open")
        modal = slack.views[-1]
        field = next(b for b in modal["blocks"] if b["type"] == "input")["element"]
        assert field["initial_value"].startswith(HOURS)
        await farm.farm.settle()
        assert len(whatsapp.messages()) == before, "opening the suggestion sends nothing"

        edited = field["initial_value"] + " Viele Grüße!"
        body, headers = signed_action_request(
            view_submission_payload(modal, {"reply": {"text": edited}}, user=AGENT), SIGNING_SECRET)
        await slack_post(farm, body, headers)
        await wait_until(lambda: any("Viele Grüße!" in t for t in texts(whatsapp)), "the edited reply at the customer")
        sent = next(t for t in texts(whatsapp) if "Viele Grüße!" in t)
        assert sent == f"Anna: {edited}"


async def test_a_suggestion_turned_into_a_note_in_the_modal_never_reaches_the_customer(
    tmp_path: Path, slack: FakeSlackAPI, whatsapp: FakeWhatsAppAPI,
) -> None:
    bots, desk = farm_config(slack, whatsapp)
    async with running_farm(tmp_path, bots=bots, desk=desk) as farm:
        await customer_says(farm, "Ich möchte mit einem Mitarbeiter sprechen", "wamid.n1")
        await slack.wait_for("chat.postMessage")
        thread = slack.posted(AGENTS_CHANNEL)[0]["ts"]
        await customer_says(farm, "Was kosten eure Tarife?", "wamid.n2")
        await wait_until(lambda: any("Tarife" in m["text"] for m in slack.posted(AGENTS_CHANNEL, thread_ts=thread)),
                         "the customer's message in the thread")
        line = next(m for m in slack.posted(AGENTS_CHANNEL, thread_ts=thread) if "Tarife" in m["text"])
        body, headers = signed_action_request(
            suggestion_click_payload(use_button(line, 1), thread_ts=thread, user=AGENT), SIGNING_SECRET)
        await slack_post(farm, body, headers)
        await slack.wait_for("views.open")
        before = len(whatsapp.messages())
        body, headers = signed_action_request(
            view_submission_payload(slack.views[-1], {"reply": {"text": "!Preisliste ist veraltet"}}, user=AGENT),
            SIGNING_SECRET)
        await slack_post(farm, body, headers)
        conversation = next(iter(await farm.store.list_conversations("demo", None, limit=5)))

        async def noted() -> bool:
            return any(e.type == "note" and "Preisliste" in str(e.data.get("text"))
                       for e in await farm.store.transcript(conversation.id, limit=100))
        await eventually(noted, message="the note never reached the transcript")
        await farm.farm.settle()
        assert len(whatsapp.messages()) == before
