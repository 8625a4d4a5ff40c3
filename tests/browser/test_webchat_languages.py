"""The web chat in the customer's language, in a real browser: the browser's language sets
the page and hints the replies; what the customer writes switches them; Turkish is data only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
import yaml
from playwright.async_api import Browser, Page, expect

from tests.handoff.handoff_support import desk_config
from tests.support.farm import DEMO_PROJECT, RunningFarm, running_farm

FARM_YML = Path(__file__).resolve().parents[2] / "config" / "farm.yml"


def demo_webchat() -> dict[str, Any]:
    """The demo's web chat block as config/farm.yml ships it (its Turkish labels are data there)."""
    raw = yaml.safe_load(FARM_YML.read_text(encoding="utf-8"))
    webchat = raw["bots"]["demo"]["channels"]["webchat"]
    return {"labels": webchat["labels"]}


@pytest_asyncio.fixture
async def farm(tmp_path: Path) -> AsyncIterator[RunningFarm]:
    bots = {"demo": {"project": str(DEMO_PROJECT), "languages": ["de", "en", "tr"], "default_language": "de",
                     "handoff": {"business_hours": {}}, "channels": {"webchat": demo_webchat()}}}
    async with running_farm(tmp_path, bots=bots, desk=desk_config()) as running:  # agents exist: a person can come
        yield running


async def page_in(browser: Browser, locale: str) -> Page:
    context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                        locale=locale)
    return await context.new_page()


async def say(page: Page, text: str) -> None:
    await page.fill("#input", text)
    await page.press("#input", "Enter")


async def test_english_browser_gets_an_english_page_and_replies_and_follows_a_switch_to_german(
        farm: RunningFarm, browser: Browser) -> None:
    page = await page_in(browser, "en-US")
    try:
        await page.goto(f"{farm.url}/chat/demo")
        assert await page.get_attribute("html", "lang") == "en"
        await expect(page.locator("#send")).to_have_text("Send")
        await say(page, "hi")
        await expect(page.locator(".msg.bot").first).to_contain_text("Hi! I'm Hostwerk's digital assistant")
        await say(page, "Wie sind Ihre Öffnungszeiten?")
        await expect(page.locator(".msg.bot").last).to_contain_text("Montag bis Freitag von 8 bis 18 Uhr")
    finally:
        await page.context.close()


async def test_turkish_walk_through_page_greeting_hours_and_a_person(farm: RunningFarm, browser: Browser) -> None:
    page = await page_in(browser, "tr-TR")
    try:
        await page.goto(f"{farm.url}/chat/demo")
        assert await page.get_attribute("html", "lang") == "tr"
        await expect(page.locator("#send")).to_have_text("Gönder")
        await say(page, "Merhaba")
        first = page.locator(".msg.bot").first
        await expect(first).to_contain_text("Otomatik bir asistanla yazışıyorsunuz")  # the disclosure, in Turkish
        await expect(first).to_contain_text("Ben Hostwerk'in dijital asistanıyım")
        await say(page, "Çalışma saatleriniz nedir?")
        await expect(page.locator(".msg.bot").last).to_contain_text("pazartesiden cumaya 8:00 ile 18:00")
        await say(page, "Bir insanla konuşmak istiyorum")
        await expect(page.locator(".msg.bot").last).to_contain_text("ekibimizden bir kişiye aktarıyorum")
    finally:
        await page.context.close()
