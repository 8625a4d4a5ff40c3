"""Who, when, what: the facts both desks show about a handoff, through the web desk API and
the Slack fake (the whole farm in-process, scripted engine, real SQLite).

- the intent and text shown are those of the message that asked for a person, with the
  earlier topic next to them (not the last intent the bot handled);
- anonymous web chat customers get a stable short alias; every transcript line has a time;
- priority grows with frustration; a handoff outside business hours is marked, on the
  web desk and on the Slack card ("queued until opening").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

from tests.fakes.slack_api import AGENT, AGENTS_CHANNEL, FakeSlackAPI
from tests.handoff.handoff_support import (
    PASSWORDS,
    Customer,
    conversation_of,
    desk_config,
    handoff_farm,
)

H = {"X-Desk-Request": "1"}
CLOSED_ALL_WEEK = {"business_hours": {"mon": "closed"}}


async def desk_get(url: str, path: str) -> Any:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(f"{url}/desk/api/login", json={"agent": "ben", "password": PASSWORDS["ben"]},
                             headers=H) as response:
            assert response.status == 200
        async with http.get(f"{url}/desk/api/{path}") as response:
            assert response.status == 200
            return await response.json()


async def test_queue_names_guests_shows_the_handoff_message_and_puts_the_angry_customer_first(
    tmp_path: Path,
) -> None:
    async with handoff_farm(tmp_path) as (farm, _), aiohttp.ClientSession() as chat:
        polite = await Customer.connect(chat, farm.url)
        await polite.say("Wo ist meine Bestellung?")
        await polite.say("Mitarbeiter bitte")
        angry = await Customer.connect(chat, farm.url)
        await angry.say("Hallo")
        await angry.say("DAS IST DOCH SCHEISSE, IHR BOT IST VÖLLIG NUTZLOS!!!")
        await farm.farm.settle()
        polite_id = (await conversation_of(farm, polite)).id
        angry_id = (await conversation_of(farm, angry)).id

        queue = {c["id"]: c for c in (await desk_get(farm.url, "queue"))["conversations"]}
        first, second = queue[polite_id], queue[angry_id]
        assert first["customer"].startswith("Gast ") and second["customer"].startswith("Gast ")
        assert first["customer"] != second["customer"]
        assert (first["intent"], first["trigger_text"]) == ("human_handoff", "Mitarbeiter bitte")
        assert second["trigger_text"] == "DAS IST DOCH SCHEISSE, IHR BOT IST VÖLLIG NUTZLOS!!!"
        assert second["priority"] > first["priority"] and second["priority_label"] in ("high", "urgent")
        assert first["open_now"] is True and first["waited_seconds"] >= 0

        view = await desk_get(farm.url, f"conversations/{polite_id}")
        assert view["conversation"]["customer"] == first["customer"]
        assert view["summary"]["topic"] == "order_status" and view["summary"]["intent"] == "human_handoff"
        assert view["summary"]["since"] and view["summary"]["open_now"] is True
        assert view["transcript"] and all(m["ts"] for m in view["transcript"])


async def test_out_of_hours_handoff_is_marked_on_the_web_desk_and_the_slack_card(tmp_path: Path) -> None:
    async with FakeSlackAPI() as slack:
        desk = {**desk_config(), "slack": {
            "enabled": True, "bot_token": slack.bot_token, "signing_secret": "s3cr3t", "channel": AGENTS_CHANNEL,
            "agents": [AGENT], "api_base": slack.url}}
        async with handoff_farm(tmp_path, handoff=CLOSED_ALL_WEEK, desk=desk) as (farm, _), \
                aiohttp.ClientSession() as chat:
            customer = await Customer.connect(chat, farm.url)
            await customer.say("Wo ist meine Bestellung?")
            await customer.say("Ich möchte mit einem Mitarbeiter sprechen")
            await farm.farm.settle()
            await slack.wait_for("chat.postMessage")
            card = slack.posted(AGENTS_CHANNEL)[0]
            fields = {f["text"].split("\n")[0]: f["text"].split("\n", 1)[1]
                      for b in card["blocks"] if b.get("block_id") == "handoff_facts" for f in b["fields"]}
            assert fields["*Intent*"] == "human_handoff"
            assert fields["*Earlier topic*"] == "order_status"
            blocks = {b.get("block_id"): json.dumps(b, ensure_ascii=False) for b in card["blocks"]}
            assert "Ich möchte mit einem Mitarbeiter sprechen" in blocks["handoff_trigger"]
            assert "queued until opening" in blocks["handoff_out_of_hours"]
            assert card["text"].endswith("queued until opening")

            [entry] = (await desk_get(farm.url, "queue"))["conversations"]
            assert entry["open_now"] is False and entry["waited_seconds"] == 0
            assert entry["intent"] == "human_handoff"


async def test_handoff_in_business_hours_has_no_out_of_hours_mark_on_the_card(tmp_path: Path) -> None:
    async with FakeSlackAPI() as slack:
        desk = {**desk_config(), "slack": {
            "enabled": True, "bot_token": slack.bot_token, "signing_secret": "s3cr3t", "channel": AGENTS_CHANNEL,
            "agents": [AGENT], "api_base": slack.url}}
        async with handoff_farm(tmp_path, desk=desk) as (farm, _), aiohttp.ClientSession() as chat:
            customer = await Customer.connect(chat, farm.url)
            await customer.say("Mitarbeiter bitte")
            await farm.farm.settle()
            await slack.wait_for("chat.postMessage")
            card = slack.posted(AGENTS_CHANNEL)[0]
            assert "handoff_out_of_hours" not in {b.get("block_id") for b in card["blocks"]}
            assert "queued until opening" not in card["text"]
