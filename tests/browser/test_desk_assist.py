"""The bot as the agent's assistant in the web desk: for the customer's latest message the
desk offers the bot's own answer (intent and confidence shown), a one-line summary and the
customer's previous cases; one click inserts a suggestion for the agent to edit, and nothing
reaches the customer until the agent sends it. Desktop and phone size."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.handoff.handoff_support import PASSWORDS
from tests.support.desk import ask_for_a_person, claim_first_waiting, log_in
from tests.support.farm import RunningFarm
from tests.support.pages import DESKTOP, PHONE, open_page

HOURS = "Unser Support ist Montag bis Freitag von 8 bis 18 Uhr erreichbar."


async def customer_says(customer: Page, text: str) -> None:
    await customer.fill("#input", text)
    await customer.press("#input", "Enter")


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_a_suggested_reply_is_shown_inserted_edited_and_sent_only_by_the_agent(
    farm: RunningFarm, page: Page, browser: Browser, size: dict[str, Any]
) -> None:
    customer = page
    await ask_for_a_person(customer, farm.url)
    await customer_says(customer, "Wann habt ihr geöffnet?")
    async with open_page(browser, **size) as desk:
        await log_in(desk, farm.url, "anna", PASSWORDS["anna"])
        await claim_first_waiting(desk)

        panel = desk.locator("#assist")
        await expect(panel).to_be_visible()
        await expect(desk.locator("#assist-summary")).to_contain_text("Wants: a person")
        await expect(desk.locator("#assist-summary")).to_contain_text("handed off: requested")
        await expect(desk.locator("#assist-for")).to_contain_text("Wann habt ihr geöffnet?")
        first = desk.locator("#assist-suggestions li").first
        await expect(first.locator(".s-meta")).to_have_text("opening_hours · 100 %")
        await expect(first.locator(".s-text")).to_contain_text(HOURS)

        await first.get_by_role("button", name="Use 1").click()
        composer = desk.locator("#composer-text")
        await expect(composer).to_have_value(f"{HOURS} Bei Serverausfällen ist unser Notdienst rund um die Uhr für Sie da.")
        await expect(customer.locator(".msg.agent")).to_have_count(0)  # inserted, not sent
        await composer.press("End")
        await composer.type(" Viele Grüße, Anna")
        await desk.click("#btn-reply")
        await expect(customer.locator(".msg.agent")).to_contain_text(f"{HOURS}")
        await expect(customer.locator(".msg.agent")).to_contain_text("Viele Grüße, Anna")
        await expect(composer).to_have_value("")


async def test_the_previous_case_with_its_agent_and_rating_and_a_suggestion_by_shortcut(
    farm: RunningFarm, page: Page, desk_page: Page
) -> None:
    customer, desk = page, desk_page
    await ask_for_a_person(customer, farm.url)
    await log_in(desk, farm.url, "anna", PASSWORDS["anna"])
    await claim_first_waiting(desk)
    await expect(desk.locator("#assist-cases-wrap")).to_be_hidden()
    await desk.click("#btn-close")
    await desk.click("#btn-close-yes")
    await expect(desk.locator("#conv-status")).to_have_text("closed")
    await customer.locator(".msg.bot").last.locator(".buttons button", has_text="4").click()
    await expect(customer.locator(".msg.bot").last).to_contain_text("Danke für Ihre Bewertung")

    await customer_says(customer, "Ich will wieder einen Menschen sprechen")
    await expect(desk.locator("#count-waiting")).to_have_text("1")
    await customer_says(customer, "Was kosten eure Tarife?")
    await claim_first_waiting(desk)
    await expect(desk.locator("#assist-cases li")).to_have_count(1)
    await expect(desk.locator("#assist-cases li")).to_contain_text("helped by Anna Schmidt · rated 4/5")
    await expect(desk.locator("#assist-suggestions li").first.locator(".s-meta")).to_contain_text("pricing")
    await desk.fill("#composer-text", "Gern: ")
    await desk.press("#composer-text", "Alt+1")
    await expect(desk.locator("#composer-text")).to_have_value(
        "Gern: Unsere Tarife: Webhosting Start 4,99 €, Pro 9,99 € und Business 19,99 € pro Monat, jeweils "
        "monatlich kündbar. Alle Details: hostwerk.example/preise")
    await expect(customer.locator(".msg.agent")).to_have_count(0)
