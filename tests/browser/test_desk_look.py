"""A desk people like to use: WCAG 2.1 AA contrast on every desk page state, at phone and
desktop size (the offline checker in tests/browser/contrast.py); on a phone the top bar and
the reply box stay in view while the transcript scrolls; shortcuts are shown; Close asks first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, expect

from tests.browser.contrast import assert_contrast
from tests.handoff.handoff_support import PASSWORDS
from tests.support.desk import claim_first_waiting, log_in
from tests.support.farm import RunningFarm
from tests.support.pages import open_page

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}
CANNED = [{"title": "Danke", "text": "Danke für Ihre Geduld!"}]


@pytest_asyncio.fixture
async def desk_page(browser: Browser) -> AsyncIterator[Page]:
    async with open_page(browser, viewport=PHONE, is_mobile=True, has_touch=True) as page:
        yield page


@pytest.fixture
def desk_settings() -> dict[str, Any]:
    return {"canned": CANNED}


async def test_desk_meets_aa_contrast_keeps_bars_in_view_on_a_phone_and_confirms_close(
    farm: RunningFarm, page: Page, desk_page: Page
) -> None:
    customer, desk = page, desk_page
    await customer.goto(f"{farm.url}/chat/demo")
    await expect(customer.locator("#status")).to_have_text("online")
    for text in ("Wo ist meine Bestellung?", "Das ist doch unglaublich, niemand hilft mir!",
                 "Ich möchte mit einem Mitarbeiter sprechen"):
        await customer.fill("#input", text)
        await customer.press("#input", "Enter")
        await expect(customer.locator(".msg.user").last).to_contain_text(text[:10])
    await expect(customer.locator(".msg.bot").last).to_contain_text("Person")

    await desk.goto(f"{farm.url}/desk")
    await expect(desk.locator("#login-form")).to_be_visible()
    await assert_contrast(desk, at_least=4)  # the login page
    await log_in(desk, farm.url, "anna", PASSWORDS["anna"])
    await expect(desk.locator("#live")).to_have_text("live")
    await expect(desk.locator("#queue-waiting button")).to_have_count(1)
    await assert_contrast(desk, at_least=10)  # the queue, nothing selected

    await claim_first_waiting(desk)
    await expect(desk.locator("#conv-status")).to_have_text("with agent")
    for n in range(8):
        await desk.fill("#composer-text", f"!Notiz {n}: bitte prüfen")
        await desk.click("#btn-reply")
        await expect(desk.locator("#transcript .entry.note")).to_have_count(n + 1)
    await desk.fill("#composer-text", "!")
    await expect(desk.locator("#composer-hint")).to_be_visible()
    await desk.click("#btn-transfer")
    await desk.click("#btn-close")
    await expect(desk.locator("#close-confirm")).to_be_visible()
    await assert_contrast(desk, at_least=40)  # a conversation with every kind of entry and both panels open

    # On a phone: the top bar and the reply box stay in view wherever the page is scrolled.
    await desk.mouse.wheel(0, 3000)
    await desk.evaluate("window.scrollTo(0, document.body.scrollHeight / 2)")
    top = await desk.locator(".top").bounding_box()
    composer = await desk.locator("#composer").bounding_box()
    assert top is not None and composer is not None
    assert top["y"] == 0
    assert composer["y"] + composer["height"] <= PHONE["height"] + 1

    await desk.click("#btn-close-no")
    await expect(desk.locator("#close-confirm")).to_be_hidden()
    await expect(desk.locator("#conv-status")).to_have_text("with agent")

    await desk.set_viewport_size(DESKTOP)
    await expect(desk.locator("#shortcuts")).to_be_visible()
    await expect(desk.locator("#shortcuts")).to_contain_text("Ctrl+Enter send")
    await assert_contrast(desk, at_least=40)
    await desk.click("#btn-close")
    await desk.click("#btn-close-yes")
    await expect(desk.locator("#conv-status")).to_have_text("closed")
    await expect(desk.locator("#composer")).to_be_hidden()
    await desk.fill("#search-text", "Bestellung")
    await desk.press("#search-text", "Enter")
    await expect(desk.locator("#search-results button")).to_have_count(1)
    await assert_contrast(desk, at_least=40)  # closed, with history results
