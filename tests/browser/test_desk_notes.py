"""Notes are safe by construction: a text starting with "!" never reaches the customer.

One page load: the customer asks for a person on the web chat page, the agent claims and
then tries every way to send a "!" text (the Send button, Ctrl+Enter, the note button).
Each is stored as a note; the customer's page and the transcript's customer-bound
messages never contain it, while a normal reply sent afterwards does arrive.
"""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.handoff.handoff_support import PASSWORDS
from tests.support.desk import ask_for_a_person, claim_first_waiting, log_in
from tests.support.farm import RunningFarm


async def test_a_bang_text_is_a_note_by_every_button_and_shortcut_and_never_reaches_the_customer(
    farm: RunningFarm, page: Page, desk_page: Page
) -> None:
    customer, desk = page, desk_page
    await ask_for_a_person(customer, farm.url)

    await log_in(desk, farm.url, "anna", PASSWORDS["anna"])
    await claim_first_waiting(desk)
    await expect(desk.locator("#conv-status")).to_have_text("with agent")
    await expect(desk.locator("#shortcuts")).to_contain_text("Ctrl")

    notes = desk.locator("#transcript .entry.note")
    await desk.fill("#composer-text", "!geheim eins: Kunde ist schwierig")
    await expect(desk.locator("#composer-hint")).to_be_visible()
    await expect(desk.locator("#btn-reply")).to_have_text("Save as note")
    await desk.click("#btn-reply")
    await expect(notes).to_have_count(1)
    await desk.fill("#composer-text", "  !geheim zwei: per Tastenkürzel")
    await desk.press("#composer-text", "Control+Enter")
    await expect(notes).to_have_count(2)
    await desk.fill("#composer-text", "!geheim drei: per Notiz-Knopf")
    await desk.click("#btn-note")
    await expect(notes).to_have_count(3)
    await expect(notes.nth(0)).to_contain_text("geheim eins: Kunde ist schwierig")
    await expect(notes.nth(0)).not_to_contain_text("!geheim")
    await expect(desk.locator("#transcript .entry.agent")).to_have_count(0)

    await desk.fill("#composer-text", "Hallo, hier ist Anna.")
    await expect(desk.locator("#btn-reply")).to_have_text("Send to customer")
    await desk.press("#composer-text", "Control+Enter")
    await expect(customer.locator(".msg.agent")).to_have_count(1)
    await expect(customer.locator(".msg.agent")).to_contain_text("Hallo, hier ist Anna.")
    assert "geheim" not in await customer.locator("#messages").inner_text()

    conversation = (await farm.store.list_conversations("demo", None, limit=10))[0]
    events = await farm.store.transcript(conversation.id, limit=200)
    stored_notes = [e.data["text"] for e in events if e.type == "note"]
    assert stored_notes == ["geheim eins: Kunde ist schwierig", "geheim zwei: per Tastenkürzel",
                            "geheim drei: per Notiz-Knopf"]
    assert not [e for e in events if e.type == "bot" and "geheim" in str(e.data.get("text"))]
