"""Attachments between the web desk and a web chat customer, in chromium: the customer's photo
shows inline in the desk's transcript; the agent's "Attach file…" sends a PDF (with the reply
box's text as caption) and a photo that the customer's page shows and saves; a file of a type
customers are not sent is refused with a message; a file marked as a note (caption "!…") stays
on the desk."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import FilePayload, Page, expect

from tests.handoff.handoff_support import PASSWORDS
from tests.support.desk import ask_for_a_person, claim_first_waiting, log_in
from tests.support.farm import RunningFarm
from tests.support.files import pdf, png

PHOTO = png(8, 6, (20, 120, 200))


async def image_loaded(page: Page, selector: str, width: int) -> None:
    """Wait until the image at ``selector`` has loaded (its natural width is the file's)."""
    await page.wait_for_function(
        "([sel, w]) => { const i = document.querySelector(sel); return !!i && i.complete && i.naturalWidth === w; }",
        arg=[selector, width], timeout=5000)


async def test_files_go_both_ways_between_the_web_desk_and_the_web_chat(
    farm: RunningFarm, page: Page, desk_page: Page, tmp_path: Path
) -> None:
    customer, desk = page, desk_page
    await ask_for_a_person(customer, farm.url)
    await log_in(desk, farm.url, "anna", PASSWORDS["anna"])
    await claim_first_waiting(desk)
    await expect(desk.locator("#conv-status")).to_have_text("with agent")

    # the customer's photo: inline in the desk
    await customer.set_input_files("#file", files=[FilePayload(name="kaputt.png", mimeType="image/png", buffer=PHOTO)])
    await expect(desk.locator("#transcript .entry.customer .files img.thumb")).to_have_count(1)
    await image_loaded(desk, "#transcript .entry.customer .files img.thumb", 8)

    # the agent's PDF with a caption: the customer sees the text and a file they can save
    await desk.fill("#composer-text", "Hier ist Ihre Rechnung")
    await desk.set_input_files("#file-input", files=[FilePayload(name="Rechnung 4711.pdf", mimeType="application/pdf", buffer=pdf())])
    message = customer.locator(".msg.agent").filter(has_text="Hier ist Ihre Rechnung")
    await expect(message).to_have_count(1)
    link = message.locator("a.file")
    await expect(link).to_contain_text("Rechnung 4711.pdf")
    async with customer.expect_download() as download_info:
        await link.click()
    saved = tmp_path / "saved.pdf"
    await (await download_info.value).save_as(saved)
    assert saved.read_bytes() == pdf()
    await expect(desk.locator("#composer-text")).to_have_value("")
    await expect(desk.locator("#transcript .entry.agent .files a.file")).to_contain_text("Rechnung 4711.pdf")

    # the agent's photo shows in the customer's page
    await desk.set_input_files("#file-input", files=[FilePayload(name="so-gehts.png", mimeType="image/png", buffer=PHOTO)])
    await expect(customer.locator(".msg.agent img")).to_have_count(1)
    await image_loaded(customer, ".msg.agent img", 8)

    # refused: not a type customers are sent; the agent reads why
    await desk.set_input_files("#file-input", files=[FilePayload(name="tools.zip", mimeType="application/zip", buffer=b"PK\x03\x04 not for customers")])
    await expect(desk.locator("#action-error")).to_contain_text("File not sent: “tools.zip” is not a PNG")

    # a note's file stays with the agents
    await desk.fill("#composer-text", "!Foto vom Kunden, Router defekt")
    await desk.set_input_files("#file-input", files=[FilePayload(name="intern.png", mimeType="image/png", buffer=PHOTO)])
    await expect(desk.locator("#transcript .entry.note .files img.thumb")).to_have_count(1)
    await expect(customer.locator(".msg.agent img")).to_have_count(1)  # still only the first photo
