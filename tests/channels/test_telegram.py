"""Telegram adapter: the contract kit, every fixture, webhook routes and polling against the fake Bot API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.base import load_registry
from channels.telegram import TelegramAdapter
from channels.testing import AdapterContract, LeaseBoard, RecordingContext, SentMessage, mounted
from core.errors import (
    BadRequest,
    ConfigError,
    RateLimited,
    RecipientUnavailable,
    TransientError,
    Unauthorized,
)
from core.model import Attachment, Button, Inbound, Outbound
from tests.fakes.telegram_api import FakeTelegramAPI, text_update

# The adapter fetches raw updates through do_api_request on purpose (one parse path).
pytestmark = [
    pytest.mark.filterwarnings("ignore:Please use 'Bot.getUpdates':telegram.warnings.PTBUserWarning"),
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),  # raised inside PTB's RetryAfter
]

FIXTURES = Path("/work/shared/fixtures/platforms/telegram")
TOKEN = "7000000001:AAH-test-token"
SECRET = "s3cret-token_1"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


class TelegramProbe:
    def __init__(self, fake: FakeTelegramAPI) -> None:
        self.fake = fake

    def sent(self) -> list[SentMessage]:
        out = []
        for call in self.fake.requests:
            if call.method not in ("sendMessage", "sendPhoto", "sendDocument"):
                continue
            p = call.params
            markup = p.get("reply_markup") or {}
            titles = tuple(b["text"] for row in markup.get("inline_keyboard", []) for b in row)
            out.append(SentMessage(str(p["chat_id"]), p.get("text") or p.get("caption") or "", titles))
        return out

    def request_count(self) -> int:
        return len(self.fake.requests)

    def fail_next(self, kind: str) -> float | None:
        status = {"rate_limited": 429, "unauthorized": 401, "recipient_unavailable": 403,
                  "bad_request": 400, "transient": 500}[kind]
        self.fake.fail_next(1, status=status, retry_after=7 if status == 429 else None)
        return 7.0 if status == 429 else None


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegramAPI]:
    async with FakeTelegramAPI(TOKEN) as api:
        yield api


def make_adapter(fake: FakeTelegramAPI, context: RecordingContext, **overrides: Any) -> TelegramAdapter:
    config = {"token": TOKEN, "webhook_secret": SECRET, "webhook_url": "https://bots.example/webhooks/nordhost/telegram",
              "api_base": fake.url, "set_webhook": False, "timeout": 2.0, **overrides}
    return TelegramAdapter.from_config("nordhost", config, context)


ANNA = {"bot": "nordhost", "channel": "telegram", "channel_user_id": "111222333", "chat_id": "111222333",
            "display_name": "Anna Schmidt (@anna_s)", "language_hint": "de"}


def at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class TestTelegramContract(AdapterContract):
    chat_id = "111222333"

    @pytest.fixture
    async def adapter(self, fake: FakeTelegramAPI, context: RecordingContext) -> AsyncIterator[TelegramAdapter]:
        adapter = make_adapter(fake, context)
        await adapter.start()
        yield adapter
        await adapter.stop()

    @pytest.fixture
    def platform(self, fake: FakeTelegramAPI) -> TelegramProbe:
        return TelegramProbe(fake)

    @pytest.fixture
    def sign(self) -> Callable[[bytes], Mapping[str, str]]:
        return lambda body: {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}

    @pytest.fixture
    def payload_cases(self) -> list[tuple[dict[str, Any], Any]]:
        return [
            (load("text_message.json"), (Inbound(**ANNA, platform_message_id="telegram:900000001",
                                                 text="Hallo, mein Server ist nicht erreichbar", timestamp=at(1763820011)),)),
            (load("start_command_with_payload.json"), (Inbound(**ANNA, platform_message_id="telegram:900000003",
                                                               text="/start link-4711", timestamp=at(1763820013)),)),
            (load("callback_query.json"), (Inbound(**ANNA, platform_message_id="telegram:900000004", text="Bestellstatus",
                                                   button_payload="/order_status", timestamp=ANY),)),
            (load("contact_shared_own.json"), (Inbound(**ANNA, platform_message_id="telegram:900000006",
                                                       shared_phone="491701234567", timestamp=at(1763820016)),)),
            (load("contact_shared_other_person.json"), (Inbound(
                **ANNA, platform_message_id="telegram:900000007", timestamp=at(1763820017),
                attachments=(Attachment(kind="contact", url="tel:+491709999999", name="Bernd"),)),)),
            (load("edited_message.json"), (Inbound(**ANNA, platform_message_id="telegram:edit:900000005", edited=True,
                                                   text="Meine Bestellnummer ist 4711-2025", timestamp=at(1763820100)),)),
            (load("photo_with_caption.json"), (Inbound(
                **ANNA, platform_message_id="telegram:900000009", text="Fehlermeldung im Control Panel",
                timestamp=at(1763820019), attachments=(Attachment(
                    kind="image", file_id="AgACAgIAAxkBAAIBQ2Vlarge", caption="Fehlermeldung im Control Panel",
                    size=58012),)),)),
            (load("document.json"), (Inbound(
                **ANNA, platform_message_id="telegram:900000010", timestamp=at(1763820020), attachments=(Attachment(
                    kind="document", file_id="BQACAgIAAxkBAAIBRGVdoc", mime_type="application/pdf",
                    name="rechnung-2025-11.pdf", size=81234),)),)),
            (load("group_message.json"), None),
            (load("my_chat_member_blocked.json"), None),
        ]


# -- every fixture file -------------------------------------------------------------------
# file -> (text, button_payload, shared_phone, attachment kinds, edited) or "ignored" or "api"
EXPECTED: dict[str, Any] = {
    "callback_query.json": ("Bestellstatus", "/order_status", None, (), False),
    "contact_shared_other_person.json": ("", None, None, ("contact",), False),
    "contact_shared_own.json": ("", None, "491701234567", (), False),
    "contact_shared_without_user_id.json": ("", None, None, ("contact",), False),
    "document.json": ("", None, None, ("document",), False),
    "edited_message.json": ("Meine Bestellnummer ist 4711-2025", None, None, (), True),
    "english_text.json": ("I want to talk to a human, this is ridiculous!!!", None, None, (), False),
    "group_message.json": "ignored",
    "location.json": ("", None, None, ("location",), False),
    "my_chat_member_blocked.json": "ignored",
    "photo_with_caption.json": ("Fehlermeldung im Control Panel", None, None, ("image",), False),
    "start_command.json": ("/start", None, None, (), False),
    "start_command_with_payload.json": ("/start link-4711", None, None, (), False),
    "sticker.json": ("", None, None, ("sticker",), False),
    "text_message.json": ("Hallo, mein Server ist nicht erreichbar", None, None, (), False),
    "voice.json": ("", None, None, ("voice",), False),
    "official/tg_update_callback_query_inline_official.json": ("Data from button callback", "Data from button callback", None, (), False),
    "official/tg_update_callback_query_message.ADAPTED.json": ("Option A", "Data from button callback", None, (), False),
    "official/tg_update_edited_message.ADAPTED.json": ("Edited text", None, None, (), True),
    "official/tg_update_edited_message_official.json": ("Edited text", None, None, (), True),
    # the aiogram contact has no user_id: not provably the sender's own number
    "official/tg_update_message_contact_aiogram.json": ("", None, None, ("contact",), False),
    "official/tg_update_message_document.ADAPTED.json": ("", None, None, ("document",), False),
    "official/tg_update_message_document_official.json": ("", None, None, ("document",), False),
    "official/tg_update_message_entities_official.json": ("Bold and italics", None, None, (), False),
    "official/tg_update_message_photo.ADAPTED.json": ("photo description", None, None, ("image",), False),
    "official/tg_update_message_photo_aiogram_verbatim.json": ("photo description", None, None, ("image",), False),
    "official/tg_update_message_reply_official.json": ("/start", None, None, (), False),
    "official/tg_update_message_start_command.ADAPTED.json": ("/start", None, None, (), False),
    "official/tg_update_message_start_command_realcapture.json": ("/start", None, None, (), False),
    "official/tg_update_message_supergroup_command.ADAPTED.json": "ignored",
    "official/tg_update_message_text.ADAPTED.json": ("Bold and italics", None, None, (), False),
    "official/tg_update_message_text_start_official.json": ("/start", None, None, (), False),
    "official/tg_update_message_voice.ADAPTED.json": ("", None, None, ("voice",), False),
    "official/tg_update_message_voice_official.json": ("", None, None, ("voice",), False),
    "api_error_400_chat_not_found.json": "api",
    "api_error_401.json": "api",
    "api_error_403_blocked.json": "api",
    "api_error_429.json": "api",
    "api_getUpdates_ok.json": "api",
    "api_sendMessage_ok.json": "api",
    "official/tg_error_429_flood.ADAPTED.json": "api",
}
ALL_FILES = sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*.json"))


def test_every_fixture_file_has_an_expectation() -> None:
    assert sorted(EXPECTED) == ALL_FILES


@pytest.mark.parametrize("name", [n for n in ALL_FILES if EXPECTED.get(n) != "api"])
def test_fixture_update_parses_to_expected_inbound(name: str) -> None:
    adapter = TelegramAdapter.from_config("nordhost", {"token": TOKEN}, RecordingContext())
    payload = load(name)
    parsed = adapter.parse(payload)
    expected = EXPECTED[name]
    if expected == "ignored":
        assert parsed.messages == () and parsed.ignored
        return
    [message] = parsed.messages
    text, button, phone, kinds, edited = expected
    assert (message.text, message.button_payload, message.shared_phone,
            tuple(a.kind for a in message.attachments), message.edited) == (text, button, phone, kinds, edited)
    uid = payload["update_id"]
    assert message.platform_message_id == (f"telegram:edit:{uid}" if edited else f"telegram:{uid}")
    assert message.timestamp.tzinfo is UTC or message.timestamp.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    sender = (payload.get("message") or payload.get("edited_message") or payload.get("callback_query"))["from"]["id"]
    assert message.channel_user_id == str(sender)


def test_group_messages_are_handled_when_allowed() -> None:
    adapter = TelegramAdapter.from_config("nordhost", {"token": TOKEN, "allow_groups": True}, RecordingContext())
    [message] = adapter.parse(load("group_message.json")).messages
    assert message.chat_id == "-1001234567890" and message.channel_user_id == "111222333"


def test_edited_message_is_not_deduplicated_with_the_original() -> None:
    adapter = TelegramAdapter.from_config("nordhost", {"token": TOKEN}, RecordingContext())
    original = load("text_message.json")
    edited = {"update_id": original["update_id"] + 50, "edited_message": {**original["message"], "text": "fixed",
                                                                          "edit_date": 1763820099}}
    [a] = adapter.parse(original).messages
    [b] = adapter.parse(edited).messages
    assert a.platform_message_id != b.platform_message_id and b.edited and b.text == "fixed"


@pytest.mark.parametrize(("name", "status", "retry_after", "error"), [
    ("api_error_400_chat_not_found.json", 400, None, BadRequest),
    ("api_error_401.json", 401, None, Unauthorized),
    ("api_error_403_blocked.json", 403, None, RecipientUnavailable),
    ("api_error_429.json", 429, 5, RateLimited),
    ("official/tg_error_429_flood.ADAPTED.json", 429, 5, RateLimited),
])
async def test_fake_error_bodies_match_telegram_and_map_to_core_errors(
    fake: FakeTelegramAPI, name: str, status: int, retry_after: int | None, error: type[Exception]
) -> None:
    fixture = load(name)
    fake.fail_next(1, status=status, retry_after=retry_after, description=fixture["description"])
    async with aiohttp.ClientSession() as session, \
            session.post(f"{fake.base_url}{TOKEN}/sendMessage", data={"chat_id": "1", "text": "x"}) as r:
        assert r.status == status and await r.json() == fixture
    fake.fail_next(1, status=status, retry_after=retry_after, description=fixture["description"])
    adapter = make_adapter(fake, RecordingContext())
    try:
        with pytest.raises(error) as caught:
            await adapter.send(Outbound("c", "nordhost", "telegram", "111222333", text="hi"))
        if retry_after:
            assert caught.value.retry_after == retry_after  # type: ignore[attr-defined]
    finally:
        await adapter.stop()


async def test_fake_answers_get_updates_and_send_message_like_the_fixtures(fake: FakeTelegramAPI) -> None:
    for update in load("api_getUpdates_ok.json")["result"]:
        fake.push_update(update)
    adapter = make_adapter(fake, RecordingContext())
    try:
        client = await adapter._ensure_client()
        result = await client.do_api_request("getUpdates", api_kwargs={"timeout": 0})
        assert result == load("api_getUpdates_ok.json")["result"]
        sent = await client.send_message(111222333, "Ich verbinde Sie mit einem Mitarbeiter.")
        shape = load("api_sendMessage_ok.json")["result"]
        assert set(shape) <= set(sent.to_dict()) and sent.text == shape["text"]
    finally:
        await adapter.stop()


# -- webhook routes ---------------------------------------------------------------------------
async def test_wrong_telegram_secret_token_is_403_and_nothing_reaches_the_core(fake: FakeTelegramAPI) -> None:
    context = RecordingContext()
    adapter = make_adapter(fake, context)
    async with mounted(adapter) as client:
        r = await client.post("/webhooks/nordhost/telegram", json=load("text_message.json"),
                              headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"})
        assert r.status == 403
    assert context.accepted == []
    await adapter.stop()


async def test_webhook_without_configured_secret_rejects_everything(fake: FakeTelegramAPI) -> None:
    context = RecordingContext()
    adapter = TelegramAdapter.from_config("nordhost", {"token": TOKEN, "api_base": fake.url}, context)
    async with mounted(adapter) as client:
        r = await client.post("/webhooks/nordhost/telegram", json=load("text_message.json"),
                              headers={"X-Telegram-Bot-Api-Secret-Token": ""})
        assert r.status == 403
    assert context.accepted == []


async def test_button_press_via_webhook_is_stored_then_answered(fake: FakeTelegramAPI) -> None:
    context = RecordingContext()
    adapter = make_adapter(fake, context)
    async with mounted(adapter) as client:
        r = await client.post("/webhooks/nordhost/telegram", json=load("callback_query.json"),
                              headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
        assert r.status == 200
    [answer] = await fake.wait_for("answerCallbackQuery")
    assert answer["callback_query_id"] == "4382bfdwdsb323b2d9"
    assert context.messages[0].button_payload == "/order_status"
    await adapter.stop()


async def test_webhook_mode_registers_webhook_with_secret(fake: FakeTelegramAPI) -> None:
    adapter = make_adapter(fake, RecordingContext(), set_webhook=True)
    await adapter.start()
    await adapter.stop()
    [call] = fake.calls("setWebhook")
    assert call["url"] == "https://bots.example/webhooks/nordhost/telegram" and call["secret_token"] == SECRET
    assert fake.webhook is not None


async def test_webhook_registration_that_fails_at_start_is_retried(fake: FakeTelegramAPI) -> None:
    fake.fail_next(2, status=502, method="setWebhook")
    adapter = make_adapter(fake, RecordingContext(), set_webhook=True)
    await adapter.start()  # does not wait for the retries
    try:
        await fake.wait_for("setWebhook", 3, timeout=5.0)
        assert fake.webhook is not None
    finally:
        await adapter.stop()


async def test_fake_delivers_updates_to_the_registered_webhook(fake: FakeTelegramAPI) -> None:
    context = RecordingContext()
    adapter = make_adapter(fake, context)
    async with mounted(adapter) as client:
        fake.webhook = {"url": str(client.make_url("/webhooks/nordhost/telegram")), "secret_token": SECRET}
        assert await fake.deliver_webhook(text_update(5, "hello")) == 200
    assert [m.text for m in context.messages] == ["hello"]
    await adapter.stop()


# -- sending ----------------------------------------------------------------------------------
async def test_sends_inline_keyboard_with_callback_data(fake: FakeTelegramAPI) -> None:
    adapter = make_adapter(fake, RecordingContext())
    message_id = await adapter.send(Outbound("c", "nordhost", "telegram", "111222333", text="Womit kann ich helfen?",
                                             buttons=(Button("Bestellstatus", "/order_status"),)))
    [call] = fake.calls("sendMessage")
    assert call["chat_id"] == 111222333
    assert call["reply_markup"] == {"inline_keyboard": [[{"text": "Bestellstatus", "callback_data": "/order_status"}]]}
    assert message_id == "telegram:111222333:1"
    await adapter.stop()


async def test_button_payload_over_64_bytes_degrades_to_numbered_text(fake: FakeTelegramAPI) -> None:
    adapter = make_adapter(fake, RecordingContext())
    buttons = (Button("Long", "/" + "x" * 80), Button("Short", "/s"))
    await adapter.send(Outbound("c", "nordhost", "telegram", "1", text="Pick", buttons=buttons))
    [call] = fake.calls("sendMessage")
    assert "reply_markup" not in call and call["text"] == "Pick\n\n1. Long\n2. Short"
    await adapter.stop()


async def test_typing_action_and_photo_attachment(fake: FakeTelegramAPI) -> None:
    adapter = make_adapter(fake, RecordingContext())
    await adapter.typing("111222333")
    assert fake.calls("sendChatAction") == [{"chat_id": 111222333, "action": "typing"}]
    await adapter.send(Outbound("c", "nordhost", "telegram", "111222333", text="Here",
                                attachments=(Attachment(kind="image", url="https://example.com/a.png"),)))
    [photo] = fake.calls("sendPhoto")
    assert photo["photo"] == "https://example.com/a.png" and photo["caption"] == "Here"
    await adapter.stop()


async def test_long_text_is_split_under_4096_characters(fake: FakeTelegramAPI) -> None:
    adapter = make_adapter(fake, RecordingContext())
    await adapter.send(Outbound("c", "nordhost", "telegram", "1", text=("line\n" * 2000)))
    calls = fake.calls("sendMessage")
    assert len(calls) == 3 and all(len(c["text"]) <= 4096 for c in calls)
    await adapter.stop()


async def test_a_long_text_retried_after_a_failed_chunk_sends_only_the_chunks_not_yet_sent(
    fake: FakeTelegramAPI,
) -> None:
    context = RecordingContext()
    adapter = make_adapter(fake, context)
    message = Outbound("c", "nordhost", "telegram", "1", text="".join(f"line {n}\n" for n in range(1500)))
    fake.fail_next(1, status=502, method="sendMessage", after=1)  # the second of three chunks fails
    with pytest.raises(TransientError):
        await adapter.send(message)
    platform_id = await adapter.send(message)  # the outbox retries the whole message
    texts = [c["text"] for c in fake.calls("sendMessage")]
    # chunk 1, chunk 2 (failed), chunk 2 again, the rest: only the failed chunk went twice
    assert len(texts) >= 4 and texts[1] == texts[2] and len(set(texts)) == len(texts) - 1
    delivered = [texts[0], *texts[2:]]
    assert sum(t.count("line ") for t in delivered) == 1500 and delivered[0].startswith("line 0\n")
    assert platform_id.startswith("telegram:1:")
    await adapter.stop()


async def test_a_short_text_costs_no_progress_bookkeeping(fake: FakeTelegramAPI) -> None:
    context = RecordingContext()
    adapter = make_adapter(fake, context)
    await adapter.send(Outbound("c", "nordhost", "telegram", "1", text="hi"))
    assert context.kv_writes == 0 and context.kv == {}
    await adapter.stop()


async def test_timeout_from_platform_is_transient(fake: FakeTelegramAPI) -> None:
    fake.hang_seconds = 3
    fake.fail_next(1, status=0)
    adapter = make_adapter(fake, RecordingContext(), timeout=0.3)
    with pytest.raises(TransientError):
        await adapter.send(Outbound("c", "nordhost", "telegram", "1", text="hi"))
    await adapter.stop()


async def test_empty_message_is_a_bad_request_without_a_call(fake: FakeTelegramAPI) -> None:
    adapter = make_adapter(fake, RecordingContext())
    with pytest.raises(BadRequest):
        await adapter.send(Outbound("c", "nordhost", "telegram", "1", text="  "))
    assert fake.count() == 0
    await adapter.stop()


# -- polling ----------------------------------------------------------------------------------
def polling_adapter(fake: FakeTelegramAPI, context: RecordingContext) -> TelegramAdapter:
    return TelegramAdapter.from_config("nordhost", {"token": TOKEN, "api_base": fake.url, "poll_timeout": 1,
                                                    "lease_retry": 0.05, "timeout": 2}, context)


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_polling_accepts_updates_and_persists_offset(fake: FakeTelegramAPI) -> None:
    ids = [fake.push_update(text_update(5, f"m{i}")) for i in range(3)]
    context = RecordingContext()
    adapter = polling_adapter(fake, context)
    await adapter.start()
    await wait_until(lambda: len(context.messages) == 3)
    await wait_until(lambda: context.kv.get("telegram:offset:nordhost") == ids[-1] + 1)
    await wait_until(lambda: any(c.get("offset") == ids[-1] + 1 for c in fake.calls("getUpdates")))
    await adapter.stop()
    assert [m.text for m in context.messages] == ["m0", "m1", "m2"]
    assert fake.count("deleteWebhook") == 1 and fake.updates == []


async def test_no_update_is_processed_twice_across_a_restart(fake: FakeTelegramAPI) -> None:
    context = RecordingContext()
    first = polling_adapter(fake, context)
    fake.push_update(text_update(5, "a"))
    fake.push_update(text_update(5, "b"))
    await first.start()
    await wait_until(lambda: len(context.messages) == 2)
    await first.stop()  # stopped before Telegram saw the confirming offset
    third = fake.push_update(text_update(5, "c"))
    second = polling_adapter(fake, context)
    await second.start()
    await wait_until(lambda: len(context.messages) == 3)
    await asyncio.sleep(0.1)
    await second.stop()
    assert [m.text for m in context.messages] == ["a", "b", "c"]
    assert context.kv["telegram:offset:nordhost"] == third + 1


async def test_only_the_lease_holder_polls_and_another_process_takes_over(fake: FakeTelegramAPI) -> None:
    board = LeaseBoard()
    ctx_a, ctx_b = RecordingContext("a", board), RecordingContext("b", board)
    a, b = polling_adapter(fake, ctx_a), polling_adapter(fake, ctx_b)
    await a.start()
    await wait_until(lambda: board.holders.get("telegram-poll:nordhost", ("",))[0] == "a")
    await b.start()
    fake.push_update(text_update(5, "one"))
    await wait_until(lambda: len(ctx_a.messages) == 1)
    await asyncio.sleep(0.2)
    assert ctx_b.accepted == [] and board.holders["telegram-poll:nordhost"][0] == "a"
    await a.stop()  # releases the lease
    ctx_b.kv.update(ctx_a.kv)  # both processes share one store
    fake.push_update(text_update(5, "two"))
    await wait_until(lambda: len(ctx_b.messages) == 1)
    await b.stop()
    assert [m.text for m in ctx_a.messages + ctx_b.messages] == ["one", "two"]


async def test_store_unavailable_while_polling_keeps_the_update_for_later(fake: FakeTelegramAPI) -> None:
    context = RecordingContext(unavailable=True)
    adapter = polling_adapter(fake, context)
    uid = fake.push_update(text_update(5, "kept"))
    await adapter.start()
    await wait_until(lambda: fake.count("getUpdates") >= 2)
    assert "telegram:offset:nordhost" not in context.kv
    context.unavailable = False
    await wait_until(lambda: len(context.messages) == 1, timeout=8)
    await adapter.stop()
    assert context.kv["telegram:offset:nordhost"] == uid + 1 and len(context.messages) == 1


async def test_stop_during_long_poll_is_quick_and_releases_the_lease(fake: FakeTelegramAPI) -> None:
    context = RecordingContext()
    adapter = TelegramAdapter.from_config("nordhost", {"token": TOKEN, "api_base": fake.url, "poll_timeout": 20,
                                                       "lease_ttl": 60}, context)
    await adapter.start()
    await wait_until(lambda: fake.count("getUpdates") == 1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await adapter.stop()
    assert loop.time() - started < 1.0
    assert context.leases.holders == {}


async def test_fake_answers_409_when_a_second_poller_arrives(fake: FakeTelegramAPI) -> None:
    async with aiohttp.ClientSession() as session:
        url = f"{fake.base_url}{TOKEN}/getUpdates"
        first = asyncio.create_task(session.post(url, data={"timeout": "5"}))
        await wait_until(lambda: fake.count("getUpdates") == 1)
        async with session.post(url, data={"timeout": "0"}) as second:
            assert second.status == 200
        response = await first
        assert response.status == 409 and (await response.json())["error_code"] == 409
        fake.webhook = {"url": "https://x", "secret_token": None}
        async with session.post(url, data={"timeout": "0"}) as third:
            assert third.status == 409


# -- config and registry -------------------------------------------------------------------------
def test_webhook_url_without_secret_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="bots.nordhost.channels.telegram"):
        TelegramAdapter.from_config("nordhost", {"token": TOKEN, "webhook_url": "https://x"}, RecordingContext())


def test_registry_finds_telegram_and_whatsapp_through_entry_points() -> None:
    registry = load_registry()
    assert registry.get("telegram") is TelegramAdapter
    assert registry.get("whatsapp").__name__ == "WhatsAppAdapter"


# -- fuzzing --------------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
field_names = st.sampled_from(["message_id", "from", "chat", "date", "text", "id", "is_bot", "first_name", "type",
                               "photo", "document", "contact", "phone_number", "user_id", "data", "caption",
                               "edit_date", "file_id", "reply_markup", "message", "location"])
update_like = st.fixed_dictionaries(
    {"update_id": st.integers(0, 2**31)},
    optional={k: st.dictionaries(field_names, json_values | st.dictionaries(field_names, json_values, max_size=5),
                                 max_size=8)
              for k in ("message", "edited_message", "callback_query", "my_chat_member")},
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=st.one_of(update_like, st.dictionaries(st.text(max_size=10), json_values, max_size=5)))
def test_parse_never_raises_anything_but_bad_request(payload: dict[str, Any]) -> None:
    adapter = TelegramAdapter.from_config("fuzz", {"token": TOKEN}, RecordingContext())
    try:
        adapter.parse(payload)
    except BadRequest:
        pass


def test_a_shared_place_keeps_its_title_and_address_with_the_location() -> None:
    adapter = TelegramAdapter.from_config("nordhost", {"token": TOKEN}, RecordingContext())
    update = load("location.json")
    location = update["message"]["location"]
    update["message"]["venue"] = {"location": location, "title": "Fernsehturm", "address": "Panoramastraße 1A"}
    [message] = adapter.parse(update).messages
    assert message.attachments == (Attachment(kind="location", url="geo:52.520008,13.404954", name="Fernsehturm",
                                              caption="Panoramastraße 1A"),)
