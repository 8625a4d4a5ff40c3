"""Issue 15, media and honesty, through the real webhook routes with the platform fakes and the
demo bot: photos, voice notes and locations (Telegram and WhatsApp, real fixture payloads) get
the answer for their kind, are kept in the transcript, and two in a row do not hand over;
WhatsApp ``unsupported`` is answered; a WhatsApp message is marked read at the fake Graph API;
a farm with no agent channel says so honestly and warns at start."""

from __future__ import annotations

import copy
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from core.model import Conversation, ConversationStatus, Event, Identity
from tests.fakes.telegram_api import FakeTelegramAPI, text_update
from tests.fakes.whatsapp_api import FakeWhatsAppAPI, post_webhook, text_webhook
from tests.handoff.handoff_support import desk_config
from tests.support.farm import DEMO_PROJECT, RunningFarm, running_farm
from tests.support.wait import eventually

pytestmark = [
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Please use 'Bot.getUpdates':telegram.warnings.PTBUserWarning"),
]

TG_TOKEN = "7000000015:AAH-media-token"
TG_SECRET = "media-secret"
WA_TOKEN = "EAAG-media"
WA_SECRET = "wa-media-secret"
WA_PHONE = "1122334455667"
FIXTURES = Path("/work/shared/fixtures/platforms")
_ids = itertools.count(7000)


def fixture(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / name).read_text()))


def telegram_update(name: str, chat_id: int) -> dict[str, Any]:
    """A Telegram fixture re-addressed to ``chat_id`` (sender and chat), with fresh ids and date."""
    update = copy.deepcopy(fixture(name))
    message = update["message"]
    message["from"]["id"] = message["chat"]["id"] = chat_id
    message["from"]["language_code"] = "de"
    message["message_id"] = next(_ids)
    message["date"] = int(time.time())
    if "contact" in message and message["contact"].get("user_id") is not None:
        message["contact"]["user_id"] = chat_id
    update["update_id"] = next(_ids)
    return update


def whatsapp_payload(name: str, wa_id: str) -> dict[str, Any]:
    """A WhatsApp fixture re-addressed to our number and ``wa_id``, with a fresh wamid and time."""
    payload = copy.deepcopy(fixture(name))
    value = payload["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = WA_PHONE
    for contact in value.get("contacts", []):
        contact["wa_id"] = wa_id
    for message in value["messages"]:
        message["from"] = wa_id
        message["id"] = f"wamid.media{next(_ids)}"
        message["timestamp"] = str(int(time.time()))
    return payload


async def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    await eventually(predicate, timeout=timeout, message=f"timed out waiting for: {what}")


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegramAPI]:
    async with FakeTelegramAPI(TG_TOKEN) as api:
        yield api


@pytest.fixture
async def whatsapp() -> AsyncIterator[FakeWhatsAppAPI]:
    async with FakeWhatsAppAPI(WA_TOKEN, WA_PHONE) as api:
        yield api


def demo_bots(telegram: FakeTelegramAPI, whatsapp: FakeWhatsAppAPI, **handoff: Any) -> dict[str, Any]:
    return {"demo": {
        "project": str(DEMO_PROJECT), "languages": ["de", "en"], "default_language": "de",
        "handoff": {"business_hours": {}, **handoff},
        "channels": {
            "telegram": {"token": TG_TOKEN, "webhook_secret": TG_SECRET, "api_base": telegram.url,
                         "webhook_url": "https://bots.example/webhooks/demo/telegram"},
            "whatsapp": {"access_token": WA_TOKEN, "app_secret": WA_SECRET, "verify_token": "v",
                         "phone_number_id": WA_PHONE, "api_base": whatsapp.url},
        },
    }}


@pytest.fixture
async def farm(tmp_path: Path, telegram: FakeTelegramAPI, whatsapp: FakeWhatsAppAPI) -> AsyncIterator[RunningFarm]:
    async with running_farm(tmp_path, bots=demo_bots(telegram, whatsapp), desk=desk_config()) as running:
        yield running


class Telegram:
    def __init__(self, farm: RunningFarm, api: FakeTelegramAPI, chat_id: int) -> None:
        self.farm, self.api, self.chat_id = farm, api, chat_id

    def received(self) -> list[str]:
        return [str(c["text"]) for c in self.api.calls("sendMessage") if c["chat_id"] == self.chat_id]

    async def sends(self, update: dict[str, Any]) -> str:
        before = len(self.received())
        async with aiohttp.ClientSession() as http, \
                http.post(f"{self.farm.url}/webhooks/demo/telegram", json=update,
                          headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}) as response:
            assert response.status == 200
        await self.farm.farm.settle()
        await wait_until(lambda: len(self.received()) > before, "an answer")
        return "\n".join(self.received()[before:])

    async def conversation(self) -> Conversation:
        [contact] = await self.farm.store.find_contacts(
            "demo", identity=Identity("telegram", str(self.chat_id), str(self.chat_id)))
        return await self.farm.store.conversation_for("demo", contact.id)


