"""Attachments between the web desk and customers on Telegram and WhatsApp, in chromium, through
the platform fakes: the customer's photo (fetched from the platform with getFile / the Graph media
URL) shows inline in the desk, and the agent's "Attach file…" reaches the customer through the
platform's media API (Telegram sendPhoto multipart; WhatsApp upload to /media, then by id)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from playwright.async_api import FilePayload, Page, expect

from tests.fakes.telegram_api import FakeTelegramAPI, photo_update, text_update
from tests.fakes.whatsapp_api import FakeWhatsAppAPI, post_webhook, text_webhook, webhook
from tests.handoff.handoff_support import PASSWORDS, desk_config
from tests.handoff.scripted_engine import ScriptedEngine
from tests.support.desk import log_in
from tests.support.farm import DEMO_PROJECT, RunningFarm, running_farm
from tests.support.files import pdf, png

pytestmark = [
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Please use 'Bot.getUpdates':telegram.warnings.PTBUserWarning"),
]

TG_TOKEN = "7000000017:AAH-desk-files"
TG_SECRET = "desk-files-secret"
WA_TOKEN = "EAAG-desk-files"
WA_SECRET = "wa-desk-files"
WA_PHONE = "1122334455669"
PHOTO = png(10, 7, (30, 160, 60))
_ids = itertools.count(990_000)


async def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        await asyncio.sleep(0.02)


@pytest_asyncio.fixture
async def platforms(tmp_path: Path) -> AsyncIterator[tuple[RunningFarm, FakeTelegramAPI, FakeWhatsAppAPI]]:
    async with FakeTelegramAPI(TG_TOKEN) as telegram, FakeWhatsAppAPI(WA_TOKEN, WA_PHONE) as whatsapp:
        bots = {"demo": {
            "project": str(DEMO_PROJECT), "languages": ["de", "en"], "default_language": "de",
            "handoff": {"business_hours": {}},
            "channels": {
                "telegram": {"token": TG_TOKEN, "webhook_secret": TG_SECRET, "api_base": telegram.url,
                             "webhook_url": "https://bots.example/webhooks/demo/telegram", "set_webhook": False},
                "whatsapp": {"access_token": WA_TOKEN, "app_secret": WA_SECRET, "verify_token": "v",
                             "phone_number_id": WA_PHONE, "api_base": whatsapp.url, "read_receipts": False},
            },
        }}
        async with running_farm(tmp_path, bots=bots, desk=desk_config(),
                                engines={"demo": ScriptedEngine()}) as farm:
            yield farm, telegram, whatsapp


async def telegram_sends(farm: RunningFarm, update: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as http, http.post(
            f"{farm.url}/webhooks/demo/telegram", json={"update_id": next(_ids), **update},
            headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}) as response:
        assert response.status == 200
    await farm.farm.settle()


async def whatsapp_sends(farm: RunningFarm, payload: dict[str, Any]) -> None:
    assert await post_webhook(f"{farm.url}/webhooks/demo/whatsapp", payload, app_secret=WA_SECRET) == 200
    await farm.farm.settle()


async def open_conversation(desk: Page, channel_label: str) -> None:
    await desk.locator("#queue-waiting button", has_text=channel_label).first.click()
    await desk.click("#btn-claim")
    await expect(desk.locator("#conv-status")).to_have_text("with agent")


async def image_loaded(page: Page, selector: str, width: int) -> None:
    await page.wait_for_function(
        "([sel, w]) => [...document.querySelectorAll(sel)].some(i => i.complete && i.naturalWidth === w)",
        arg=[selector, width], timeout=5000)


async def test_telegram_and_whatsapp_files_go_both_ways_through_the_web_desk(
    platforms: tuple[RunningFarm, FakeTelegramAPI, FakeWhatsAppAPI], desk_page: Page
) -> None:
    farm, telegram, whatsapp = platforms
    desk = desk_page
    await telegram_sends(farm, text_update(5150001, "Mitarbeiter bitte"))
    await log_in(desk, farm.url, "anna", PASSWORDS["anna"])
    await open_conversation(desk, "Telegram")

    await telegram_sends(farm, photo_update(5150001, telegram.add_file(PHOTO), caption="So sieht es aus"))
    await expect(desk.locator("#transcript .entry.customer .files img.thumb")).to_have_count(1)
    await image_loaded(desk, "#transcript .entry.customer .files img.thumb", 10)
    assert telegram.count("getFile") == 1

    await desk.fill("#composer-text", "Bitte so anschließen")
    await desk.set_input_files("#file-input", files=[FilePayload(name="anschluss.png", mimeType="image/png", buffer=PHOTO)])
    await wait_until(lambda: bool(telegram.uploads), "the photo sent to Telegram")
    [upload] = telegram.uploads
    assert (upload.method, upload.filename, upload.data) == ("sendPhoto", "anschluss.png", PHOTO)
    [sent] = telegram.calls("sendPhoto")
    assert sent["chat_id"] == 5150001 and sent["caption"] == "Anna Schmidt: Bitte so anschließen"

    await whatsapp_sends(farm, text_webhook("491709998877", "Mitarbeiter bitte", phone_number_id=WA_PHONE))
    await open_conversation(desk, "WhatsApp")
    media_id = whatsapp.add_media(PHOTO, "image/png")
    await whatsapp_sends(farm, webhook({
        "contacts": [{"profile": {"name": "Ben"}, "wa_id": "491709998877"}],
        "messages": [{"from": "491709998877", "id": "wamid.deskfiles1", "timestamp": str(int(time.time())),
                      "type": "image", "image": {"mime_type": "image/png", "sha256": "x", "id": media_id}}],
    }, phone_number_id=WA_PHONE))
    await image_loaded(desk, "#transcript .entry.customer .files img.thumb", 10)

    await desk.set_input_files("#file-input", files=[FilePayload(name="Vertrag.pdf", mimeType="application/pdf", buffer=pdf("Vertrag"))])
    await wait_until(lambda: any(m.get("type") == "document" for m in whatsapp.messages()), "the document")
    assert whatsapp.uploaded() == [("application/pdf", pdf("Vertrag"), "Vertrag.pdf")]
    [document] = [m for m in whatsapp.messages() if m.get("type") == "document"]
    assert document["to"] == "491709998877" and document["document"]["filename"] == "Vertrag.pdf"
    await expect(desk.locator("#transcript .entry.agent .files a.file")).to_contain_text("Vertrag.pdf")
