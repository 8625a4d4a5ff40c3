"""The whole path on the embedded default: web chat socket → ingest → turn → SQLite → reply."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels.webchat import WebChatAdapter
from channels.webchat_files import SUPPORTED_TYPES, sniff
from channels.webchat_labels import CATALOGUE, KEYS, page_language
from channels.webchat_state import chat_state, with_position
from core.errors import ConfigError
from core.model import Event, Identity
from tests.support.engines import EchoEngine
from tests.support.farm import running_farm
from tests.support.images import png
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


class GatedEcho(EchoEngine):
    """Echo once ``gate`` is set: a turn that takes as long as the test lets it."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def handle(self, turn: Any) -> Any:
        await self.gate.wait()
        return await super().handle(turn)


async def frames_until(ws: aiohttp.ClientWebSocketResponse, kind: str) -> list[str]:
    kinds: list[str] = []
    async with asyncio.timeout(5):
        while not kinds or kinds[-1] != kind:
            kinds.append((await ws.receive_json())["type"])
    return kinds


async def test_typing_indicator_shows_only_when_the_answer_takes_a_while(tmp_path: Path) -> None:
    (tmp_path / "fast").mkdir()
    async with running_farm(tmp_path / "fast", bots=BOTS, engines={"demo": EchoEngine()}) as farm, \
            aiohttp.ClientSession() as http:
        ws, _, _ = await hello(http, farm.url)
        await ws.send_json({"type": "message", "id": "t", "text": "hello"})
        assert "typing" not in await frames_until(ws, "message")
        await ws.close()
    (tmp_path / "slow").mkdir()
    slow = GatedEcho()
    async with running_farm(tmp_path / "slow", bots=BOTS, engines={"demo": slow}) as farm, \
            aiohttp.ClientSession() as http:
        ws, _, _ = await hello(http, farm.url)
        await ws.send_json({"type": "message", "id": "t", "text": "hello"})
        assert "message" not in await frames_until(ws, "typing")  # shown while the turn still runs
        slow.gate.set()
        assert "message" in await frames_until(ws, "message")
        await ws.close()


# -- product grade: uploads, language, labels -----------------------------------------------------

class AttachmentEngine(EchoEngine):
    """Echo, and keep what the turn saw of each message's attachments."""

    def __init__(self) -> None:
        super().__init__()
        self.attachments: list[tuple[Any, ...]] = []

    async def handle(self, turn: Any) -> Any:
        self.attachments.append(turn.message.attachments)
        return await super().handle(turn)


async def upload(http: aiohttp.ClientSession, url: str, session: str | None, body: bytes,
                 name: str = "photo.png") -> tuple[int, dict[str, Any]]:
    headers = {"X-File-Name": name, "Content-Type": "image/png"}
    if session:
        headers["X-Chat-Session"] = session
    async with http.post(f"{url}/chat/demo/upload", data=body, headers=headers) as response:
        return response.status, await response.json()


