"""The web desk's HTTP side: login, sessions, CSRF, tenant isolation, live updates."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from core.model import ConversationStatus
from core.web.desk import LoginLimiter
from tests.handoff.handoff_support import PASSWORDS, Customer, conversation_of, handoff_farm

H = {"X-Desk-Request": "1"}


def agent_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def login(http: aiohttp.ClientSession, url: str, agent: str, password: str | None = None) -> int:
    body = {"agent": agent, "password": password if password is not None else PASSWORDS[agent]}
    async with http.post(f"{url}/desk/api/login", json=body, headers=H) as response:
        return response.status


async def waiting_conversation(farm: Any, http: aiohttp.ClientSession) -> str:
    customer = await Customer.connect(http, farm.url)
    await customer.say("Mitarbeiter bitte")
    await farm.farm.settle()
    return (await conversation_of(farm, customer)).id


async def test_wrong_password_and_unknown_agent_are_rejected(tmp_path: Path) -> None:
    async with handoff_farm(tmp_path) as (farm, _), agent_session() as http:
        assert await login(http, farm.url, "anna", "not-her-password") == 401
        assert await login(http, farm.url, "nobody", "whatever") == 401
        async with http.get(f"{farm.url}/desk/api/queue") as response:
            assert response.status == 401
        assert await login(http, farm.url, "anna") == 200
        async with http.get(f"{farm.url}/desk/api/me") as response:
            assert (await response.json())["agent"]["name"] == "Anna Schmidt"


async def test_repeated_failed_logins_are_rate_limited_even_with_the_right_password(tmp_path: Path) -> None:
    async with handoff_farm(tmp_path) as (farm, _), agent_session() as http:
        for _ in range(5):
            assert await login(http, farm.url, "anna", "guess") == 401
        async with http.post(f"{farm.url}/desk/api/login", json={"agent": "anna", "password": PASSWORDS["anna"]},
                             headers=H) as response:
            assert response.status == 429
            assert int(response.headers["Retry-After"]) > 0


def test_login_limiter_forgets_old_failures() -> None:
    now = [0.0]
    limiter = LoginLimiter(attempts=2, window=60, clock=lambda: now[0])
    limiter.failed("ip:x")
    limiter.failed("ip:x")
    assert limiter.retry_after("ip:x") == pytest.approx(60)
    now[0] = 61
    assert limiter.retry_after("ip:x") == 0


async def test_session_cookie_is_signed_httponly_and_same_site_strict(tmp_path: Path) -> None:
    async with handoff_farm(tmp_path) as (farm, _), agent_session() as http:
        async with http.post(f"{farm.url}/desk/api/login", json={"agent": "anna", "password": PASSWORDS["anna"]},
                             headers=H) as response:
            cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/desk" in cookie
        value = cookie.split(";")[0].split("=", 1)[1]
        sid, signature = value.split(".")
        forged = aiohttp.ClientSession(cookies={"sb_desk": f"{sid}.{'0' * len(signature)}"})
        async with forged, forged.get(f"{farm.url}/desk/api/queue") as response:
            assert response.status == 401
        async with http.post(f"{farm.url}/desk/api/logout", json={}, headers=H) as response:
            assert response.status == 200
        replay = aiohttp.ClientSession(cookies={"sb_desk": value})
        async with replay, replay.get(f"{farm.url}/desk/api/queue") as response:
            assert response.status == 401  # logged out means logged out, also for a copied cookie


async def test_state_changes_need_the_custom_header_and_same_origin(tmp_path: Path) -> None:
    async with handoff_farm(tmp_path) as (farm, _), agent_session() as http, aiohttp.ClientSession() as chat:
        conversation_id = await waiting_conversation(farm, chat)
        assert await login(http, farm.url, "anna") == 200
        url = f"{farm.url}/desk/api/conversations/{conversation_id}/claim"
        async with http.post(url, json={}) as response:
            assert response.status == 403
        async with http.post(url, json={}, headers={**H, "Origin": "https://evil.example"}) as response:
            assert response.status == 403
        async with http.post(f"{farm.url}/desk/api/login", json={"agent": "anna", "password": "x"}) as response:
            assert response.status == 403
        conversation = await farm.store.get_conversation(conversation_id)
        assert conversation is not None and conversation.status is ConversationStatus.WAITING
        async with http.post(url, json={}, headers=H) as response:
            assert response.status == 200


async def test_agent_of_another_bot_neither_sees_nor_acts(tmp_path: Path) -> None:
    async with handoff_farm(tmp_path) as (farm, _), agent_session() as http, aiohttp.ClientSession() as chat:
        conversation_id = await waiting_conversation(farm, chat)
        assert await login(http, farm.url, "carl") == 200
        async with http.get(f"{farm.url}/desk/api/queue") as response:
            assert (await response.json())["conversations"] == []
        async with http.get(f"{farm.url}/desk/api/conversations/{conversation_id}") as response:
            assert response.status == 404
        for action, body in (("claim", {}), ("reply", {"text": "hi"}), ("note", {"text": "x"}), ("close", {})):
            async with http.post(f"{farm.url}/desk/api/conversations/{conversation_id}/{action}", json=body,
                                 headers=H) as response:
                assert response.status == 404
        conversation = await farm.store.get_conversation(conversation_id)
        assert conversation is not None and conversation.status is ConversationStatus.WAITING


async def test_conversation_view_has_summary_and_masked_transcript_with_channels(tmp_path: Path) -> None:
    async with handoff_farm(tmp_path) as (farm, _), agent_session() as http, aiohttp.ClientSession() as chat:
        customer = await Customer.connect(chat, farm.url)
        await customer.say("Wo ist meine Bestellung?")
        await customer.say("Mitarbeiter bitte, Karte 4111 1111 1111 1111")
        await farm.farm.settle()
        conversation_id = (await conversation_of(farm, customer)).id
        assert await login(http, farm.url, "ben") == 200
        async with http.get(f"{farm.url}/desk/api/conversations/{conversation_id}") as response:
            view = await response.json()
        assert view["summary"]["reason"] == "requested" and view["summary"]["topic"] == "order_status"
        assert view["summary"]["intent"] == "human_handoff"
        assert view["summary"]["trigger_text"] == "Mitarbeiter bitte, Karte •••• •••• •••• 1111"
        customer_lines = [m for m in view["transcript"] if m["role"] == "customer"]
        assert [m["channel"] for m in customer_lines] == ["webchat", "webchat"]
        assert "4111 1111 1111 1111" not in json.dumps(view)
        assert "•••• •••• •••• 1111" in customer_lines[-1]["text"]
        async with http.post(f"{farm.url}/desk/api/conversations/{conversation_id}/reply", json={"text": ""},
                             headers=H) as response:
            assert response.status == 400


async def next_event(stream: aiohttp.StreamReader, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(5):
        while True:
            line = (await stream.readline()).decode()
            if line.startswith("data: "):
                item = json.loads(line[6:])
                if item["type"] == kind:
                    return dict(item)


async def test_logged_in_agents_get_live_updates_for_their_bots_only(tmp_path: Path) -> None:
    async with handoff_farm(tmp_path) as (farm, _), agent_session() as anna, agent_session() as carl, \
            aiohttp.ClientSession() as chat:
        assert await login(anna, farm.url, "anna") == 200
        assert await login(carl, farm.url, "carl") == 200
        async with anna.get(f"{farm.url}/desk/api/stream") as anna_stream, \
                carl.get(f"{farm.url}/desk/api/stream") as carl_stream:
            assert anna_stream.headers["Content-Type"].startswith("text/event-stream")
            await next_event(anna_stream.content, "hello")
            await next_event(carl_stream.content, "hello")
            conversation_id = await waiting_conversation(farm, chat)
            update = await next_event(anna_stream.content, "handoff")
            assert update["conversation"] == conversation_id and update["status"] == "waiting"
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.5):
                    await next_event(carl_stream.content, "handoff")


async def test_desk_page_is_served_with_a_strict_content_security_policy(tmp_path: Path) -> None:
    async with handoff_farm(tmp_path) as (farm, _), aiohttp.ClientSession() as http:
        async with http.get(f"{farm.url}/desk") as response:
            assert response.status == 200
            assert "script-src 'self'" in response.headers["Content-Security-Policy"]
            assert "Log in" in await response.text()
        for asset in ("desk.js", "desk.css"):
            async with http.get(f"{farm.url}/desk/{asset}") as response:
                assert response.status == 200


async def test_open_live_update_streams_do_not_hold_up_shutdown(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    async with agent_session() as http:
        async with handoff_farm(tmp_path) as (farm, _):
            assert await login(http, farm.url, "anna") == 200
            response = await http.get(f"{farm.url}/desk/api/stream")
            await next_event(response.content, "hello")
            started = loop.time()
        assert loop.time() - started < 5  # the runner's shutdown would otherwise wait up to 60 s
        response.close()


async def test_agent_actions_and_transcript_views_are_audited(tmp_path: Path) -> None:
    async with handoff_farm(tmp_path) as (farm, _), agent_session() as http, aiohttp.ClientSession() as chat:
        conversation_id = await waiting_conversation(farm, chat)
        assert await login(http, farm.url, "anna") == 200
        async with http.get(f"{farm.url}/desk/api/conversations/{conversation_id}") as response:
            assert response.status == 200
        async with http.post(f"{farm.url}/desk/api/conversations/{conversation_id}/claim", json={},
                             headers=H) as response:
            assert response.status == 200
        seen = {(e.actor, e.action, e.target) for e in await farm.store.audit_log(bot="demo")}
        assert ("web:anna", "view", conversation_id) in seen
        assert ("web:anna", "claim", conversation_id) in seen
