"""Issue 15 through the real webhook routes, the demo bot (config/demo) and the platform fakes:
"Bist du ein Mensch?" gets the honest answer and no handoff, asking for a person still hands
over (mid-form too), and ordinary repetition (a question after a closed handoff and a rating,
"bye" twice, a text forwarded many times) is not read as frustration."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from core.model import Conversation, ConversationStatus, Event, Identity
from tests.fakes.telegram_api import FakeTelegramAPI, text_update
from tests.fakes.whatsapp_api import FakeWhatsAppAPI, post_webhook, text_webhook
from tests.handoff.handoff_support import PASSWORDS, RecordingDesk, desk_config, service
from tests.support.farm import DEMO_PROJECT, RunningFarm, running_farm
from tests.support.wait import eventually

pytestmark = [
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Please use 'Bot.getUpdates':telegram.warnings.PTBUserWarning"),
]

TG_TOKEN = "7000000015:AAH-honest-token"
TG_SECRET = "honest-secret"
WA_TOKEN = "EAAG-honest"
WA_SECRET = "wa-honest-secret"
WA_PHONE = "1122334455667"  # the phone_number_id of the shared WhatsApp fixtures
FIXTURES = Path("/work/shared/fixtures/platforms/whatsapp")
HOURS_DE = "Montag bis Freitag von 8 bis 18 Uhr"
DESK_HEADERS = {"X-Desk-Request": "1"}
_update_ids = itertools.count(1)


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegramAPI]:
    async with FakeTelegramAPI(TG_TOKEN) as api:
        yield api


@pytest.fixture
async def whatsapp() -> AsyncIterator[FakeWhatsAppAPI]:
    async with FakeWhatsAppAPI(WA_TOKEN, WA_PHONE) as api:
        yield api


@pytest.fixture
async def farm(tmp_path: Path, telegram: FakeTelegramAPI,
               whatsapp: FakeWhatsAppAPI) -> AsyncIterator[tuple[RunningFarm, RecordingDesk]]:
    bots = {"demo": {
        "project": str(DEMO_PROJECT), "languages": ["de", "en"], "default_language": "de",
        "handoff": {"business_hours": {}},  # no hours configured: the team is always in
        "channels": {
            "telegram": {"token": TG_TOKEN, "webhook_secret": TG_SECRET, "api_base": telegram.url,
                         "webhook_url": "https://bots.example/webhooks/demo/telegram"},
            "whatsapp": {"access_token": WA_TOKEN, "app_secret": WA_SECRET, "verify_token": "v",
                         "phone_number_id": WA_PHONE, "api_base": whatsapp.url},
        },
    }}
    async with running_farm(tmp_path, bots=bots, desk=desk_config()) as running:
        recording = RecordingDesk()
        service(running).add_desk(recording)
        yield running, recording


async def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    await eventually(predicate, timeout=timeout, message=f"timed out waiting for: {what}")


class TelegramCustomer:
    def __init__(self, farm: RunningFarm, api: FakeTelegramAPI, chat_id: int) -> None:
        self.farm, self.api, self.chat_id = farm, api, chat_id

    def received(self) -> list[str]:
        return [str(c["text"]) for c in self.api.calls("sendMessage") if c["chat_id"] == self.chat_id]

    async def says(self, text: str, *, date: int | None = None) -> str:
        """Send ``text`` through the webhook route; returns the bot's (or the handoff's) answer."""
        before = len(self.received())
        update = text_update(self.chat_id, text, update_id=next(_update_ids), date=date)
        async with aiohttp.ClientSession() as http, \
                http.post(f"{self.farm.url}/webhooks/demo/telegram", json=update,
                          headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}) as response:
            assert response.status == 200
        await self.farm.farm.settle()
        await wait_until(lambda: len(self.received()) > before, f"an answer to {text!r}")
        return "\n".join(self.received()[before:])

    async def conversation(self) -> Conversation:
        [contact] = await self.farm.store.find_contacts(
            "demo", identity=Identity("telegram", str(self.chat_id), str(self.chat_id)))
        return await self.farm.store.conversation_for("demo", contact.id)


class WhatsAppCustomer:
    def __init__(self, farm: RunningFarm, api: FakeWhatsAppAPI, wa_id: str) -> None:
        self.farm, self.api, self.wa_id = farm, api, wa_id

    def received(self) -> list[str]:
        found = []
        for message in self.api.messages():
            if message.get("to") != self.wa_id:
                continue
            if message.get("type") == "text":
                found.append(str(message["text"]["body"]))
            elif message.get("type") == "interactive":
                found.append(str(message["interactive"]["body"]["text"]))
        return found

    async def sends(self, payload: dict[str, Any], what: str) -> str:
        before = len(self.received())
        assert await post_webhook(f"{self.farm.url}/webhooks/demo/whatsapp", payload, app_secret=WA_SECRET) == 200
        await self.farm.farm.settle()
        await wait_until(lambda: len(self.received()) > before, f"an answer to {what}")
        return "\n".join(self.received()[before:])

    async def says(self, text: str) -> str:
        return await self.sends(text_webhook(self.wa_id, text, phone_number_id=WA_PHONE), repr(text))

    async def conversation(self) -> Conversation:
        [contact] = await self.farm.store.find_contacts(
            "demo", identity=Identity("whatsapp", self.wa_id, self.wa_id))
        return await self.farm.store.conversation_for("demo", contact.id)


async def events(farm: RunningFarm, conversation: Conversation, kind: str) -> list[Event]:
    return [e for e in await farm.store.transcript(conversation.id, limit=500) if e.type == kind]


async def desk_post(http: aiohttp.ClientSession, url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    async with http.post(f"{url}/desk/api/{path}", json=body or {}, headers=DESK_HEADERS) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def test_are_you_a_human_gets_the_honest_answer_and_asking_for_one_hands_over_mid_form(
    farm: tuple[RunningFarm, RecordingDesk], telegram: FakeTelegramAPI,
) -> None:
    running, desk = farm
    customer = TelegramCustomer(running, telegram, 5151)

    answer = await customer.says("Bist du ein Mensch?")
    assert "automatischer Assistent" in answer and "Mitarbeiter" in answer, answer
    conversation = await customer.conversation()
    assert conversation.status is ConversationStatus.BOT
    assert await events(running, conversation, "handoff") == [] and desk.summaries == []

    # The same question mid-form: the honest answer, and the form carries on.
    assert "Bestellnummer" in await customer.says("Wo ist meine Bestellung?")
    answer = await customer.says("Bin ich hier mit einem echten Menschen verbunden?")
    assert "automatischer Assistent" in answer, answer
    conversation = await customer.conversation()
    assert conversation.status is ConversationStatus.BOT and conversation.active_form == "order_status_form"
    assert desk.summaries == []

    # Asking for a person hands over at once, from inside the form.
    answer = await customer.says("Ich will einen Menschen sprechen")
    assert "Person aus unserem Team" in answer, answer
    conversation = await customer.conversation()
    assert conversation.status is ConversationStatus.WAITING and conversation.handoff_reason == "requested"
    assert conversation.active_form is None
    [summary] = desk.summaries
    assert summary.reason == "requested"


async def test_english_identity_question_is_answered_in_english_without_a_handoff(
    farm: tuple[RunningFarm, RecordingDesk], telegram: FakeTelegramAPI,
) -> None:
    running, desk = farm
    customer = TelegramCustomer(running, telegram, 5252)
    answer = await customer.says("am I talking to a human?")
    assert "automated assistant" in answer, answer
    assert (await customer.conversation()).status is ConversationStatus.BOT and desk.summaries == []
    answer = await customer.says("can I talk to a human")
    assert (await customer.conversation()).status is ConversationStatus.WAITING, answer


async def test_hours_again_after_a_closed_handoff_and_a_rating_get_the_hours_answer(
    farm: tuple[RunningFarm, RecordingDesk], whatsapp: FakeWhatsAppAPI,
) -> None:
    running, desk = farm
    customer = WhatsAppCustomer(running, whatsapp, "491701515151")
    assert HOURS_DE in await customer.says("Wie sind eure Öffnungszeiten?")
    await customer.says("Ich will einen Menschen sprechen")
    conversation = await customer.conversation()
    assert conversation.status is ConversationStatus.WAITING

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as agent:
        await desk_post(agent, running.url, "login", {"agent": "anna", "password": PASSWORDS["anna"]})
        base = f"conversations/{conversation.id}"
        await desk_post(agent, running.url, f"{base}/claim")
        await desk_post(agent, running.url, f"{base}/reply", {"text": "Wir sind werktags von 8 bis 18 Uhr da."})
        before = len(customer.received())
        await desk_post(agent, running.url, f"{base}/close")
    await running.farm.settle()
    await wait_until(lambda: any("zufrieden" in t for t in customer.received()[before:]), "the rating question")
    assert "Bewertung" in await customer.says("5")
    [csat] = await events(running, conversation, "csat")
    assert csat.data["score"] == 5

    answer = await customer.says("Wie sind eure Öffnungszeiten?")
    assert HOURS_DE in answer, answer
    conversation = await customer.conversation()
    assert conversation.status is not ConversationStatus.WAITING
    assert [e.data["reason"] for e in await events(running, conversation, "handoff")] == ["requested"]
    assert len(desk.summaries) == 1


async def test_bye_twice_within_five_messages_does_not_hand_over(
    farm: tuple[RunningFarm, RecordingDesk], telegram: FakeTelegramAPI,
) -> None:
    running, desk = farm
    customer = TelegramCustomer(running, telegram, 5353)
    for text in ("Hallo", "Okay, vielen Dank, tschüss!", "Was kostet der Pro-Tarif?",
                 "Okay, vielen Dank, tschüss!", "bye", "bye"):
        await customer.says(text)
    conversation = await customer.conversation()
    assert conversation.status is ConversationStatus.BOT
    assert await events(running, conversation, "handoff") == [] and desk.summaries == []


async def test_a_text_forwarded_many_times_is_not_frustration(
    farm: tuple[RunningFarm, RecordingDesk], whatsapp: FakeWhatsAppAPI,
) -> None:
    running, desk = farm
    payload = json.loads((FIXTURES / "message_forwarded_many_times.json").read_text())
    customer = WhatsAppCustomer(running, whatsapp, "972987654321")
    await customer.sends(payload, "the forwarded text")
    conversation = await customer.conversation()
    assert conversation.status is ConversationStatus.BOT
    assert await events(running, conversation, "handoff") == [] and desk.summaries == []


async def test_a_plain_rasa_moodbot_answers_are_you_a_human_with_its_own_words(
    tmp_path: Path, telegram: FakeTelegramAPI,
) -> None:
    """Rasa's moodbot: its NLU knows "am I talking to a human?"; a German question it does not
    know still gets its ``utter_iamabot`` rather than a handoff or a fallback."""
    bots = {"mood": {
        "project": str(DEMO_PROJECT.parent.parent / "tests" / "rasa_projects" / "moodbot"),
        "languages": ["en"], "default_language": "en", "handoff": {"business_hours": {}},
        "channels": {"telegram": {"token": TG_TOKEN, "webhook_secret": TG_SECRET, "api_base": telegram.url,
                                  "webhook_url": "https://bots.example/webhooks/mood/telegram"}},
    }}
    async with running_farm(tmp_path, bots=bots, desk=desk_config()) as running:
        recording = RecordingDesk()
        service(running).add_desk(recording)
        for chat_id, text in ((5454, "am I talking to a human?"), (5455, "Bist du ein Mensch?")):
            before = len(telegram.calls("sendMessage"))
            async with aiohttp.ClientSession() as http, \
                    http.post(f"{running.url}/webhooks/mood/telegram",
                              json=text_update(chat_id, text, update_id=next(_update_ids)),
                              headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}) as response:
                assert response.status == 200
            await running.farm.settle()
            await wait_until(lambda b=before: len(telegram.calls("sendMessage")) > b, f"an answer to {text!r}")
            answer = "\n".join(c["text"] for c in telegram.calls("sendMessage")[before:])
            assert "I am a bot, powered by Rasa." in answer, answer
        assert recording.summaries == []


async def test_the_same_question_in_a_new_session_is_not_a_repeat(
    farm: tuple[RunningFarm, RecordingDesk], telegram: FakeTelegramAPI,
) -> None:
    """The demo's sessions expire after 60 minutes (Telegram's own message date counts)."""
    running, desk = farm
    customer = TelegramCustomer(running, telegram, 5656)
    three_hours_ago = int(time.time()) - 3 * 3600
    assert HOURS_DE in await customer.says("Wie sind eure Öffnungszeiten?", date=three_hours_ago)
    assert HOURS_DE in await customer.says("Wie sind eure Öffnungszeiten?")
    conversation = await customer.conversation()
    assert conversation.status is ConversationStatus.BOT and desk.summaries == []
    assert len(await events(running, conversation, "session_started")) == 2