class WhatsApp:
    def __init__(self, farm: RunningFarm, api: FakeWhatsAppAPI, wa_id: str) -> None:
        self.farm, self.api, self.wa_id = farm, api, wa_id

    def received(self) -> list[str]:
        return [str(m["text"]["body"]) for m in self.api.messages()
                if m.get("to") == self.wa_id and m.get("type") == "text"]

    async def sends(self, payload: dict[str, Any]) -> str:
        before = len(self.received())
        assert await post_webhook(f"{self.farm.url}/webhooks/demo/whatsapp", payload, app_secret=WA_SECRET) == 200
        await self.farm.farm.settle()
        await wait_until(lambda: len(self.received()) > before, "an answer")
        return "\n".join(self.received()[before:])

    async def conversation(self) -> Conversation:
        [contact] = await self.farm.store.find_contacts(
            "demo", identity=Identity("whatsapp", self.wa_id, self.wa_id))
        return await self.farm.store.conversation_for("demo", contact.id)


async def user_events(farm: RunningFarm, conversation: Conversation) -> list[Event]:
    return [e for e in await farm.store.transcript(conversation.id, limit=500) if e.type == "user"]


def intent(event: Event) -> str:
    return str(event.data["parse_data"]["intent"]["name"])


async def test_telegram_photo_voice_and_location_get_their_answers_and_never_hand_over(
    farm: RunningFarm, telegram: FakeTelegramAPI,
) -> None:
    customer = Telegram(farm, telegram, 4711)
    voice = await customer.sends(telegram_update("telegram/official/tg_update_message_voice.ADAPTED.json", 4711))
    assert "Sprachnachricht erhalten" in voice and "„Mensch“" in voice, voice
    location = await customer.sends(telegram_update("telegram/location.json", 4711))
    assert "Standort erhalten" in location, location
    sticker = await customer.sends(telegram_update("telegram/sticker.json", 4711))
    assert "Sticker" in sticker, sticker

    conversation = await customer.conversation()
    assert conversation.status is ConversationStatus.BOT  # three media in a row: no fallback handoff
    events = await user_events(farm, conversation)
    assert [intent(e) for e in events] == ["media_voice", "media_location", "media_sticker"]
    assert events[0].data["attachments"][0]["file_id"] == "AwADBAADbXXXXXXXXXXXGBdhD2l6_XX"
    assert events[0].data["attachments"][0]["mime_type"] == "audio/ogg"
    assert events[0].data["attachments"][0]["size"] == 23000  # bytes, as Telegram states them
    assert events[1].data["location"] == {"latitude": 52.520008, "longitude": 13.404954,
                                          "name": None, "address": None}


async def test_telegram_photo_with_caption_is_understood_from_the_caption(
    farm: RunningFarm, telegram: FakeTelegramAPI,
) -> None:
    customer = Telegram(farm, telegram, 4712)
    update = telegram_update("telegram/photo_with_caption.json", 4712)
    update["message"]["caption"] = "Wie sind eure Öffnungszeiten?"
    answer = await customer.sends(update)
    assert "Montag bis Freitag" in answer, answer
    bare = telegram_update("telegram/official/tg_update_message_photo.ADAPTED.json", 4712)
    del bare["message"]["caption"]
    photo = await customer.sends(bare)
    assert "Bild erhalten" in photo, photo


async def test_telegram_own_contact_share_is_acknowledged(farm: RunningFarm, telegram: FakeTelegramAPI) -> None:
    customer = Telegram(farm, telegram, 4713)
    answer = await customer.sends(telegram_update("telegram/contact_shared_own.json", 4713))
    assert "Telefonnummer gespeichert" in answer, answer
    [event] = await user_events(farm, await customer.conversation())
    assert intent(event) == "contact_shared"


async def test_whatsapp_media_get_their_answers_are_kept_and_two_in_a_row_do_not_hand_over(
    farm: RunningFarm, whatsapp: FakeWhatsAppAPI,
) -> None:
    customer = WhatsApp(farm, whatsapp, "491704711000")
    image = await customer.sends(whatsapp_payload("whatsapp/message_image.json", customer.wa_id))
    assert "Bild erhalten" in image, image
    voice = await customer.sends(whatsapp_payload("whatsapp/message_voice.json", customer.wa_id))
    assert "Sprachnachricht erhalten" in voice, voice
    location = await customer.sends(whatsapp_payload("whatsapp/official/wa_message_location.json", customer.wa_id))
    assert "Standort erhalten" in location, location
    contacts = await customer.sends(whatsapp_payload("whatsapp/official/wa_message_contacts.json", customer.wa_id))
    assert "Kontaktkarte" in contacts, contacts

    conversation = await customer.conversation()
    assert conversation.status is ConversationStatus.BOT
    events = await user_events(farm, conversation)
    assert [intent(e) for e in events] == ["media_image", "media_voice", "media_location", "media_contact"]
    image_ref = events[0].data["attachments"][0]
    assert image_ref["kind"] == "image" and image_ref["file_id"] and image_ref["mime_type"] == "image/jpeg"
    location_data = events[2].data["location"]
    assert location_data["latitude"] is not None and location_data["longitude"] is not None
    assert events[3].data["contacts"][0]["name"] and events[3].data["contacts"][0]["phone"].startswith("+")


