"""Canned replies in the web desk: only the bot's and language's ones are offered; one is
inserted into the reply box, edited and sent, and the customer receives it."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.handoff.handoff_support import PASSWORDS
from tests.support.desk import ask_for_a_person, claim_first_waiting, log_in
from tests.support.farm import RunningFarm

CANNED = [
    {"title": "Rücksendung", "text": "Sie können die Ware innerhalb von 30 Tagen zurücksenden.",
     "bot": "demo", "language": "de"},
    {"title": "Returns", "text": "You can return the goods within 30 days.", "bot": "demo", "language": "en"},
    {"title": "Andere Marke", "text": "Nicht für diesen Bot.", "bot": "other"},
    {"title": "Danke", "text": "Danke für Ihre Geduld!"},
]


@pytest.fixture
def desk_settings() -> dict[str, Any]:
    return {"canned": CANNED}


async def test_a_canned_reply_for_the_bot_and_language_is_inserted_edited_and_sent(
    farm: RunningFarm, page: Page, desk_page: Page
) -> None:
    customer, desk = page, desk_page
    await ask_for_a_person(customer, farm.url)

    await log_in(desk, farm.url, "anna", PASSWORDS["anna"])
    await claim_first_waiting(desk)
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
