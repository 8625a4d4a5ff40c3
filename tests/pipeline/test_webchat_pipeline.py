"""The whole path on the embedded default: web chat socket → ingest → turn → SQLite → reply."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from core.model import Event, Identity
from tests.support.engines import EchoEngine
from tests.support.farm import running_farm
from tests.support.webchat import receive

BOTS = {"demo": {"project": str(Path(__file__).resolve().parents[2] / "config" / "demo"),
                 "channels": {"webchat": {}}}}


async def hello(session: aiohttp.ClientSession, url: str, sid: str | None = None) -> tuple[Any, str, dict[str, Any]]:
    ws = await session.ws_connect(f"{url}/chat/demo/ws")
    await ws.send_json({"type": "hello", "session": sid})
    welcome = await receive(ws, "welcome")
    history = await receive(ws, "history")
    return ws, welcome["session"], history


@pytest.fixture
def engine() -> EchoEngine:
    return EchoEngine()


async def test_message_gets_a_reply_and_is_in_the_transcript(tmp_path: Path, engine: EchoEngine) -> None:
    async with running_farm(tmp_path, bots=BOTS, engines={"demo": engine}) as farm, aiohttp.ClientSession() as http:
        ws, _, history = await hello(http, farm.url)
        assert history["messages"] == []
        await ws.send_json({"type": "message", "id": "m1", "text": "Hallo"})
        assert (await receive(ws, "ack"))["id"] == "m1"
        reply = await receive(ws, "message")
        assert reply["role"] == "bot"
        assert reply["text"].endswith("echo: Hallo")
        assert "automated assistant" in reply["text"]  # the first bot message says it is a bot
        await ws.close()


async def test_same_platform_message_id_twice_makes_one_transcript_entry(tmp_path: Path, engine: EchoEngine) -> None:
    async with running_farm(tmp_path, bots=BOTS, engines={"demo": engine}) as farm, aiohttp.ClientSession() as http:
        ws, _, _ = await hello(http, farm.url)
        for _ in range(2):
            await ws.send_json({"type": "message", "id": "same-id", "text": "only once"})
            await receive(ws, "ack")
        await farm.farm.settle()
        await ws.send_json({"type": "history"})
        history = await receive(ws, "history")
        texts = [m["text"].rsplit("\n", 1)[-1] for m in history["messages"]]
        assert texts == ["only once", "echo: only once"]
        assert engine.seen == ["only once"]
        await ws.close()


async def test_restart_keeps_conversation_and_transcript(tmp_path: Path) -> None:
    async with running_farm(tmp_path, bots=BOTS, engines={"demo": EchoEngine()}) as farm, \
            aiohttp.ClientSession() as http:
        ws, sid, _ = await hello(http, farm.url)
        await ws.send_json({"type": "message", "id": "a", "text": "before restart"})
        await receive(ws, "message")
        await ws.close()
    async with running_farm(tmp_path, bots=BOTS, engines={"demo": EchoEngine()}) as farm, \
            aiohttp.ClientSession() as http:
        ws, same_sid, history = await hello(http, farm.url, sid)
        assert same_sid == sid
        assert [m["text"].rsplit("\n", 1)[-1] for m in history["messages"]] == ["before restart",
                                                                               "echo: before restart"]
        await ws.close()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "bad_json"),
        ("[1, 2]", "bad_frame"),
        (json.dumps({"type": "message", "id": "x", "text": "a" * 5000}), "bad_message"),
        (json.dumps({"type": "message", "id": "x", "text": 42}), "bad_message"),
        (json.dumps({"type": "message", "id": "../../etc", "text": "hi"}), "bad_message"),
        (json.dumps({"type": "teleport"}), "unknown_type"),
        ("x" * 20_000, "too_large"),
    ],
)
async def test_malformed_frames_get_an_error_frame_and_the_server_keeps_serving(
    tmp_path: Path, frame: str, code: str
) -> None:
    async with running_farm(tmp_path, bots=BOTS, engines={"demo": EchoEngine()}) as farm, \
            aiohttp.ClientSession() as http:
        ws, _, _ = await hello(http, farm.url)
        await ws.send_str(frame)
        error = await receive(ws, "error")
        assert error["code"] == code and error["message"]
        await ws.send_json({"type": "message", "id": "after", "text": "still there?"})
        assert (await receive(ws, "message"))["text"].endswith("echo: still there?")
        await ws.close()
        async with http.get(f"{farm.url}/healthz") as response:
            assert response.status == 200


def inbound_count(metrics_text: str) -> float:
    for line in metrics_text.splitlines():
        if line.startswith('switchboard_inbound_messages_total{bot="demo",channel="webchat"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_health_ready_and_metrics(tmp_path: Path) -> None:
    async with running_farm(tmp_path, bots=BOTS, engines={"demo": EchoEngine()}) as farm, \
            aiohttp.ClientSession() as http:
        async with http.get(f"{farm.url}/metrics") as response:
            before = inbound_count(await response.text())
        ws, _, _ = await hello(http, farm.url)
        await ws.send_json({"type": "message", "id": "m", "text": "count me"})
        await receive(ws, "message")
        await ws.close()
        async with http.get(f"{farm.url}/readyz") as response:
            assert response.status == 200
        async with http.get(f"{farm.url}/metrics") as response:
            body = await response.text()
        assert inbound_count(body) == before + 1


async def test_replies_queued_by_another_process_reach_an_open_page_with_sync(tmp_path: Path) -> None:
    bots = {"demo": {**BOTS["demo"], "channels": {"webchat": {"sync_interval": 0.05}}}}
    async with running_farm(tmp_path, bots=bots, engines={"demo": EchoEngine()}) as farm, \
            aiohttp.ClientSession() as http:
        ws, sid, _ = await hello(http, farm.url)
        await ws.send_json({"type": "message", "id": "a", "text": "hi"})
        await receive(ws, "message")
        # Another farm process wrote this reply to the shared store; this process never sent it.
        contact = (await farm.store.find_contacts("demo", identity=Identity("webchat", sid, sid)))[0]
        conversation = await farm.store.conversation_for("demo", contact.id)
        await farm.store.append_events(conversation.id, [Event("bot", {
            "text": "from the other process", "metadata": {"outbound_id": "out_other", "author": "bot"}})])
        async with asyncio.timeout(5):
            while (frame := await receive(ws, "message"))["id"] != "out_other":
                pass  # the page ignores ids it already shows
        assert frame["text"] == "from the other process" and frame["role"] == "bot"
        await ws.close()


class SlowEcho(EchoEngine):
    async def handle(self, turn: Any) -> Any:
        await asyncio.sleep(0.8)
        return await super().handle(turn)


async def frames_until_reply(ws: aiohttp.ClientWebSocketResponse) -> list[str]:
    kinds: list[str] = []
    async with asyncio.timeout(5):
        while not kinds or kinds[-1] != "message":
            kinds.append((await ws.receive_json())["type"])
    return kinds


async def test_typing_indicator_shows_only_when_the_answer_takes_a_while(tmp_path: Path) -> None:
    for engine, expect_typing in ((EchoEngine(), False), (SlowEcho(), True)):
        (tmp_path / type(engine).__name__).mkdir()
        async with running_farm(tmp_path / type(engine).__name__, bots=BOTS, engines={"demo": engine}) as farm, \
                aiohttp.ClientSession() as http:
            ws, _, _ = await hello(http, farm.url)
            await ws.send_json({"type": "message", "id": "t", "text": "hello"})
            assert ("typing" in await frames_until_reply(ws)) is expect_typing
            await ws.close()