async def test_whatsapp_unsupported_is_answered_and_every_message_is_marked_read(
    farm: RunningFarm, whatsapp: FakeWhatsAppAPI,
) -> None:
    customer = WhatsApp(farm, whatsapp, "491704711001")
    payload = whatsapp_payload("whatsapp/official/wa_message_unsupported.json", customer.wa_id)
    wamid = payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    answer = await customer.sends(payload)
    assert "konnte ich nicht lesen" in answer, answer
    await wait_until(lambda: any(r.get("message_id") == wamid for r in whatsapp.receipts()), "a read receipt")
    [receipt] = [r for r in whatsapp.receipts() if r.get("message_id") == wamid]
    assert receipt["status"] == "read" and receipt["typing_indicator"] == {"type": "text"}

    text = text_webhook(customer.wa_id, "Wie sind eure Öffnungszeiten?", phone_number_id=WA_PHONE)
    text_wamid = text["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    await customer.sends(text)
    await wait_until(lambda: any(r.get("message_id") == text_wamid for r in whatsapp.receipts()), "a read receipt")


async def test_read_receipts_can_be_switched_off(
    tmp_path: Path, telegram: FakeTelegramAPI, whatsapp: FakeWhatsAppAPI,
) -> None:
    bots = demo_bots(telegram, whatsapp)
    bots["demo"]["channels"]["whatsapp"]["read_receipts"] = False
    async with running_farm(tmp_path, bots=bots, desk=desk_config()) as running:
        customer = WhatsApp(running, whatsapp, "491704711002")
        await customer.sends(text_webhook(customer.wa_id, "Wie sind eure Öffnungszeiten?", phone_number_id=WA_PHONE))
        await running.farm.services["read_receipts"].drain()
        assert whatsapp.receipts() == []


async def test_a_farm_without_an_agent_channel_says_so_and_offers_the_alternatives(
    tmp_path: Path, telegram: FakeTelegramAPI, whatsapp: FakeWhatsAppAPI, caplog: pytest.LogCaptureFixture,
) -> None:
    bots = demo_bots(telegram, whatsapp, contact_email="hilfe@nordhost.example", contact_phone="+49 40 123456")
    with caplog.at_level(logging.WARNING):
        async with running_farm(tmp_path, bots=bots, desk={"web": {"enabled": False}}) as running:
            assert any("handoff.no_agent_channel" in r.getMessage() and r.levelno == logging.WARNING
                       for r in caplog.records)
            customer = Telegram(running, telegram, 4714)
            answer = await customer.sends(text_update(4714, "Ich will einen Menschen sprechen", update_id=next(_ids)))
            assert "niemand aus unserem Team" in answer, answer
            assert "hilfe@nordhost.example" in answer and "+49 40 123456" in answer and "zurück" in answer
            assert "Minuten" not in answer  # no promised wait
            conversation = await customer.conversation()
            handoffs = [e for e in await running.store.transcript(conversation.id, limit=100) if e.type == "handoff"]
            assert {"action": "no_desk", "offered": ["email", "phone", "callback"]} in [e.data for e in handoffs]

            # Nobody re-pings "everyone is still busy" later either, however long it waits.
            service = running.farm.services["handoff"]
            service.clock = lambda: datetime.now(UTC) + timedelta(hours=2)
            assert await service.reping_due() == 0

            # The phone number for the call back is kept in the transcript.
            update = text_update(4714, "0171 2345678", update_id=next(_ids))
            async with aiohttp.ClientSession() as http, \
                    http.post(f"{running.url}/webhooks/demo/telegram", json=update,
                              headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}) as response:
                assert response.status == 200
            await running.farm.settle()
            texts = [e.data.get("text") for e in await user_events(running, conversation)]
            assert "0171 2345678" in texts


async def test_a_farm_with_desk_agents_keeps_the_ordinary_handoff_notice(
    farm: RunningFarm, telegram: FakeTelegramAPI,
) -> None:
    customer = Telegram(farm, telegram, 4715)
    answer = await customer.sends(text_update(4715, "Ich will einen Menschen sprechen", update_id=next(_ids)))
    assert "Person aus unserem Team" in answer and "niemand" not in answer, answer


