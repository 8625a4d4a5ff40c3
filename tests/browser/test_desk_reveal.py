"""E-mail addresses and phone numbers are masked on the web desk; an agent reveals one with a
click, and the click is in the audit log (real chromium, customer on the web chat page)."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.handoff.handoff_support import PASSWORDS
from tests.support.desk import log_in
from tests.support.farm import RunningFarm

EMAIL = "jana.k@example.de"
PHONE = "+49 170 1234567"


async def test_contact_details_are_masked_and_one_click_reveals_one_audited(
    farm: RunningFarm, page: Page, desk_page: Page
) -> None:
    customer, desk = page, desk_page
    await customer.goto(f"{farm.url}/chat/demo")
    await expect(customer.locator("#status")).to_have_text("online")
    await customer.fill("#input", "Ich möchte mit einem Mitarbeiter sprechen")
    await customer.press("#input", "Enter")
    await expect(customer.locator(".msg.bot").last).to_contain_text("Person aus unserem Team")
    await customer.fill("#input", f"Meine Mail ist {EMAIL}, mein Handy {PHONE}")
    await customer.press("#input", "Enter")

    await log_in(desk, farm.url, "anna", PASSWORDS["anna"])
    await desk.locator("#queue-waiting button").first.click()
    said = desk.locator("#transcript .entry.customer").last
    await expect(said).to_contain_text("j•••@•••.de")
    await expect(said).to_contain_text("+•••••••67")
    assert EMAIL not in await said.inner_text() and "1234567" not in await said.inner_text()
    assert not [a for a in await farm.store.audit_log(bot="demo") if a.action == "reveal"]

    await said.locator("button.reveal", has_text="j•••@•••.de").click()
    await expect(said.locator(".revealed")).to_have_text(EMAIL)
    await expect(said.locator("button.reveal")).to_have_text("+•••••••67")  # the phone stays masked
    [entry] = [a for a in await farm.store.audit_log(bot="demo") if a.action == "reveal"]
    assert entry.actor == "web:anna" and entry.detail["kind"] == "email"
    assert EMAIL not in str(entry.detail)  # the audit log says who saw what, not the value
