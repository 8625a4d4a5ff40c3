"""The review page in chromium: a lead sees the fallback and the low-rated messages, labels one,
retrains, and ``test nlu`` on it passes (on the page, and with ``switchboard test nlu``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from playwright.async_api import Page, expect
from typer.testing import CliRunner

from core.cli import app
from tests.browser.contrast import assert_contrast
from tests.handoff.handoff_support import PASSWORDS
from tests.review.support import review_farm, review_service
from tests.support.desk import claim_first_waiting, log_in
from tests.support.farm import RunningFarm

NOT_UNDERSTOOD = "Die Kiste macht keinen Mucks mehr"  # the demo's NLU falls back on it
ASKS_FOR_A_PERSON = "Ich möchte mit einem Mitarbeiter sprechen"


@pytest_asyncio.fixture
async def review(tmp_path: Path) -> AsyncIterator[tuple[RunningFarm, Path]]:
    async with review_farm(tmp_path) as running:
        yield running


async def say(customer: Page, text: str) -> None:
    count = await customer.locator(".msg.bot").count()
    await customer.fill("#input", text)
    await customer.press("#input", "Enter")
    await expect(customer.locator(".msg.bot")).not_to_have_count(count)


async def test_a_lead_labels_a_fallback_message_retrains_and_test_nlu_passes_on_it(
    review: tuple[RunningFarm, Path], page: Page, desk_page: Page
) -> None:
    farm, project = review
    customer, desk = page, desk_page
    await customer.goto(f"{farm.url}/chat/demo")
    await expect(customer.locator("#status")).to_have_text("online")
    await say(customer, NOT_UNDERSTOOD)
    await say(customer, ASKS_FOR_A_PERSON)
    await expect(customer.locator(".msg.bot").last).to_contain_text("Person aus unserem Team")

    # An agent flags a customer message from the desk, then closes; the customer rates 2 of 5.
    await log_in(desk, farm.url, "anna", PASSWORDS["anna"])
    await claim_first_waiting(desk)
    first = desk.locator("#transcript .entry.customer", has_text=NOT_UNDERSTOOD)
    await first.get_by_role("button", name="Review").click()
    await expect(first.get_by_role("button", name="In review")).to_be_visible()
    await desk.click("#btn-close")
    await desk.click("#btn-close-yes")
    csat = customer.locator(".msg.bot").last
    await expect(csat.locator(".buttons button")).to_have_text(["1", "2", "3", "4", "5"])
    await csat.locator(".buttons button", has_text="2").click()
    await expect(customer.locator(".msg.bot").last).to_contain_text("Danke für Ihre Bewertung")
    await farm.farm.settle()

    await desk.goto(f"{farm.url}/desk/review")
    fallback = desk.locator("#items tbody tr", has_text=NOT_UNDERSTOOD)
    low_rated = desk.locator("#items tbody tr", has_text=ASKS_FOR_A_PERSON)
    await expect(fallback.locator(".why")).to_have_text("fallback, flagged by an agent, low rating (2/5)")
    await expect(fallback).to_contain_text("nlu_fallback")
    await expect(low_rated.locator(".why")).to_have_text("handoff (requested), low rating (2/5)")
    await assert_contrast(desk, at_least=8)

    await fallback.get_by_role("combobox").select_option("server_down")
    await fallback.get_by_role("button", name="Label").click()
    await expect(desk.locator("#items tbody tr", has_text=NOT_UNDERSTOOD)).to_have_count(0)  # no longer to label
    await desk.select_option("#status", "labelled")
    await expect(desk.locator("#items tbody tr", has_text=NOT_UNDERSTOOD).locator(".state")).to_have_text(
        "labelled server_down")

    # The low-rated request for a person is labelled too, but held out: retraining never learns it.
    await desk.select_option("#status", "open")
    await low_rated.get_by_role("combobox").select_option("human_handoff")
    await low_rated.get_by_role("checkbox", name="hold out for testing").check()
    await low_rated.get_by_role("button", name="Label").click()
    await expect(low_rated).to_have_count(0)

    await desk.click("#retrain")
    labelled = desk.locator("#run-table tr[data-set=labelled]")
    await expect(labelled.locator(".after")).to_have_text("100 %", timeout=60_000)
    await expect(labelled.locator(".before")).to_have_text("0 %")
    held_out = desk.locator("#run-table tr[data-set=held_out]")
    await expect(held_out.locator("td").first).to_have_text("1")
    await expect(held_out.locator(".after")).to_have_text("100 %")
    await expect(desk.locator("#run-errors li")).to_have_count(0)
    await assert_contrast(desk, at_least=8)

    # The label file is the project's NLU data now: `switchboard test nlu` on it passes.
    label_file = project / "data" / "review" / "demo.yml"
    assert ASKS_FOR_A_PERSON not in label_file.read_text(encoding="utf-8")
    assert ASKS_FOR_A_PERSON in (project / "tests" / "review" / "demo_nlu.yml").read_text(encoding="utf-8")
    out = project.parent / "results"
    result = await asyncio.to_thread(CliRunner().invoke, app, [
        "test", "nlu", "--bot", "demo", "--config", str(farm.config_path), "--nlu", str(label_file),
        "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "intent_report.json").read_text(encoding="utf-8"))
    assert report["accuracy"] == 1.0 and report["misclassified"] == []
    # ... and the bot in service understands it at once.
    assert review_service(farm).engine_of("demo").understand(NOT_UNDERSTOOD).intent == "server_down"  # type: ignore[union-attr]