def edit_payload(wa_id: str, kind: str, original: str, text: str | None = None) -> dict[str, Any]:
    """A WhatsApp ``edit`` / ``revoke`` message in the shape of Meta's webhook reference."""
    payload = text_webhook(wa_id, "x", phone_number_id=WA_PHONE)
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    del message["text"]
    message["type"] = kind
    message[kind] = {"original_message_id": original}
    if text is not None:
        message[kind]["message"] = {"type": "text", "text": {"body": text}}
    return payload


async def test_whatsapp_edits_and_revokes_are_kept_as_versions_and_not_answered(
    farm: RunningFarm, whatsapp: FakeWhatsAppAPI,
) -> None:
    customer = WhatsApp(farm, whatsapp, "491704711003")
    first = text_webhook(customer.wa_id, "Wie sind eure Öffnungszeiten?", phone_number_id=WA_PHONE)
    original = first["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    await customer.sends(first)
    answered = len(customer.received())
    for payload in (edit_payload(customer.wa_id, "edit", original, "Wie sind eure Öffnungszeiten am Samstag?"),
                    edit_payload(customer.wa_id, "revoke", original)):
        assert await post_webhook(f"{farm.url}/webhooks/demo/whatsapp", payload, app_secret=WA_SECRET) == 200
        await farm.farm.settle()
    conversation = await customer.conversation()
    notes = [e.data for e in await farm.store.transcript(conversation.id, limit=100) if e.type == "note"]
    assert [(n["kind"], n["original_message_id"]) for n in notes] == [
        ("customer_edit", f"whatsapp:{original}"), ("customer_revoke", f"whatsapp:{original}")]
    assert notes[0]["new_text"] == "Wie sind eure Öffnungszeiten am Samstag?"
    assert len(customer.received()) == answered  # neither was answered as a new message
    assert len(await user_events(farm, conversation)) == 1


async def test_whatsapp_number_change_moves_the_identity_and_keeps_the_history(
    farm: RunningFarm, whatsapp: FakeWhatsAppAPI,
) -> None:
    old, new = "491704711004", "491704711005"
    customer = WhatsApp(farm, whatsapp, old)
    await customer.sends(text_webhook(old, "Wie sind eure Öffnungszeiten?", phone_number_id=WA_PHONE))
    before = await customer.conversation()
    payload = text_webhook(old, "x", phone_number_id=WA_PHONE)
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    del message["text"]
    message["type"] = "system"
    message["system"] = {"body": f"User A changed from {old} to {new}", "new_wa_id": new,
                         "type": "user_changed_number"}
    assert await post_webhook(f"{farm.url}/webhooks/demo/whatsapp", payload, app_secret=WA_SECRET) == 200
    await farm.farm.settle()

    moved = WhatsApp(farm, whatsapp, new)
    assert await farm.store.find_contacts("demo", identity=Identity("whatsapp", old, old)) == []
    after = await moved.conversation()
    assert after.id == before.id and after.contact_id == before.contact_id  # same contact, same history
    assert "Bestellnummer" in await moved.sends(text_webhook(new, "Wo ist meine Bestellung?", phone_number_id=WA_PHONE))
    notes = [e.data for e in await farm.store.transcript(after.id, limit=100) if e.type == "note"]
    assert [n["kind"] for n in notes] == ["customer_number_changed"]
    assert len(await user_events(farm, after)) == 2


async def test_whatsapp_order_and_completed_flow_are_answered_and_kept(
    farm: RunningFarm, whatsapp: FakeWhatsAppAPI,
) -> None:
    customer = WhatsApp(farm, whatsapp, "491704711006")
    answer = await customer.sends(whatsapp_payload("whatsapp/message_order.json", customer.wa_id))
    assert "Bestellung erhalten" in answer, answer
    flow = text_webhook(customer.wa_id, "x", phone_number_id=WA_PHONE)
    message = flow["entry"][0]["changes"][0]["value"]["messages"][0]
    del message["text"]
    message["type"] = "interactive"
    message["interactive"] = {"type": "nfm_reply", "nfm_reply": {
        "name": "flow", "body": "Sent", "response_json": '{"flow_token": "t1", "email": "a@example.org"}'}}
    assert "Formular erhalten" in await customer.sends(flow)
    conversation = await customer.conversation()
    assert conversation.status is ConversationStatus.BOT
    events = await user_events(farm, conversation)
    assert [intent(e) for e in events] == ["media_order", "media_form_reply"]
    assert events[0].data["attachments"][0]["name"] == "3× HAMBURGER, 2× FRENCH_FRIES, 2× SODA"
    assert "a@example.org" in events[1].data["attachments"][0]["caption"]
