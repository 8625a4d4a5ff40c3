"""Telegram long polling through the whole farm (no public URL): updates in, replies out, restart-safe."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.telegram_api import FakeTelegramAPI, text_update
from tests.support.engines import EchoEngine
from tests.support.farm import DEMO_PROJECT, running_farm

pytestmark = [
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Please use 'Bot.getUpdates':telegram.warnings.PTBUserWarning"),
]

TOKEN = "7000000002:AAH-polling-token"


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegramAPI]:
    async with FakeTelegramAPI(TOKEN) as api:
        yield api


def bots(telegram: FakeTelegramAPI) -> dict[str, object]:
    return {"demo": {"project": str(DEMO_PROJECT), "channels": {
        "telegram": {"token": TOKEN, "api_base": telegram.url, "poll_timeout": 1}}}}


async def test_polling_farm_answers_and_never_processes_an_update_twice_across_a_restart(
    tmp_path: Path, telegram: FakeTelegramAPI
) -> None:
    engine = EchoEngine()
    async with running_farm(tmp_path, bots=bots(telegram), engines={"demo": engine}) as farm:
        telegram.push_update(text_update(5151, "first", update_id=100))
        [reply] = await telegram.wait_for("sendMessage", 1)
        assert reply["chat_id"] == 5151 and reply["text"].endswith("echo: first")
        await farm.farm.settle()
    engine_after_restart = EchoEngine()
    async with running_farm(tmp_path, bots=bots(telegram), engines={"demo": engine_after_restart}) as farm:
        telegram.push_update(text_update(5151, "second", update_id=101))
        await telegram.wait_for("sendMessage", 2)
        await farm.farm.settle()
    assert engine.seen == ["first"]
    assert engine_after_restart.seen == ["second"]  # update 100 was not fetched or answered again
    assert [c["text"].rsplit("\n", 1)[-1] for c in telegram.calls("sendMessage")] == ["echo: first", "echo: second"]


async def test_polling_starts_and_answers_after_delete_webhook_failed_twice(
    tmp_path: Path, telegram: FakeTelegramAPI
) -> None:
    """A webhook left over from an earlier deployment, and deleteWebhook failing at start: the
    start-up step is retried, so polling begins instead of meeting 409 Conflict for ever."""
    telegram.webhook = {"url": "https://old.example/webhooks/demo/telegram", "secret_token": None,
                        "allowed_updates": None}
    telegram.fail_next(2, status=500, method="deleteWebhook")
    async with running_farm(tmp_path, bots=bots(telegram), engines={"demo": EchoEngine()}) as farm:
        telegram.push_update(text_update(5151, "still there?", update_id=200))
        [reply] = await telegram.wait_for("sendMessage", 1, timeout=10.0)
        assert reply["text"].endswith("echo: still there?")
        await farm.farm.settle()
    assert telegram.count("deleteWebhook") == 3
    assert telegram.webhook is None


class SlowEchoEngine(EchoEngine):
    """Takes long enough that the customer sees a typing indicator first."""

    async def handle(self, turn: Any) -> Any:
        await asyncio.sleep(0.6)
        return await super().handle(turn)


async def test_a_failed_typing_indicator_is_logged_as_a_warning_and_the_reply_still_goes_out(
    tmp_path: Path, telegram: FakeTelegramAPI, caplog: pytest.LogCaptureFixture
) -> None:
    telegram.fail_next(1, status=400, method="sendChatAction")
    with caplog.at_level(logging.WARNING):
        async with running_farm(tmp_path, bots=bots(telegram), engines={"demo": SlowEchoEngine()}) as farm:
            telegram.push_update(text_update(5151, "slow one", update_id=300))
            [reply] = await telegram.wait_for("sendMessage", 1, timeout=10.0)
            assert reply["text"].endswith("echo: slow one")
            await farm.farm.settle()
    assert telegram.count("sendChatAction") == 1
    assert any("turn.typing_failed" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records)
