"""Agent typing in the web desk reaches the customer's web chat, from the agent in charge only."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp

from tests.handoff.handoff_support import PASSWORDS, Customer, conversation_of, handoff_farm
from tests.support.webchat import receive

H = {"X-Desk-Request": "1"}


def agent_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def login(http: aiohttp.ClientSession, url: str, agent: str) -> None:
    async with http.post(f"{url}/desk/api/login", json={"agent": agent, "password": PASSWORDS[agent]},
                         headers=H) as response:
        assert response.status == 200


async def test_only_the_assigned_agent_can_signal_typing_and_the_customer_sees_their_name(tmp_path: Path) -> None:
    async with handoff_farm(tmp_path) as (farm, _), agent_session() as anna, agent_session() as ben, \
            aiohttp.ClientSession() as chat:
        customer = await Customer.connect(chat, farm.url)
        await customer.say("Mitarbeiter bitte")
        await farm.farm.settle()
        conversation_id = (await conversation_of(farm, customer)).id
        await login(anna, farm.url, "anna")
        await login(ben, farm.url, "ben")
        typing_url = f"{farm.url}/desk/api/conversations/{conversation_id}/typing"

        async with anna.post(typing_url, json={}, headers=H) as response:
            assert response.status == 403  # still waiting: nobody is in charge yet
        async with anna.post(f"{farm.url}/desk/api/conversations/{conversation_id}/claim", json={},
                             headers=H) as response:
            assert response.status == 200
        async with ben.post(typing_url, json={}, headers=H) as response:
            assert response.status == 403  # ben serves the bot but is not the assigned agent
        async with ben.post(typing_url, json={}) as response:
            assert response.status == 403  # and without the CSRF header nobody gets through

        async with anna.post(typing_url, json={}, headers=H) as response:
            assert response.status == 200
            assert (await response.json())["sent"] is True
        frame = await receive(customer.ws, "typing")
        assert frame == {"type": "typing", "who": "agent", "name": "Anna Schmidt"}


async def events_until(stream: aiohttp.StreamReader, kind: str) -> list[dict[str, Any]]:
    """Server-sent items up to and including the first of type ``kind``."""
    items: list[dict[str, Any]] = []
    async with asyncio.timeout(5):
        while not items or items[-1]["type"] != kind:
            line = (await stream.readline()).decode()
            if line.startswith("data: "):
                items.append(json.loads(line[6:]))
    return items


async def test_customer_typing_reaches_the_agent_in_charge_only(tmp_path: Path) -> None:
    async with handoff_farm(tmp_path) as (farm, _), agent_session() as anna, agent_session() as ben, \
            aiohttp.ClientSession() as chat:
        ws = await chat.ws_connect(f"{farm.url}/chat/demo/ws")
        await ws.send_json({"type": "hello", "session": None, "watch": True})
        session = (await receive(ws, "welcome"))["session"]
        await ws.send_json({"type": "message", "id": "m1", "text": "Mitarbeiter bitte"})
        await receive(ws, "ack")
        await farm.farm.settle()
        customer = Customer(ws, session)
        conversation_id = (await conversation_of(farm, customer)).id
        await login(anna, farm.url, "anna")
        await login(ben, farm.url, "ben")
        async with anna.post(f"{farm.url}/desk/api/conversations/{conversation_id}/claim", json={},
                             headers=H) as response:
            assert response.status == 200
        state = await receive(ws, "state")
        while state["state"] != "agent":
            state = await receive(ws, "state")

        async with anna.get(f"{farm.url}/desk/api/stream") as anna_stream, \
                ben.get(f"{farm.url}/desk/api/stream") as ben_stream:
            await events_until(anna_stream.content, "hello")
            await events_until(ben_stream.content, "hello")
            await ws.send_json({"type": "typing"})
            typing = (await events_until(anna_stream.content, "typing"))[-1]
            assert typing["conversation"] == conversation_id
            await ws.send_json({"type": "message", "id": "m2", "text": "Hallo?"})
            seen_by_ben = await events_until(ben_stream.content, "message")
            assert "typing" not in [item["type"] for item in seen_by_ben]
