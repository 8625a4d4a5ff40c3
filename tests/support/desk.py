"""Steps the web desk's browser tests share: log in, a customer asking for a person, claiming."""

from __future__ import annotations

from playwright.async_api import Page, expect


async def log_in(desk: Page, url: str, agent: str, password: str) -> None:
    await desk.goto(f"{url}/desk")
    await desk.fill("#login-agent", agent)
    await desk.fill("#login-password", password)
    await desk.click("#login-form button[type=submit]")


async def ask_for_a_person(customer: Page, url: str) -> None:
    """The customer opens the demo bot's web chat page and asks for a person; the bot hands off."""
    await customer.goto(f"{url}/chat/demo")
    await expect(customer.locator("#status")).to_have_text("online")
    await customer.fill("#input", "Ich möchte mit einem Mitarbeiter sprechen")
    await customer.press("#input", "Enter")
    await expect(customer.locator(".msg.bot").last).to_contain_text("Person aus unserem Team")


async def claim_first_waiting(desk: Page) -> None:
    """The logged-in agent opens the first waiting conversation and claims it."""
    await desk.locator("#queue-waiting button").click()
    await desk.click("#btn-claim")