async def test_uploads_are_typed_by_content_limited_in_size_and_private_to_their_session(tmp_path: Path) -> None:
    bots = {"demo": {**BOTS["demo"], "channels": {"webchat": {"max_upload_bytes": 2000, "uploads_per_hour": 5,
                                                              "allowed_types": ["image/png", "image/jpeg"]}}}}
    engine = AttachmentEngine()
    async with running_farm(tmp_path, bots=bots, engines={"demo": engine}) as farm, aiohttp.ClientSession() as http:
        ws, sid, _ = await hello(http, farm.url)
        status, stored = await upload(http, farm.url, sid, png(), name="../../etc/invoice.pdf")
        assert status == 201
        assert (stored["mime_type"], stored["kind"], stored["name"]) == ("image/png", "image", "invoice.pdf")
        named = (await upload(http, farm.url, sid, png(), name="Z%C3%A4hler%20%D0%BC%D0%B0%D1%80%D1%82.png"))[1]
        assert named["name"] == "Zähler март.png"  # the page sends the name percent-encoded
        async with http.get(f"{farm.url}/chat/demo/files/{named['id']}", headers={"X-Chat-Session": sid}) as response:
            assert response.status == 200
            assert "filename*=UTF-8''Z%C3%A4hler%20%D0%BC" in response.headers["Content-Disposition"]
        assert (await upload(http, farm.url, sid, b"<html>not a picture</html>"))[0] == 415  # named .png
        assert (await upload(http, farm.url, sid, b"%PDF-1.7\n" + b"x" * 100, name="a.pdf"))[0] == 415  # not allowed
        assert (await upload(http, farm.url, sid, png(40, 40, (1, 2, 3)) + b"\0" * 2000))[0] == 413
        assert (await upload(http, farm.url, None, png()))[0] == 401
        assert (await upload(http, farm.url, sid, png()))[0] == 429  # the sixth upload within the hour

        own = f"{farm.url}/chat/demo/files/{stored['id']}"
        async with http.get(own, headers={"X-Chat-Session": sid}) as response:
            assert response.status == 200 and await response.read() == png()
        async with http.get(own, headers={"X-Chat-Session": "another-session-0123456789"}) as response:
            assert response.status == 404
        async with http.get(f"{farm.url}/desk/api/webchat/demo/files/{stored['id']}") as response:
            assert response.status == 401  # no desk login

        # With a caption the photo is an ordinary turn (a bare photo gets the media answer, core/handoff/media.py).
        await ws.send_json({"type": "message", "id": "p1", "text": "mein Zähler", "attachments": [stored["id"]]})
        assert (await receive(ws, "ack"))["id"] == "p1"
        history_after = await receive(ws, "message")
        assert history_after["role"] == "bot"
        (attachment,) = engine.attachments[-1]
        assert (attachment.kind, attachment.mime_type, attachment.file_id) == ("image", "image/png", stored["id"])
        assert attachment.url == f"/desk/api/webchat/demo/files/{stored['id']}"

        other, _, _ = await hello(http, farm.url)
        await other.send_json({"type": "message", "id": "p2", "text": "mine?", "attachments": [stored["id"]]})
        assert (await receive(other, "error"))["code"] == "bad_message"  # someone else's upload
        await ws.close()
        await other.close()


async def test_page_language_follows_the_browser_among_the_bots_languages_and_labels_can_be_overridden(
    tmp_path: Path,
) -> None:
    bots = {"demo": {**BOTS["demo"], "languages": ["de", "en"], "default_language": "de",
                     "channels": {"webchat": {"labels": {"de": {"send": "Los"}}}}}}
    async with running_farm(tmp_path, bots=bots, engines={"demo": EchoEngine()}) as farm, \
            aiohttp.ClientSession() as http:
        async with http.get(f"{farm.url}/chat/demo") as response:
            page = await response.text()
            assert response.headers["Content-Security-Policy"] == "frame-ancestors 'self'"
        assert '<html lang="de">' in page and ">Los</button>" in page and 'placeholder="Nachricht schreiben…"' in page
        for browser, expected in ((["en-US", "de"], "en"), (["fr-FR"], "de"), ([], "de")):
            ws = await http.ws_connect(f"{farm.url}/chat/demo/ws")
            await ws.send_json({"type": "hello", "session": None, "languages": browser})
            assert (await receive(ws, "welcome"))["language"] == expected
            await ws.close()
        async with http.get(f"{farm.url}/chat/demo/widget.js") as response:
            script = await response.text()
            assert response.content_type == "text/javascript"
        assert 'var BOT = "demo";' in script and "Chat mit demo" in script


