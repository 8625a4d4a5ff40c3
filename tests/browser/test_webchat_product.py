"""The web chat as a customer uses it, in chromium at phone and desktop size, on the real demo bot.

One page load per test covers several things: the German page (lang, labels, timestamps,
receipts, greeting quick replies, typing dots hidden when idle, WCAG AA contrast at both
sizes); the waiting state (position updated live, acknowledgement of messages sent while
waiting, photo upload that reaches the transcript and the agent, gone once an agent claims).
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp
from playwright.async_api import Page, expect

from tests.browser.contrast import assert_contrast
from tests.handoff.handoff_support import PASSWORDS, Customer
from tests.support.farm import RunningFarm
from tests.support.images import png

CLOCK = re.compile(r"^\d{2}:\d{2}$")


async def test_german_demo_page_is_german_timestamped_accessible_and_offers_the_greeting_topics(
    farm: RunningFarm, german_page: Page
) -> None:
    page = german_page
    await page.goto(f"{farm.url}/chat/demo")
    assert await page.get_attribute("html", "lang") == "de"
    await expect(page.locator("#status")).to_have_text("online")
    await expect(page.locator("#input")).to_have_attribute("placeholder", "Nachricht schreiben…")
    await expect(page.locator("#send")).to_have_text("Senden")
    await expect(page.locator("#typing")).to_be_hidden()  # idle: no dots

    await page.fill("#input", "Hallo")
    await page.press("#input", "Enter")
    greeting = page.locator(".msg.bot").first
    await expect(greeting).to_contain_text("Wobei kann ich helfen")
    topics = greeting.locator(".buttons button")
    await expect(topics).to_have_text(["Bestellung", "Rechnung", "Passwort", "Serverstörung"])
    mine = page.locator(".msg.user").first
    await expect(mine.locator(".receipt")).to_have_text("gelesen")  # the bot answered after it
    await expect(mine.locator("time")).to_have_text(CLOCK)
    await expect(greeting.locator("time")).to_have_text(CLOCK)
    await expect(page.locator("#typing")).to_be_hidden()  # the answer is there: no dots

    # Keyboard only: Tab to the first topic, Enter presses it.
    await topics.first.focus()
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")  # "Rechnung"
    await expect(page.locator(".msg.user").last).to_have_text(re.compile("^Rechnung"))
    await expect(page.locator(".msg.bot").last).to_contain_text("Kundenbereich")
    await expect(page.locator("#typing")).to_be_hidden()
    await assert_contrast(page, at_least=10)

    await page.set_viewport_size({"width": 1280, "height": 800})
    await page.locator("#input").focus()
    await page.keyboard.press("Shift+Tab")  # the attach control is reachable by keyboard
    await expect(page.locator("#file")).to_be_focused()
    box = await page.locator("#composer").bounding_box()
    assert box is not None and box["y"] + box["height"] <= 800
    await assert_contrast(page, at_least=10)


async def _desk_login(http: aiohttp.ClientSession, url: str) -> dict[str, str]:
    headers = {"X-Desk-Request": "1"}
    async with http.post(f"{url}/desk/api/login", json={"agent": "anna", "password": PASSWORDS["anna"]},
                         headers=headers) as response:
        assert response.status == 200
    return headers


async def _waiting(http: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    async with http.get(f"{url}/desk/api/queue") as response:
        assert response.status == 200
        entries: list[dict[str, Any]] = (await response.json())["conversations"]
    return [e for e in entries if e["status"] == "waiting"]


async def test_waiting_state_moves_up_acknowledges_messages_takes_a_photo_and_ends_when_an_agent_claims(
    farm: RunningFarm, german_page: Page
) -> None:
    page = german_page
    async with aiohttp.ClientSession() as other_http, aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as desk:
        first = await Customer.connect(other_http, farm.url)  # someone else is queued first
        await first.say("Ich will einen Menschen sprechen")
        await farm.farm.settle()  # their handoff is open before ours

        await page.goto(f"{farm.url}/chat/demo")
        await expect(page.locator("#status")).to_have_text("online")
        await page.fill("#input", "Ich will einen Menschen sprechen")
        await page.press("#input", "Enter")
        status = page.locator("#status")
        await expect(status).to_contain_text("Warten auf eine Person")
        await expect(status).to_contain_text("Nummer 2")
        await expect(page.locator("#chat")).to_have_attribute("data-state", "waiting")

        await page.fill("#input", "Ist schon jemand da?")
        await page.press("#input", "Enter")
        await expect(page.locator(".msg.user").last.locator(".receipt")).to_have_text(
            "gespeichert – eine Person liest es gleich")

        photo = png(24, 16)
        await page.set_input_files("#file", files=[{"name": "router.png", "mimeType": "image/png", "buffer": photo}])
        thumb = page.locator(".msg.user").last.locator(".attachments img")
        await expect(thumb).to_have_attribute("alt", "router.png")
        await page.wait_for_function("img => img.complete && img.naturalWidth === 24", arg=await thumb.element_handle())
        receipt = page.locator(".msg.user").last.locator(".receipt")
        await expect(receipt).to_have_text("gespeichert – eine Person liest es gleich")
        await expect(receipt).to_have_attribute("data-status", "delivered")  # relayed to the desk

        headers = await _desk_login(desk, farm.url)
        queued = await _waiting(desk, farm.url)
        assert len(queued) == 2
        ahead, mine = queued[0]["id"], queued[1]["id"]
        async with desk.post(f"{farm.url}/desk/api/conversations/{ahead}/claim", headers=headers) as response:
            assert response.status == 200
        await expect(status).to_contain_text("Nummer 1")  # moved up live

        # The photo is in the transcript as an attachment the agent can open.
        async with desk.get(f"{farm.url}/desk/api/conversations/{mine}") as response:
            transcript = (await response.json())["transcript"]
        files = [a for m in transcript if m["role"] == "customer" for a in m.get("attachments", [])]
        assert [(a["kind"], a["mime_type"], a["name"]) for a in files] == [("image", "image/png", "router.png")]
        async with desk.get(f"{farm.url}{files[0]['url']}") as response:
            assert response.status == 200
            assert response.content_type == "image/png"
            assert await response.read() == photo
        async with aiohttp.ClientSession() as stranger, stranger.get(f"{farm.url}{files[0]['url']}") as response:
            assert response.status == 401  # agents only

        async with desk.post(f"{farm.url}/desk/api/conversations/{mine}/claim", headers=headers) as response:
            assert response.status == 200
        await expect(status).to_have_text("Sie schreiben mit Anna Schmidt")
        await expect(page.locator("#chat")).to_have_attribute("data-state", "agent")
        async with desk.post(f"{farm.url}/desk/api/conversations/{mine}/reply", headers=headers,
                             json={"text": "Hallo, ich schaue mir das Foto an."}) as response:
            assert response.status == 200
        agent = page.locator(".msg.agent").last
        await expect(agent.locator(".author")).to_have_text("Anna Schmidt")
        await expect(page.locator(".msg.user").last.locator(".receipt")).to_have_text("gelesen")
        await expect(page.locator("#typing")).to_be_hidden()
        await assert_contrast(page, at_least=10)  # the agent-name label on the green bubble included
        await first.ws.close()
