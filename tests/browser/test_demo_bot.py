"""From the brief: open the demo bot's chat page, talk German, reload, history is still there.

The browser is set to German, as a German customer's would be: the browser's languages are a
hint for the reply language (an English browser writing "Hallo" is answered in English).
"""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Page, expect

from tests.support.farm import running_farm


async def test_demo_bot_answers_in_german_and_reload_keeps_history(tmp_path: Path, german_page: Page) -> None:
    page = german_page
    async with running_farm(tmp_path) as farm:  # the real demo bot on the Rasa-compatible engine
        await page.goto(f"{farm.url}/chat/demo")
        await expect(page.locator("#status")).to_have_text("online")

        await page.fill("#input", "Hallo")
        await page.press("#input", "Enter")
        first = page.locator(".msg.bot").first
        await expect(first).to_contain_text("Hostwerk")
        await expect(first).to_contain_text("automatischen Assistenten")  # the bot says it is a bot
        await expect(first).to_contain_text("Mensch")  # and how to reach a person

        await page.fill("#input", "Wie sind eure Öffnungszeiten?")
        await page.press("#input", "Enter")
        hours = page.locator(".msg.bot").last
        await expect(hours).to_contain_text("Montag bis Freitag")

        count = await page.locator(".msg").count()
        await page.reload()
        await expect(page.locator("#status")).to_have_text("online")
        await expect(page.locator(".msg")).to_have_count(count)
        await expect(page.locator(".msg.user .text").first).to_have_text("Hallo")
        await expect(page.locator(".msg.bot").last).to_contain_text("Montag bis Freitag")
