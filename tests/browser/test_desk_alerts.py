"""Alerts for new handoffs in the web desk, opt-in: off until the agent turns them on (the
browser then asks for notification permission); on, a new handoff plays the desk's own chime
(served by the farm, no CDN) and shows a browser notification naming the customer; the choice
survives a reload. Desktop and phone size."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page, expect

from tests.handoff.handoff_support import PASSWORDS
from tests.support.desk import ask_for_a_person, log_in
from tests.support.farm import RunningFarm
from tests.support.pages import DESKTOP, PHONE

# Records what the page does with the real Notification and audio APIs (it still calls them).
SPY = """
window.__alerts = [];
const RealNotification = window.Notification;
class SpyNotification extends RealNotification {
  constructor(title, options) { super(title, options); window.__alerts.push({ title, body: options && options.body }); }
}
window.Notification = SpyNotification;
const realPlay = HTMLMediaElement.prototype.play;
HTMLMediaElement.prototype.play = function () { window.__alerts.push({ sound: this.src }); return realPlay.call(this); };
"""


async def alerts(desk: Page) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await desk.evaluate("window.__alerts")
    return found


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_alerts_are_opt_in_and_a_new_handoff_chimes_and_notifies(
    farm: RunningFarm, page: Page, browser: Browser, size: dict[str, Any]
) -> None:
    context = await browser.new_context(**size)
    try:
        await context.grant_permissions(["notifications"], origin=farm.url)
        await context.add_init_script(SPY)
        desk = await context.new_page()
        await log_in(desk, farm.url, "anna", PASSWORDS["anna"])
        toggle = desk.locator("#btn-notify")
        await expect(toggle).to_have_text("Alerts: off")
        await expect(toggle).to_have_attribute("aria-pressed", "false")
        await expect(desk.locator("#live")).to_have_text("live")

        await ask_for_a_person(page, farm.url)  # alerts off: nothing
        await expect(desk.locator("#count-waiting")).to_have_text("1")
        assert await alerts(desk) == []

        await toggle.click()
        await expect(toggle).to_have_text("Alerts: on")
        await expect(toggle).to_have_attribute("aria-pressed", "true")
        assert await desk.evaluate("Notification.permission") == "granted"

        second = await context.new_page()  # another customer (own web chat session) asks for a person
        await ask_for_a_person(second, farm.url)
        await expect(desk.locator("#count-waiting")).to_have_text("2")
        await desk.wait_for_function("window.__alerts.some((a) => a.title)")
        found = await alerts(desk)
        assert any(a.get("sound", "").endswith("/desk/notify.wav") for a in found)
        notice = next(a for a in found if a.get("title"))
        assert notice["title"] == "New handoff"
        assert "Gast" in notice["body"] and "Web chat" in notice["body"]

        await desk.reload()
        await expect(desk.locator("#btn-notify")).to_have_text("Alerts: on")
    finally:
        await context.close()


async def test_the_chime_is_served_by_the_farm(farm: RunningFarm) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{farm.url}/desk/notify.wav") as response:
        body = await response.read()
        assert response.status == 200
        assert response.content_type == "audio/wav"
        assert body[:4] == b"RIFF" and body[8:12] == b"WAVE"
        assert len(body) < 20_000
