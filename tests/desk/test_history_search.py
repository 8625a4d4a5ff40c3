"""History search through the web desk API: masked data stays masked, agents see their own
bots only, bad filters are refused, conversations that never reached a person are not history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from tests.handoff.handoff_support import (
    PASSWORDS,
    Customer,
    conversation_of,
    handoff_farm,
    service,
)

H = {"X-Desk-Request": "1"}


async def history(url: str, agent: str, **params: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(f"{url}/desk/api/login", json={"agent": agent, "password": PASSWORDS[agent]},
                             headers=H) as response:
            assert response.status == 200
        async with http.get(f"{url}/desk/api/history", params=params) as response:
            return response.status, await response.json()


async def test_search_finds_closed_conversations_by_masked_text_only_for_their_agents(tmp_path: Path) -> None:
    async with handoff_farm(tmp_path) as (farm, _), aiohttp.ClientSession() as chat:
        handed = await Customer.connect(chat, farm.url)
        await handed.say("Mitarbeiter bitte, Karte 4111 1111 1111 1111")
        bot_only = await Customer.connect(chat, farm.url)
        await bot_only.say("Wo ist meine Bestellung?")
        await farm.farm.settle()
        conversation_id = (await conversation_of(farm, handed)).id
        await service(farm).claim(conversation_id, "web:anna", "Anna Schmidt")
        await service(farm).close(conversation_id, "web:anna", "Anna Schmidt")

        status, everything = await history(farm.url, "ben")
        assert status == 200 and [r["id"] for r in everything["results"]] == [conversation_id]
        [hit] = everything["results"]
        assert hit["status"] == "closed" and hit["agents"] == ["Anna Schmidt"] and hit["channels"] == ["webchat"]
        assert (await history(farm.url, "ben", text="4111 1111"))[1]["results"] == []
        assert [r["id"] for r in (await history(farm.url, "ben", text="•••• 1111"))[1]["results"]] == [conversation_id]
        assert (await history(farm.url, "ben", channel="telegram"))[1]["results"] == []
        assert (await history(farm.url, "ben", since="2999-01-01"))[1]["results"] == []
        assert (await history(farm.url, "carl"))[1]["results"] == []
        assert (await history(farm.url, "ben", rating="9"))[0] == 400
        assert (await history(farm.url, "ben", until="yesterday"))[0] == 400
