"""Edited messages and Telegram usernames in the web desk, through the real webhook routes with
the platform fakes: a WhatsApp customer who edits a message shows its latest text with the
earlier version struck through (masked like any text), a deleted one is marked deleted; a
Telegram customer is shown with their @username next to the name. Desktop and phone size."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, expect

from tests.fakes.telegram_api import FakeTelegramAPI, text_update
from tests.fakes.whatsapp_api import FakeWhatsAppAPI, post_webhook, text_webhook
from tests.handoff.handoff_support import PASSWORDS, desk_config
from tests.integration.test_media_e2e import (
    TG_SECRET,
    TG_TOKEN,
    WA_PHONE,
    WA_SECRET,
    WA_TOKEN,
    demo_bots,
    edit_payload,
)
from tests.support.desk import log_in
from tests.support.farm import RunningFarm, running_farm
from tests.support.pages import DESKTOP, PHONE, open_page

pytestmark = [
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Please use 'Bot.getUpdates':telegram.warnings.PTBUserWarning"),
]

WA_ID = "491704712001"


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegramAPI]:
    async with FakeTelegramAPI(TG_TOKEN) as api:
        yield api


@pytest.fixture
async def whatsapp() -> AsyncIterator[FakeWhatsAppAPI]:
    async with FakeWhatsAppAPI(WA_TOKEN, WA_PHONE) as api:
        yield api


@pytest.fixture
async def platform_farm(tmp_path: Path, telegram: FakeTelegramAPI,
                        whatsapp: FakeWhatsAppAPI) -> AsyncIterator[RunningFarm]:
    async with running_farm(tmp_path, bots=demo_bots(telegram, whatsapp), desk=desk_config()) as running:
        yield running


async def whatsapp_says(farm: RunningFarm, payload: dict[str, Any]) -> None:
    assert await post_webhook(f"{farm.url}/webhooks/demo/whatsapp", payload, app_secret=WA_SECRET) == 200
    await farm.farm.settle()


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_an_edited_whatsapp_message_shows_its_versions_and_a_telegram_customer_their_username(
    platform_farm: RunningFarm, browser: Browser, size: dict[str, Any]
) -> None:
    farm = platform_farm
    await whatsapp_says(farm, text_webhook(WA_ID, "Ich möchte mit einem Mitarbeiter sprechen", name="Sheena Nelson",
                                           phone_number_id=WA_PHONE))
    first = text_webhook(WA_ID, "Meine Bestellung HW-111 fehlt", name="Sheena Nelson", phone_number_id=WA_PHONE)
    original = first["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    await whatsapp_says(farm, first)
    await whatsapp_says(farm, edit_payload(WA_ID, "edit", original, "Meine Bestellung HW-222 fehlt"))
    second = text_webhook(WA_ID, "Und die Rechnung auch", name="Sheena Nelson", phone_number_id=WA_PHONE)
    await whatsapp_says(farm, second)
    await whatsapp_says(farm, edit_payload(WA_ID, "revoke", second["entry"][0]["changes"][0]["value"]["messages"][0]["id"]))

    update = copy.deepcopy(text_update(4790, "Ich möchte mit einem Mitarbeiter sprechen", update_id=990001))
    update["message"]["from"].update({"first_name": "Anna", "last_name": "Schmidt", "username": "anna_s"})
    async with aiohttp.ClientSession() as http, \
            http.post(f"{farm.url}/webhooks/demo/telegram", json=update,
                      headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}) as response:
        assert response.status == 200
    await farm.farm.settle()

    async with open_page(browser, **size) as desk:
        await log_in(desk, farm.url, "anna", PASSWORDS["anna"])
        queue = desk.locator("#queue-waiting button")
        await expect(queue).to_have_count(2)
        await expect(queue.filter(has_text="Anna Schmidt (@anna_s)")).to_have_count(1)

        await queue.filter(has_text="Sheena Nelson").click()
        edited = desk.locator("#transcript .entry.customer", has_text="HW-222")
        await expect(edited).to_have_count(1)
        await expect(edited.locator(".edited")).to_contain_text("edited · earlier:")
        await expect(edited.locator(".edited s")).to_have_text("Meine Bestellung HW-111 fehlt")
        await expect(desk.locator("#transcript .entry.customer", has_text="HW-111")).to_have_count(1)  # one message
        deleted = desk.locator("#transcript .entry.customer", has_text="Und die Rechnung auch")
        await expect(deleted.locator(".edited")).to_contain_text("deleted by the customer")
        await expect(desk.locator("#transcript .entry.note")).to_have_count(0)  # versions are not agents' notes

        await queue.filter(has_text="Anna Schmidt (@anna_s)").click()
        await expect(desk.locator("#conv-customer")).to_have_text("Anna Schmidt (@anna_s)")
