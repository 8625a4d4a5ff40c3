"""Dead letters on the web desk, in a real chromium: a message the bot could not process shows
under "Failed messages"; once the bot is fixed, the agent's Replay button gets the customer
the answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest_asyncio
from playwright.async_api import Page, expect

from core.engine import TurnInput, TurnOutput
from tests.handoff.handoff_support import PASSWORDS, bots, desk_config
from tests.support.desk import log_in
from tests.support.engines import EchoEngine
from tests.support.farm import RunningFarm, running_farm


class PoisonedEngine(EchoEngine):
    """Echoes, but while ``poisoned`` sets a slot no store can encode (a broken custom action)."""

    poisoned = True

    async def handle(self, turn: TurnInput) -> TurnOutput:
        output = await super().handle(turn)
        if self.poisoned:
            return TurnOutput(events=output.events, replies=output.replies,
                              conversation=output.conversation.evolve(slots={"price": Decimal("9.99")}))
        return output


@pytest_asyncio.fixture
async def engine() -> PoisonedEngine:
    return PoisonedEngine()


@pytest_asyncio.fixture
async def farm(tmp_path: Path, engine: PoisonedEngine) -> AsyncIterator[RunningFarm]:
    async with running_farm(tmp_path, bots=bots(), desk=desk_config(), engines={"demo": engine}) as running:
        running.farm.turns.config = running.config.turns.model_copy(update={"max_attempts": 1})
        yield running


async def test_an_agent_replays_a_failed_message_from_the_desk(
    farm: RunningFarm, engine: PoisonedEngine, page: Page, desk_page: Page
) -> None:
    customer, desk = page, desk_page
    await log_in(desk, farm.url, "anna", PASSWORDS["anna"])
    await expect(desk.locator("#live")).to_have_text("live")
    await customer.goto(f"{farm.url}/chat/demo")
    await expect(customer.locator("#status")).to_have_text("online")
    await customer.fill("#input", "Was kostet das?")
    await customer.press("#input", "Enter")
    await expect(customer.locator(".msg.bot").last).to_contain_text("Entschuldigung")

    failed = desk.locator("#dead-letters li")
    await expect(failed).to_have_count(1)  # pushed live, no reload
    await expect(failed).to_contain_text("Was kostet das?")
    await expect(desk.locator("#count-dead")).to_have_text("1")

    engine.poisoned = False  # the action is fixed
    await failed.locator("button[data-action=replay]").click()
    await expect(failed).to_have_count(0)
    await expect(customer.locator(".msg.bot").last).to_contain_text("echo: Was kostet das?")
