"""The web desk in a real chromium, with a customer on the web chat page at the same time.

The agent logs in, sees the waiting conversation with its summary, claims, replies, adds
an internal note and closes; the customer (a phone-sized page on /chat/demo, real demo
bot) sees the named agent reply, never the note, and then the CSAT buttons.
"""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.handoff.handoff_support import PASSWORDS
from tests.support.desk import log_in
from tests.support.farm import RunningFarm


async def test_agent_takes_over_answers_notes_and_closes_while_the_customer_watches(
    farm: RunningFarm, page: Page, desk_page: Page
) -> None:
    customer, desk = page, desk_page
    await customer.goto(f"{farm.url}/chat/demo")
    await expect(customer.locator("#status")).to_have_text("online")
    await customer.fill("#input", "Wo ist meine Bestellung?")
    await customer.press("#input", "Enter")
    await expect(customer.locator(".msg.bot").last).to_contain_text("Bestellnummer")
    await customer.fill("#input", "Ich möchte mit einem Mitarbeiter sprechen")
    await customer.press("#input", "Enter")
    await expect(customer.locator(".msg.bot").last).to_contain_text("Person aus unserem Team")

    await log_in(desk, farm.url, "anna", PASSWORDS["anna"])
    await expect(desk.locator("#me")).to_have_text("Anna Schmidt")
    await expect(desk.locator("#login")).to_be_hidden()
    await expect(desk.locator("#live")).to_have_text("live")
    waiting = desk.locator("#queue-waiting button")
    await expect(waiting).to_have_count(1)
    await expect(waiting).to_contain_text("requested")
    await waiting.click()
    facts = desk.locator("#summary-facts")
    await expect(facts).to_contain_text("requested")
    await expect(facts).to_contain_text("order_status")
    await expect(facts).to_contain_text("Web chat")
    await expect(desk.locator("#transcript .entry.customer").first).to_contain_text("Wo ist meine Bestellung?")
    await expect(desk.locator("#conv-status")).to_have_text("waiting")

    await desk.click("#btn-claim")
    await expect(desk.locator("#conv-status")).to_have_text("with agent")
    await expect(desk.locator("#queue-agent button")).to_have_count(1)
    await expect(customer.locator(".msg.system").last).to_contain_text("Anna Schmidt")

    await desk.fill("#composer-text", "Hallo, hier ist Anna. Ich kümmere mich darum.")
    await desk.click("#btn-reply")
    agent_message = customer.locator(".msg.agent")
    await expect(agent_message).to_have_count(1)
    await expect(agent_message.locator(".author")).to_have_text("Anna Schmidt")
    await expect(agent_message).to_contain_text("Ich kümmere mich darum.")

    await desk.fill("#composer-text", "Interne Notiz: Kunde hat Vertrag Pro")
    await desk.click("#btn-note")
    await expect(desk.locator("#transcript .entry.note")).to_contain_text("Kunde hat Vertrag Pro")

    # The customer's next message appears live in the desk.
    await customer.fill("#input", "Danke, die Nummer ist HW-123456")
    await customer.press("#input", "Enter")
    await expect(desk.locator("#transcript .entry.customer").last).to_contain_text("HW-123456")

    await desk.click("#btn-close")
    await desk.click("#btn-close-yes")
    await expect(desk.locator("#conv-status")).to_have_text("closed")
    await expect(desk.locator("#queue-agent button")).to_have_count(0)

    csat = customer.locator(".msg.bot").last
    await expect(csat).to_contain_text("zufrieden")
    await expect(csat.locator(".buttons button")).to_have_text(["1", "2", "3", "4", "5"])
    await csat.locator(".buttons button", has_text="5").click()
    await expect(customer.locator(".msg.bot").last).to_contain_text("Danke für Ihre Bewertung")
    await expect(desk.locator("#transcript .entry.event").last).to_contain_text("customer rating: 5/5")

    assert "Vertrag Pro" not in await customer.locator("#messages").inner_text()


async def test_wrong_password_shows_an_error_and_no_desk(farm: RunningFarm, desk_page: Page) -> None:
    await log_in(desk_page, farm.url, "anna", "wrong password")
    await expect(desk_page.locator("#login-error")).to_contain_text("wrong agent or password")
    await expect(desk_page.locator("#app")).to_be_hidden()


async def test_agent_of_another_bot_sees_an_empty_queue(farm: RunningFarm, page: Page, desk_page: Page) -> None:
    await page.goto(f"{farm.url}/chat/demo")
    await expect(page.locator("#status")).to_have_text("online")
    await page.fill("#input", "Mitarbeiter bitte")
    await page.press("#input", "Enter")
    await expect(page.locator(".msg.bot").last).to_contain_text("Person")
    await log_in(desk_page, farm.url, "carl", PASSWORDS["carl"])
    await expect(desk_page.locator("#me")).to_have_text("Carl Other")
    await expect(desk_page.locator("#count-waiting")).to_have_text("0")
