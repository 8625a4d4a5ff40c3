"""Transfer between two agents in the web desk, and back to the queue, with a note.

Anna claims the web chat customer and transfers to Ben with a note; Ben (a second
browser) sees it assigned to him with the note, answers; the customer is told Ben answers
now and gets his reply. Ben puts it back in the queue and Anna sees it waiting again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from playwright.async_api import Browser, Page, expect

from tests.handoff.handoff_support import PASSWORDS
from tests.support.desk import ask_for_a_person, claim_first_waiting, log_in
from tests.support.farm import RunningFarm


@pytest_asyncio.fixture
async def agents(browser: Browser) -> AsyncIterator[tuple[Page, Page]]:
    first = await browser.new_context(viewport={"width": 1280, "height": 860})
    second = await browser.new_context(viewport={"width": 1280, "height": 860})
    try:
        yield await first.new_page(), await second.new_page()
    finally:
        await first.close()
        await second.close()


async def test_anna_transfers_to_ben_with_a_note_and_ben_puts_it_back_in_the_queue(
    farm: RunningFarm, page: Page, agents: tuple[Page, Page]
) -> None:
    customer, (anna, ben) = page, agents
    await ask_for_a_person(customer, farm.url)

    await log_in(anna, farm.url, "anna", PASSWORDS["anna"])
    await log_in(ben, farm.url, "ben", PASSWORDS["ben"])
    await expect(ben.locator("#live")).to_have_text("live")
    await claim_first_waiting(anna)
    await expect(anna.locator("#conv-assigned")).to_have_text("assigned to Anna Schmidt")

    await anna.click("#btn-transfer")
    await anna.select_option("#transfer-to", label="Ben Wolf")
    await anna.fill("#transfer-note", "Kunde will eine Rückerstattung, Beleg liegt vor")
    await anna.click("#btn-transfer-go")
    await expect(anna.locator("#conv-assigned")).to_have_text("assigned to Ben Wolf")
    await expect(anna.locator("#btn-reply")).to_be_disabled()
    await expect(customer.locator(".msg.system").last).to_contain_text("Ben Wolf")

    mine = ben.locator("#queue-agent button")
    await expect(mine).to_contain_text("Ben Wolf")
    await mine.click()
    await expect(ben.locator("#transcript .entry.note")).to_contain_text("Rückerstattung")
    await expect(ben.locator("#transcript .entry.event", has_text="transferred to Ben Wolf")).to_have_count(1)
    await ben.fill("#composer-text", "Hallo, hier ist Ben. Ich erstatte den Betrag.")
    await ben.click("#btn-reply")
    await expect(customer.locator(".msg.agent").last).to_contain_text("Ich erstatte den Betrag.")
    await expect(customer.locator(".msg.agent .author").last).to_have_text("Ben Wolf")

    await ben.click("#btn-transfer")
    await ben.select_option("#transfer-to", value="")
    await ben.click("#btn-transfer-go")
    await expect(ben.locator("#conv-status")).to_have_text("waiting")
    await expect(anna.locator("#queue-waiting button")).to_have_count(1)
    await expect(anna.locator("#conv-status")).to_have_text("waiting")
    assert "Rückerstattung" not in await customer.locator("#messages").inner_text()
