"""Browser pages for the playwright tests: each in its own context, closed with it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from playwright.async_api import Browser, Page

PHONE: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 860}}


@asynccontextmanager
async def open_page(browser: Browser, **options: Any) -> AsyncIterator[Page]:
    """A page in a fresh browser context made with ``options`` (as `Browser.new_context`)."""
    context = await browser.new_context(**options)
    try:
        yield await context.new_page()
    finally:
        await context.close()