def test_unknown_label_or_upload_type_in_config_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown label"):
        WebChatAdapter.from_config("demo", {"labels": {"de": {"sned": "Los"}}}, context=None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unsupported type"):
        WebChatAdapter.from_config("demo", {"allowed_types": ["image/svg+xml"]}, context=None)  # type: ignore[arg-type]


def test_page_language_prefers_the_conversation_then_the_browser_then_the_default() -> None:
    assert page_language(default="de", offered=["de", "en"], conversation="en", browser=["de-DE"]) == "en"
    assert page_language(default="de", offered=["de", "en"], conversation=None, browser=["en-GB"]) == "en"
    assert page_language(default="de", offered=["de"], conversation=None, browser=["en-GB"]) == "de"
    assert page_language(default="en", offered=["en"], conversation="fr", browser=[]) == "en"


@given(st.binary(max_size=64))
def test_sniff_names_only_types_whose_magic_bytes_are_there(data: bytes) -> None:
    found = sniff(data)
    assert found is None or found in SUPPORTED_TYPES
    assert sniff(b"\x89PNG\r\n\x1a\n" + data) == "image/png"
    assert sniff(b"RIFF" + data[:4].ljust(4, b"\0") + b"WEBP" + data) == "image/webp"
    if not data.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"%PDF-", b"RIFF")):
        assert found is None


def test_chat_state_reads_waiting_agent_and_receipts_from_the_transcript() -> None:
    def user(n: int) -> Event:
        return Event("user", {"text": f"t{n}", "message_id": f"webchat:sess:m{n}"})

    def said(author: str) -> Event:
        return Event("bot", {"text": "x", "metadata": {"author": author, "author_name": "Anna"}})

    events = [user(1), said("bot"), Event("status", {"status": "waiting"}), user(2), said("system"),
              Event("slot", {"name": "language", "value": "en"})]
    state = chat_state(events)
    assert (state.state, state.language) == ("waiting", "en")
    assert dict(state.receipts) == {"m1": "read", "m2": "delivered"}  # a system notice is no answer
    state = chat_state([*events, Event("status", {"status": "agent", "agent_name": "Anna"}), said("agent")])
    assert (state.state, state.agent, dict(state.receipts)["m2"]) == ("agent", "Anna", "read")
    assert chat_state([*events, Event("status", {"status": "closed"})]).state == "bot"


async def test_a_watching_page_gets_state_and_read_receipts_and_a_plain_client_gets_neither(tmp_path: Path) -> None:
    async with running_farm(tmp_path, bots=BOTS, engines={"demo": EchoEngine()}) as farm, \
            aiohttp.ClientSession() as http:
        page = await http.ws_connect(f"{farm.url}/chat/demo/ws")
        await page.send_json({"type": "hello", "session": None, "watch": True, "languages": ["de-DE"]})
        await receive(page, "welcome")
        assert (await receive(page, "state"))["state"] == "bot"
        await page.send_json({"type": "message", "id": "m1", "text": "Hallo"})
        assert (await receive(page, "ack")) == {"type": "ack", "id": "m1", "waiting": False}
        assert (await receive(page, "receipts"))["messages"] == {"m1": "read"}  # the bot answered it

        plain, _, _ = await hello(http, farm.url)
        await plain.send_json({"type": "message", "id": "p1", "text": "Hallo"})
        await receive(plain, "message")
        await farm.farm.settle()
        await plain.send_json({"type": "history"})
        kinds: set[str] = set()
        while "history" not in kinds:
            kinds.add((await plain.receive_json())["type"])
        assert not kinds & {"state", "receipts", "language"}  # no transcript reads for clients that did not ask
        await page.close()
        await plain.close()


def test_every_language_of_the_catalogue_has_every_label() -> None:
    for language, words in CATALOGUE.items():
        assert set(words) == KEYS, language
        assert all(word.strip() for word in words.values()), language


def test_no_wait_in_minutes_is_shown_for_a_handoff_queued_outside_business_hours() -> None:
    opened = [Event("handoff", {"reason": "requested", "open": True}), Event("status", {"status": "waiting"})]
    assert with_position(chat_state(opened), 2, 5).state_frame()["minutes"] == 5
    closed = [Event("handoff", {"reason": "requested", "open": False}), Event("status", {"status": "waiting"})]
    frame = with_position(chat_state(closed), 2, 5).state_frame()
    assert (frame["position"], frame["minutes"]) == (2, None)
