"""The launcher (`/chat/{bot}/widget.js`) on a page of another origin, in chromium at desktop size."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from aiohttp import web
from playwright.async_api import Browser, Page, expect

from tests.browser.contrast import assert_contrast
from tests.support.engines import EchoEngine
from tests.support.farm import free_port, running_farm
from tests.support.pages import open_page

SHOP_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title></head>
<body><h1>Hostwerk shop</h1><p>Our products.</p>
<script src="{farm}/chat/demo/widget.js" async></script></body></html>"""


@pytest_asyncio.fixture
async def desktop(browser: Browser) -> AsyncIterator[Page]:
    async with open_page(browser, viewport={"width": 1280, "height": 800}, locale="de-DE") as page:
        yield page


@pytest_asyncio.fixture
async def shop() -> AsyncIterator[tuple[str, list[str]]]:
    """A site on another origin (another port); its page is filled in once the farm's URL is known."""
    port = free_port()
    html: list[str] = []

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=html[0], content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", html
    finally:
        await runner.cleanup()


async def test_launcher_on_another_origin_opens_the_chat_by_keyboard_and_chats(
    tmp_path: Path, desktop: Page, shop: tuple[str, list[str]]
) -> None:
    origin, html = shop
    bots = {"demo": {"project": str(Path(__file__).resolve().parents[2] / "config" / "demo"),
                     "languages": ["de", "en"], "default_language": "de",
                     "channels": {"webchat": {"title": "Hostwerk", "allowed_origins": [origin]}}}}
    async with running_farm(tmp_path, bots=bots, engines={"demo": EchoEngine()}) as farm:
        html.append(SHOP_PAGE.format(farm=farm.url))
        page = desktop
        await page.goto(origin)
        launcher = page.locator("#sb-demo-launcher")
        await expect(launcher).to_have_attribute("aria-label", "Chat mit Hostwerk")
        box = await launcher.bounding_box()
        assert box is not None and box["x"] > 1280 - 120 and box["y"] > 800 - 120  # bottom-right corner

        await page.keyboard.press("Tab")  # the launcher is the page's only focusable element
        await expect(launcher).to_be_focused()
        await page.keyboard.press("Enter")
        await expect(launcher).to_have_attribute("aria-expanded", "true")
        chat = page.frame_locator("#sb-demo-frame")
        await expect(chat.locator("#status")).to_have_text("online")
        await chat.locator("#input").fill("Hallo aus dem Shop")
        await chat.locator("#input").press("Enter")
        await expect(chat.locator(".msg.bot").last).to_contain_text("echo: Hallo aus dem Shop")
        await expect(chat.locator(".msg.user .receipt")).to_have_text("gelesen")
        frame = page.frame(url=f"{farm.url}/chat/demo?embed=1")
        assert frame is not None
        await assert_contrast(frame, at_least=5)

        await chat.locator("#input").press("Escape")  # closes the chat, focus back on the launcher
        await expect(page.locator("#sb-demo-frame")).to_be_hidden()
        await expect(launcher).to_be_focused()
