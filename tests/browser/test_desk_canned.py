"""Canned replies in the web desk: only the bot's and language's ones are offered; one is
inserted into the reply box, edited and sent, and the customer receives it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from playwright.async_api import Browser, Page, expect

from tests.browser.test_desk import log_in
from tests.handoff.handoff_support import PASSWORDS, bots, desk_config
from tests.support.farm import RunningFarm, running_farm

CANNED = [
    {"title": "Rücksendung", "text": "Sie können die Ware innerhalb von 30 Tagen zurücksenden.",
     "bot": "demo", "language": "de"},
    {"title": "Returns", "text": "You can return the goods within 30 days.", "bot": "demo", "language": "en"},
    {"title": "Andere Marke", "text": "Nicht für diesen Bot.", "bot": "other"},
    {"title": "Danke", "text": "Danke für Ihre Geduld!"},
]


@pytest_asyncio.fixture
async def desk_page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 860})
    page = await context.new_page()
    try:
        yield page
    finally:
        await context.close()


@pytest_asyncio.fixture
async def farm(tmp_path: Path) -> AsyncIterator[RunningFarm]:
    async with running_farm(tmp_path, bots=bots(), desk={**desk_config(), "canned": CANNED}) as running:
        yield running


async def test_a_canned_reply_for_the_bot_and_language_is_inserted_edited_and_sent(
    farm: RunningFarm, page: Page, desk_page: Page
) -> None:
    customer, desk = page, desk_page
    await customer.goto(f"{farm.url}/chat/demo")
    await expect(customer.locator("#status")).to_have_text("online")
    await customer.fill("#input", "Ich möchte mit einem Mitarbeiter sprechen")
    await customer.press("#input", "Enter")
    await expect(customer.locator(".msg.bot").last).to_contain_text("Person aus unserem Team")

    await log_in(desk, farm.url, "anna", PASSWORDS["anna"])
    await desk.locator("#queue-waiting button").click()
    await desk.click("#btn-claim")
    await expect(desk.locator("#canned option")).to_have_text(["Insert…", "Rücksendung", "Danke"])
    await desk.fill("#composer-text", "Hallo! ")
    await desk.press("#composer-text", "Alt+c")
    await expect(desk.locator("#canned")).to_be_focused()
    await desk.select_option("#canned", label="Rücksendung")
    composer = desk.locator("#composer-text")
    await expect(composer).to_have_value("Hallo! Sie können die Ware innerhalb von 30 Tagen zurücksenden.")
    await expect(composer).to_be_focused()
    await desk.keyboard.type(" Ihr Team")
    await desk.press("#composer-text", "Control+Enter")
    await expect(customer.locator(".msg.agent")).to_contain_text(
        "Hallo! Sie können die Ware innerhalb von 30 Tagen zurücksenden. Ihr Team")
    await expect(composer).to_have_value("")
