"""Tone that adapts: an annoyed customer gets the demo's calmer wording, before any handoff."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest_asyncio

from tests.support.farm import RunningFarm, running_farm
from tests.support.webchat import receive

CALM_ASK = "Wie lautet Ihre Bestellnummer?"
UPSET_ASK = "Das tut mir leid – ich sehe sofort für Sie nach."


@pytest_asyncio.fixture
async def farm(tmp_path: Path) -> AsyncIterator[RunningFarm]:
    async with running_farm(tmp_path) as running:  # the demo bot, web chat only
        yield running


async def bot_reply(ws: aiohttp.ClientWebSocketResponse, message_id: str, text: str) -> str:
    await ws.send_json({"type": "message", "id": message_id, "text": text})
    message = await receive(ws, "message", timeout=15)
    while message["role"] == "user":
        message = await receive(ws, "message", timeout=15)
    return str(message["text"])


async def chat(farm: RunningFarm, text: str) -> str:
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{farm.url}/chat/demo/ws")
        await ws.send_json({"type": "hello", "session": None, "languages": ["de-DE"]})
        await receive(ws, "welcome")
        reply = await bot_reply(ws, "m1", text)
        await ws.close()
        return reply


async def test_an_annoyed_customer_gets_the_calmer_answer_and_stays_with_the_bot(farm: RunningFarm) -> None:
    reply = await chat(farm, "Wo ist meine Bestellung? Das ist ärgerlich.")
    assert UPSET_ASK in reply and CALM_ASK not in reply
    conversations = await farm.farm.store.list_conversations("demo")  # type: ignore[union-attr]
    assert [c.status.value for c in conversations] == ["bot"]  # no handoff: the tone changed, not the owner
    assert conversations[0].slots["mood"] == "upset"


async def test_a_calm_customer_gets_the_usual_answer(farm: RunningFarm) -> None:
    reply = await chat(farm, "Wo ist meine Bestellung?")
    assert CALM_ASK in reply and UPSET_ASK not in reply
