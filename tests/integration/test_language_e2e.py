"""Issue 19 through the public doors with the demo bot (config/demo): the Telegram webhook with
the fake Bot API, and the web chat socket. A customer is answered in their language from the
first message, system messages (disclosure, handoff) included, and followed when they switch."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from core.model import Identity
from tests.fakes.telegram_api import FakeTelegramAPI, text_update
from tests.fakes.whatsapp_api import FakeWhatsAppAPI, post_webhook, text_webhook
from tests.handoff.handoff_support import desk_config
from tests.support.farm import DEMO_PROJECT, RunningFarm, running_farm
from tests.support.wait import eventually
from tests.support.webchat import receive

pytestmark = [
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Please use 'Bot.getUpdates':telegram.warnings.PTBUserWarning"),
]

TG_TOKEN = "7000000019:AAH-language-token"
TG_SECRET = "language-secret"
WA_TOKEN = "EAAG-language"
WA_SECRET = "wa-language-secret"
WA_PHONE = "1122334455667"
EN_DISCLOSURE = "You are chatting with an automated assistant"
EN_HANDOFF = "I'm passing you to a person from our team now"
DE_DISCLOSURE = "Sie schreiben mit einem automatischen Assistenten"
_update_ids = itertools.count(1)
_chats = itertools.count(91_000)


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegramAPI]:
    async with FakeTelegramAPI(TG_TOKEN) as api:
        yield api


@pytest.fixture
async def whatsapp() -> AsyncIterator[FakeWhatsAppAPI]:
    async with FakeWhatsAppAPI(WA_TOKEN, WA_PHONE) as api:
        yield api


@pytest.fixture
async def farm(tmp_path: Path, telegram: FakeTelegramAPI, whatsapp: FakeWhatsAppAPI) -> AsyncIterator[RunningFarm]:
    bots = {"demo": {
        "project": str(DEMO_PROJECT), "languages": ["de", "en", "tr"], "default_language": "de",
        "handoff": {"business_hours": {}},  # no hours configured: the team is always in
        "channels": {
            "webchat": {},
            "telegram": {"token": TG_TOKEN, "webhook_secret": TG_SECRET, "api_base": telegram.url,
                         "webhook_url": "https://bots.example/webhooks/demo/telegram"},
            "whatsapp": {"access_token": WA_TOKEN, "app_secret": WA_SECRET, "verify_token": "v",
                         "phone_number_id": WA_PHONE, "api_base": whatsapp.url},
        },
    }}
    async with running_farm(tmp_path, bots=bots, desk=desk_config()) as running:
        yield running


async def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    await eventually(predicate, timeout=timeout, message=f"timed out waiting for: {what}")


async def telegram_says(farm: RunningFarm, api: FakeTelegramAPI, chat_id: int, text: str,
                        language_code: str) -> str:
    """``text`` through the webhook from a Telegram user whose app is set to ``language_code``."""
    def received() -> list[str]:
        return [str(c["text"]) for c in api.calls("sendMessage") if c["chat_id"] == chat_id]

    before = len(received())
    update = text_update(chat_id, text, update_id=next(_update_ids))
    update["message"]["from"]["language_code"] = language_code
    async with aiohttp.ClientSession() as http, \
            http.post(f"{farm.url}/webhooks/demo/telegram", json=update,
                      headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}) as response:
        assert response.status == 200
    await farm.farm.settle()
    await wait_until(lambda: len(received()) > before, f"an answer to {text!r}")
    return "\n".join(received()[before:])


async def stored_language(farm: RunningFarm, chat_id: int) -> str | None:
    [contact] = await farm.store.find_contacts("demo", identity=Identity("telegram", str(chat_id), str(chat_id)))
    return (await farm.store.conversation_for("demo", contact.id)).language


async def test_english_telegram_user_asking_what_answers_gets_english_answer_and_disclosure(
        farm: RunningFarm, telegram: FakeTelegramAPI) -> None:
    chat = next(_chats)
    answer = await telegram_says(farm, telegram, chat, "Are you a human?", "en")
    assert EN_DISCLOSURE in answer
    assert "automated assistant, not a person" in answer
    assert "Sie " not in answer and "Mensch" not in answer
    assert await stored_language(farm, chat) == "en"


async def test_english_telegram_user_asking_for_a_human_gets_english_handoff_message(
        farm: RunningFarm, telegram: FakeTelegramAPI) -> None:
    chat = next(_chats)
    answer = await telegram_says(farm, telegram, chat, "Hello, I want to talk to a human", "en")
    assert EN_HANDOFF in answer
    assert EN_DISCLOSURE in answer
    assert "Ich gebe Sie" not in answer and "Sie schreiben" not in answer
    assert await stored_language(farm, chat) == "en"


async def test_german_telegram_user_saying_hallo_is_answered_in_german(
        farm: RunningFarm, telegram: FakeTelegramAPI) -> None:
    chat = next(_chats)
    answer = await telegram_says(farm, telegram, chat, "Hallo", "de")
    assert DE_DISCLOSURE in answer
    assert "Ich bin der digitale Assistent von Hostwerk" in answer
    assert await stored_language(farm, chat) == "de"


async def test_turkish_telegram_user_is_answered_in_turkish(farm: RunningFarm, telegram: FakeTelegramAPI) -> None:
    chat = next(_chats)
    answer = await telegram_says(farm, telegram, chat, "Merhaba", "tr")
    assert "Otomatik bir asistanla yazışıyorsunuz" in answer
    assert "Hostwerk'in dijital asistanıyım" in answer
    assert "Sizi şimdi ekibimizden bir kişiye aktarıyorum" in await telegram_says(farm, telegram, chat, "insan", "tr")


async def test_web_chat_conversation_switches_from_english_to_german_when_the_customer_does(
        farm: RunningFarm) -> None:
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{farm.url}/chat/demo/ws")
        await ws.send_json({"type": "hello", "session": None})
        await receive(ws, "welcome")
        await receive(ws, "history")
        await ws.send_json({"type": "message", "id": "m1", "text": "Hello, how do I reset my password?"})
        first = await receive(ws, "message", timeout=15)
        while first["role"] == "user":
            first = await receive(ws, "message", timeout=15)
        assert "You can reset your password" in first["text"]
        await ws.send_json({"type": "message", "id": "m2", "text": "Wie sind Ihre Öffnungszeiten?"})
        second = await receive(ws, "message", timeout=15)
        while second["role"] == "user":
            second = await receive(ws, "message", timeout=15)
        assert "Montag bis Freitag von 8 bis 18 Uhr" in second["text"]
        await ws.close()


async def test_asking_for_english_switches_a_german_telegram_user_and_the_language_sticks(
        farm: RunningFarm, telegram: FakeTelegramAPI) -> None:
    chat = next(_chats)
    assert "Ich bin der digitale Assistent" in await telegram_says(farm, telegram, chat, "Hallo", "de")
    answer = await telegram_says(farm, telegram, chat, "English please", "de")
    assert "Of course, I'll continue in English" in answer
    assert await stored_language(farm, chat) == "en"
    # one word the detector would read as German does not undo the customer's choice
    assert "I'm Hostwerk's digital assistant" in await telegram_says(farm, telegram, chat, "Hallo", "de")


async def test_whatsapp_number_from_turkey_is_a_weak_prior_for_an_unreadable_first_message(
        farm: RunningFarm, whatsapp: FakeWhatsAppAPI) -> None:
    async def says(wa_id: str, text: str) -> str:
        return await whatsapp_says(farm, whatsapp, wa_id, text)

    assert "Otomatik bir asistanla yazışıyorsunuz" in await says("905321234567", "ok")  # "ok" is unreadable
    # what the customer writes outranks the number's country
    assert "Our support team is available Monday to Friday" in await says("905551234567", "When are you open?")


async def whatsapp_says(farm: RunningFarm, whatsapp: FakeWhatsAppAPI, wa_id: str, text: str) -> str:
    def received() -> list[str]:
        found = []
        for message in whatsapp.messages():
            if message.get("to") == wa_id:
                body = message["text"]["body"] if message.get("type") == "text" else \
                    message.get("interactive", {}).get("body", {}).get("text", "")
                found.append(str(body))
        return found

    before = len(received())
    payload = text_webhook(wa_id, text, phone_number_id=WA_PHONE)
    assert await post_webhook(f"{farm.url}/webhooks/demo/whatsapp", payload, app_secret=WA_SECRET) == 200
    await farm.farm.settle()
    await wait_until(lambda: len(received()) > before, f"an answer to {text!r}")
    return "\n".join(received()[before:])


async def test_web_chat_page_learns_the_language_of_a_first_message_asking_for_a_person(farm: RunningFarm) -> None:
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{farm.url}/chat/demo/ws")
        await ws.send_json({"type": "hello", "session": None, "languages": ["de-DE"], "watch": True})
        await receive(ws, "welcome")
        await ws.send_json({"type": "message", "id": "m1", "text": "Hello, I want to talk to a human"})
        reply = await receive(ws, "message", timeout=15)
        while reply["role"] == "user":
            reply = await receive(ws, "message", timeout=15)
        assert EN_HANDOFF in reply["text"]
        assert (await receive(ws, "language", timeout=15))["language"] == "en"
        await ws.close()


async def test_web_chat_from_an_english_browser_answers_hi_in_english_and_follows_a_switch_to_german(
        farm: RunningFarm) -> None:
    async def reply_to(ws: aiohttp.ClientWebSocketResponse, message_id: str, text: str) -> str:
        await ws.send_json({"type": "message", "id": message_id, "text": text})
        message = await receive(ws, "message", timeout=15)
        while message["role"] == "user":
            message = await receive(ws, "message", timeout=15)
        return str(message["text"])

    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{farm.url}/chat/demo/ws")
        await ws.send_json({"type": "hello", "session": None, "languages": ["en-US", "en"]})
        assert (await receive(ws, "welcome"))["language"] == "en"  # the page's labels
        # "ok" alone says nothing about a language: the browser's languages decide.
        assert EN_DISCLOSURE in await reply_to(ws, "m0", "ok")
        assert "Hi! I'm Hostwerk's digital assistant" in await reply_to(ws, "m1", "hi")
        assert "Montag bis Freitag von 8 bis 18 Uhr" in await reply_to(ws, "m2", "Wie sind Ihre Öffnungszeiten?")
        await ws.close()
