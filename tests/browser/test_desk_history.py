"""History and search in the web desk: a closed conversation stays reachable, found by
search with its rating, and every search is audited.

One page load: the customer (web chat page) asks for a person, Anna claims, answers,
closes; the customer rates 4/5. The conversation leaves the queue; Anna finds it by a
word of her reply, sees it closed and rated, narrows by rating and opens it.
"""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.handoff.handoff_support import PASSWORDS
from tests.support.desk import ask_for_a_person, claim_first_waiting, log_in
from tests.support.farm import RunningFarm


async def test_a_closed_conversation_is_found_by_search_with_its_rating(
    farm: RunningFarm, page: Page, desk_page: Page
) -> None:
    customer, desk = page, desk_page
    await ask_for_a_person(customer, farm.url)

    await log_in(desk, farm.url, "anna", PASSWORDS["anna"])
    await claim_first_waiting(desk)
    await desk.fill("#composer-text", "Ihre Rücksendung ist erfasst.")
    await desk.click("#btn-reply")
    await expect(customer.locator(".msg.agent")).to_contain_text("Rücksendung")
    await desk.click("#btn-close")
    await desk.click("#btn-close-yes")
    await expect(desk.locator("#conv-status")).to_have_text("closed")
    csat = customer.locator(".msg.bot").last
    await csat.locator(".buttons button", has_text="4").click()
    await expect(customer.locator(".msg.bot").last).to_contain_text("Danke für Ihre Bewertung")
    await expect(desk.locator("#count-waiting")).to_have_text("0")
    await expect(desk.locator("#count-agent")).to_have_text("0")

    await desk.reload()
    await expect(desk.locator("#empty")).to_be_visible()
    await desk.fill("#search-text", "rücksendung")
    await desk.press("#search-text", "Enter")
    results = desk.locator("#search-results button")
    await expect(results).to_have_count(1)
    await expect(results).to_contain_text("closed")
    await expect(results).to_contain_text("rated 4/5")
    await expect(results).to_contain_text("Anna Schmidt")
    await expect(results.locator(".q-last")).to_contain_text("Ihre Rücksendung ist erfasst.")

    await desk.click("summary")
    await desk.select_option("#search-rating", "5")
    await desk.click("#btn-search")
    await expect(desk.locator("#search-info")).to_have_text("0 conversations found")
    await desk.select_option("#search-rating", "4")
    await desk.fill("#search-agent", "anna")
    await desk.select_option("#search-channel", "webchat")
    await desk.click("#btn-search")
    await expect(results).to_have_count(1)
    await results.click()
    await expect(desk.locator("#conv-status")).to_have_text("closed")
    await expect(desk.locator("#summary-facts")).to_contain_text("rated 4/5")
    await expect(desk.locator("#transcript .entry.agent")).to_contain_text("Ihre Rücksendung ist erfasst.")

    audit = await farm.store.audit_log(limit=50)
    searches = [e for e in audit if e.action == "search" and e.actor == "web:anna"]
    assert {e.detail.get("rating") for e in searches} >= {5, 4}
    assert any(e.action == "view" and e.actor == "web:anna" for e in audit)
