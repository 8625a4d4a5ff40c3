"""Agent typing shows on the customer's web chat page; writing a "!" note never does."""

from __future__ import annotations

from playwright.async_api import Page, Request, expect

from tests.handoff.handoff_support import PASSWORDS
from tests.support.desk import ask_for_a_person, claim_first_waiting, log_in
from tests.support.farm import RunningFarm


async def test_customer_sees_the_agent_typing_a_reply_but_not_a_note(
    farm: RunningFarm, page: Page, desk_page: Page
) -> None:
    customer, desk = page, desk_page
    typing_signals: list[str] = []

    def record(request: Request) -> None:
        if request.url.endswith("/typing"):
            typing_signals.append(request.url)

    desk.on("request", record)
    await ask_for_a_person(customer, farm.url)
    await log_in(desk, farm.url, "anna", PASSWORDS["anna"])
    await claim_first_waiting(desk)
    await expect(desk.locator("#conv-status")).to_have_text("with agent")

    typing = customer.locator("#typing")
    await desk.locator("#composer-text").press_sequentially("!Kunde wirkt ungeduldig")
    await desk.click("#btn-reply")
    await expect(desk.locator("#transcript .entry.note")).to_have_count(1)
    assert typing_signals == []  # a signal would have left before the note was saved
    await expect(typing).to_be_hidden()

    reply = "Hallo, ich schaue gleich nach"
    await desk.locator("#composer-text").press_sequentially(reply)
    await expect(typing).to_be_visible()
    await expect(customer.locator("#typing-text")).to_have_text("Anna Schmidt schreibt…")
    await expect(customer.locator("#typing-text")).not_to_have_class("visually-hidden")
    assert 1 <= len(typing_signals) < len(reply) // 3  # throttled: at most one signal every 3 s, not per key

    await desk.press("#composer-text", "Control+Enter")
    await expect(customer.locator(".msg.agent")).to_contain_text(reply)
    await expect(typing).to_be_hidden()  # the message replaces the dots


async def test_agent_sees_the_customer_typing_until_the_message_arrives(
    farm: RunningFarm, page: Page, desk_page: Page
) -> None:
    customer, desk = page, desk_page
    await ask_for_a_person(customer, farm.url)
    await log_in(desk, farm.url, "anna", PASSWORDS["anna"])
    await claim_first_waiting(desk)
    await expect(desk.locator("#conv-status")).to_have_text("with agent")
    await desk.fill("#composer-text", "Guten Tag, wie kann ich helfen?")
    await desk.press("#composer-text", "Control+Enter")
    await expect(customer.locator(".msg.agent")).to_have_count(1)

    typing = desk.locator("#customer-typing")
    await expect(typing).to_be_hidden()
    await customer.locator("#input").press_sequentially("Meine Bestellung")
    await expect(typing).to_be_visible()
    await expect(typing).to_contain_text("is typing…")
    await customer.press("#input", "Enter")
    await expect(desk.locator("#transcript .entry.customer").last).to_contain_text("Meine Bestellung")
    await expect(typing).to_be_hidden()
