"""Playwright driving Debian's chromium (headless, --no-sandbox); Playwright cannot download its own here.

Fixtures: ``browser`` (session-wide) and ``page`` (a fresh phone-sized context per test);
for the desk ``desk_page`` (desktop-sized) and ``farm`` (demo bots + desk, extended by a
module's ``desk_settings``).
Set SWITCHBOARD_CHROMIUM to use another binary.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright

from tests.handoff.handoff_support import bots, desk_config
from tests.support.farm import RunningFarm, running_farm
from tests.support.pages import DESKTOP, PHONE, open_page

CHROMIUM = os.environ.get("SWITCHBOARD_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

pytestmark = pytest.mark.browser


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"chromium not found at {CHROMIUM}; `make test` installs Debian's chromium")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest_asyncio.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    async with open_page(browser, **PHONE) as page:
        yield page


@pytest_asyncio.fixture
async def german_page(browser: Browser) -> AsyncIterator[Page]:
    """A phone whose browser is set to German (``navigator.languages`` = de-DE, de)."""
    async with open_page(browser, **PHONE, locale="de-DE") as page:
        yield page


@pytest_asyncio.fixture
async def desk_page(browser: Browser) -> AsyncIterator[Page]:
    """A desktop-sized page for the agent's desk."""
    async with open_page(browser, **DESKTOP) as page:
        yield page


@pytest.fixture
def desk_settings() -> dict[str, Any]:
    """Desk settings on top of `desk_config()` for the ``farm`` fixture; a module overrides it."""
    return {}


@pytest_asyncio.fixture
async def farm(tmp_path: Path, desk_settings: dict[str, Any]) -> AsyncIterator[RunningFarm]:
    """The demo bots with the desk (agents anna, ben, carl) on a running farm."""
    async with running_farm(tmp_path, bots=bots(), desk={**desk_config(), **desk_settings}) as running:
        yield running
