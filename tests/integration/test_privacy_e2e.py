"""Privacy through the HTTP routes: disclosure, one transcript across channels, erasure on request.

The whole farm runs in-process on a real SQLite file with the local Telegram and WhatsApp
fakes; the engine is the deterministic deletion dialogue of tests/privacy/engines.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from core.model import Identity
from core.privacy.service import PrivacyService
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.fakes.whatsapp_api import FakeWhatsAppAPI, post_webhook, text_webhook
from tests.privacy.engines import ForgetDialogueEngine
from tests.privacy.support import file_bytes, telegram_update
from tests.support.farm import RunningFarm, free_port, running_farm
from tests.support.webchat import receive

ANNA_PHONE = "491701234567"  # Anna's own number in telegram/contact_shared_own.json
ANNA_TG = "111222333"
APP_SECRET = "wa-app-secret"
PHONE_NUMBER_ID = "106540352242922"
DE_DISCLOSURE = "Sie schreiben mit einem automatischen Assistenten"
ERASED = "Ihre Daten und dieser Chatverlauf wurden gelöscht"


@dataclass
class Setup:
    farm: RunningFarm
    telegram: FakeTelegramAPI
    whatsapp: FakeWhatsAppAPI
    http: aiohttp.ClientSession

    async def telegram_text(self, text: str, update_id: int) -> None:
        assert await self.telegram.deliver_webhook(
            telegram_update("text_message.json", text=text, update_id=update_id), session=self.http) == 200

    async def whatsapp_text(self, text: str) -> None:
        status = await post_webhook(f"{self.farm.url}/webhooks/demo/whatsapp", text_webhook(ANNA_PHONE, text),
                                    app_secret=APP_SECRET, session=self.http)
        assert status == 200

    def telegram_sent(self) -> list[str]:
        return [c["text"] for c in self.telegram.calls("sendMessage")]

    def whatsapp_sent(self) -> list[str]:
        return [m["text"]["body"] for m in self.whatsapp.messages() if m.get("type") == "text"]


@asynccontextmanager
async def farm_with_channels(tmp_path: Path) -> AsyncIterator[Setup]:
    project = tmp_path / "project"
    project.mkdir()
    port = free_port()
    async with FakeTelegramAPI() as tg, FakeWhatsAppAPI(phone_number_id=PHONE_NUMBER_ID) as wa:
        bots = {"demo": {"project": str(project), "languages": ["de", "en"], "default_language": "de", "channels": {
            "webchat": {},
            "telegram": {"token": tg.token, "api_base": tg.url, "webhook_secret": "tg-secret",
                         "webhook_url": f"http://127.0.0.1:{port}/webhooks/demo/telegram"},
            "whatsapp": {"access_token": wa.access_token, "app_secret": APP_SECRET, "verify_token": "verify",
                         "phone_number_id": PHONE_NUMBER_ID, "api_base": wa.url},
        }}}
        async with running_farm(tmp_path, bots=bots, port=port, engines={"demo": ForgetDialogueEngine()}) as farm, \
                aiohttp.ClientSession() as http:
            yield Setup(farm, tg, wa, http)


async def bot_says(ws: aiohttp.ClientWebSocketResponse, containing: str) -> dict[str, Any]:
    while True:
        frame = await receive(ws, "message")
        if frame["role"] != "user" and containing in frame["text"]:
            return frame


async def test_web_chat_customer_deletes_their_data_is_told_and_nothing_remains(tmp_path: Path) -> None:
    phrase = "Johannisbeer-Sternwarte-5510"
    async with farm_with_channels(tmp_path) as setup:
        ws = await setup.http.ws_connect(f"{setup.farm.url}/chat/demo/ws")
        await ws.send_json({"type": "hello", "session": None})
        session = (await receive(ws, "welcome"))["session"]
        await ws.send_json({"type": "message", "id": "m1", "text": "Hallo"})
        first = await bot_says(ws, "echo: Hallo")
        assert first["text"].startswith(DE_DISCLOSURE)  # the first bot message says it is a bot
        await ws.send_json({"type": "message", "id": "m2", "text": f"Mein Code ist {phrase}"})
        later = await bot_says(ws, "echo: Mein Code")
        assert DE_DISCLOSURE not in later["text"]
        [contact] = await setup.farm.store.find_contacts("demo", identity=Identity("webchat", session, session))

        await ws.send_json({"type": "message", "id": "m3", "text": "lösch meine daten"})
        await bot_says(ws, "wirklich")
        await ws.send_json({"type": "message", "id": "m4", "text": "ja"})
        await bot_says(ws, ERASED)  # the confirmation reaches the customer after the erasure
        await setup.farm.farm.settle()

        assert phrase.encode() not in file_bytes(setup.farm.db_path)
        assert await PrivacyService(setup.farm.store).export(contact.id, actor="admin:test") == {}
        assert any(a.action == "forget" and a.actor == "customer" and a.target == contact.id
                   for a in await setup.farm.store.audit_log(bot="demo"))
        await ws.close()


async def test_telegram_and_whatsapp_person_gets_one_transcript_then_erasure_removes_all(tmp_path: Path) -> None:
    tg_phrase, wa_phrase = "Telegramm-Pflaume-3321", "WhatsApp-Kirsche-8876"
    async with farm_with_channels(tmp_path) as setup:
        await setup.telegram_text(f"Hallo, {tg_phrase}", update_id=1)
        await setup.farm.farm.settle()
        assert setup.telegram_sent()[0].startswith(DE_DISCLOSURE)

        await setup.whatsapp_text(f"Hallo per WhatsApp, {wa_phrase}")
        await setup.farm.farm.settle()
        assert setup.whatsapp_sent()[0].startswith(DE_DISCLOSURE)

        own = telegram_update("contact_shared_own.json", update_id=2)
        assert await setup.telegram.deliver_webhook(own, session=setup.http) == 200
        await setup.farm.farm.settle()
        store = setup.farm.store
        [anna] = await store.find_contacts("demo", phone=ANNA_PHONE)
        assert {i.channel for i in anna.identities} == {"telegram", "whatsapp"}
        conversation = await store.conversation_for("demo", anna.id)
        users = [(e.channel, e.data["text"]) for e in await store.transcript(conversation.id) if e.type == "user"]
        assert users == [("telegram", f"Hallo, {tg_phrase}"), ("whatsapp", f"Hallo per WhatsApp, {wa_phrase}"),
                         ("telegram", "")]

        # Replies follow the channel used last: the deletion dialogue happens on WhatsApp.
        await setup.whatsapp_text("lösch meine daten")
        await setup.farm.farm.settle()
        assert "wirklich" in setup.whatsapp_sent()[-1]
        await setup.whatsapp_text("ja")
        await setup.farm.farm.settle()
        assert ERASED in setup.whatsapp_sent()[-1]
        assert setup.whatsapp.messages()[-1]["to"] == ANNA_PHONE

        data = file_bytes(setup.farm.db_path)
        assert tg_phrase.encode() not in data and wa_phrase.encode() not in data
        assert await PrivacyService(store).export(anna.id, actor="admin:test") == {}
        assert await store.find_contacts("demo", phone=ANNA_PHONE) == []
        exported = json.dumps(await store.export_contact(anna.id))
        assert ANNA_PHONE not in exported
