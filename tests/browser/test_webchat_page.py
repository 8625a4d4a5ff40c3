"""The web chat page in a real chromium, phone-sized."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Locator, Page, expect

from core.model import Identity
from tests.support.engines import EchoEngine
from tests.support.farm import running_farm

BOTS = {"demo": {"project": str(Path(__file__).resolve().parents[2] / "config" / "demo"),
                 "channels": {"webchat": {"title": "Hostwerk"}}}}


async def _answer_a_button(page: Page, url: str) -> Locator:
    """Open the chat, ask for buttons, click "Yes": the bot's messages (two so far)."""
    await page.goto(f"{url}/chat/demo")
    await expect(page.locator("#status")).to_have_text("online")
    await page.fill("#input", "show me buttons")
    await page.press("#input", "Enter")
    bot = page.locator(".msg.bot")
    await expect(bot.first).to_contain_text("echo: show me buttons")
    await page.locator(".msg.bot .buttons button", has_text="Yes").click()
    await expect(bot.nth(1)).to_contain_text("echo: Yes")
    return bot


async def test_chat_shows_replies_buttons_and_keeps_history_on_reload(tmp_path: Path, page: Page) -> None:
    async with running_farm(tmp_path, bots=BOTS, engines={"demo": EchoEngine()}) as farm:
        await _answer_a_button(page, farm.url)
        await page.reload()
        await expect(page.locator("#status")).to_have_text("online")
        await expect(page.locator(".msg")).to_have_count(4)
        await expect(page.locator(".msg.user .text").first).to_have_text("show me buttons")


async def test_message_typed_while_offline_is_delivered_after_reconnect(tmp_path: Path, page: Page) -> None:
    async with running_farm(tmp_path, bots=BOTS, engines={"demo": EchoEngine()}) as farm:
        await page.goto(f"{farm.url}/chat/demo")
        await expect(page.locator("#status")).to_have_text("online")
        # Drop the socket as a flaky mobile network would, and type before it comes back.
        await page.evaluate("window.switchboardChat.socket.close()")
        await page.fill("#input", "sent while offline")
        await page.press("#input", "Enter")
        await expect(page.locator(".msg.bot")).to_contain_text("echo: sent while offline", timeout=15_000)
        await expect(page.locator(".msg.user")).to_have_count(1)


async def test_page_fits_a_phone_screen(tmp_path: Path, page: Page) -> None:
    async with running_farm(tmp_path, bots=BOTS, engines={"demo": EchoEngine()}) as farm:
        await page.goto(f"{farm.url}/chat/demo")
        await expect(page.locator("h1")).to_have_text("Hostwerk")
        assert await page.get_attribute("html", "lang") == "en"  # the bot's default language
        await expect(page.locator("#send")).to_have_text("Send")
        await expect(page.locator("#typing")).to_be_hidden()
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390
        box = await page.locator("#composer").bounding_box()
        assert box is not None and box["y"] + box["height"] <= 844


async def test_a_reply_sent_again_is_shown_once_and_its_buttons_stay_used(tmp_path: Path, page: Page) -> None:
    async with running_farm(tmp_path, bots=BOTS, engines={"demo": EchoEngine()}) as farm:
        bot = await _answer_a_button(page, farm.url)
        # The sender sends a reply again when a crash left it in doubt: the same outbox item
        # through the same adapter call, so the same frame id.
        session = await page.evaluate("localStorage.getItem('switchboard:demo:session')")
        (contact,) = await farm.store.find_contacts("demo", identity=Identity("webchat", session, session))
        conversation = await farm.store.conversation_for("demo", contact.id)
        first_reply = next(e for e in await farm.store.transcript(conversation.id) if e.type == "bot")
        item = await farm.store.get_outbox_item(str(first_reply.data["metadata"]["outbound_id"]))
        assert item is not None
        await farm.farm.channels[("demo", "webchat")].send(item.outbound)
        await page.fill("#input", "and one more")  # a later reply proves the resent frame arrived before it
        await page.press("#input", "Enter")
        await expect(bot.nth(2)).to_contain_text("echo: and one more")
        await expect(bot).to_have_count(3)
        await expect(page.locator(".msg.bot .buttons button", has_text="Yes")).to_be_disabled()
