"""Telegram and WhatsApp end to end: platform webhook in through the farm's HTTP routes,
the bot's reply out at the fake platform API, 429s retried by the outbox after retry_after."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from core.store.base import OutboxItem
from tests.fakes.telegram_api import FakeTelegramAPI, callback_update, text_update
from tests.fakes.whatsapp_api import FakeWhatsAppAPI, post_webhook, text_webhook
from tests.support.clock import FakeClock
from tests.support.engines import EchoEngine
from tests.support.farm import DEMO_PROJECT, RunningFarm, running_farm
from tests.support.wait import eventually

pytestmark = [
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Please use 'Bot.getUpdates':telegram.warnings.PTBUserWarning"),
]

TG_TOKEN = "7000000001:AAH-e2e-token"
TG_SECRET = "e2e-secret"
WA_TOKEN = "EAAG-e2e"
WA_SECRET = "wa-app-secret"
WA_PHONE = "106540352242922"


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegramAPI]:
    async with FakeTelegramAPI(TG_TOKEN) as api:
        yield api


@pytest.fixture
async def whatsapp() -> AsyncIterator[FakeWhatsAppAPI]:
    async with FakeWhatsAppAPI(WA_TOKEN, WA_PHONE) as api:
        yield api


def bots(telegram: FakeTelegramAPI, whatsapp: FakeWhatsAppAPI) -> dict[str, Any]:
    return {"demo": {"project": str(DEMO_PROJECT), "channels": {
        "telegram": {"token": TG_TOKEN, "webhook_secret": TG_SECRET, "api_base": telegram.url,
                     "webhook_url": "https://bots.example/webhooks/demo/telegram"},
        "whatsapp": {"access_token": WA_TOKEN, "app_secret": WA_SECRET, "verify_token": "v",
                     "phone_number_id": WA_PHONE, "api_base": whatsapp.url},
    }}}


async def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    await eventually(predicate, timeout=timeout, message="condition not reached")


async def test_telegram_update_in_reply_with_buttons_out(
    tmp_path: Path, telegram: FakeTelegramAPI, whatsapp: FakeWhatsAppAPI
) -> None:
    async with running_farm(tmp_path, bots=bots(telegram, whatsapp), engines={"demo": EchoEngine()}) as farm:
        assert telegram.calls("setWebhook")[0]["secret_token"] == TG_SECRET
        async with aiohttp.ClientSession() as session:
            url = f"{farm.url}/webhooks/demo/telegram"
            async with session.post(url, json=text_update(4242, "show buttons", update_id=1),
                                    headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}) as r:
                assert r.status == 200
            async with session.post(url, json=text_update(4242, "forged", update_id=2),
                                    headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"}) as r:
                assert r.status == 403
        await farm.farm.settle()
        [reply] = await telegram.wait_for("sendMessage")
        assert reply["chat_id"] == 4242 and reply["text"].endswith("echo: show buttons")
        assert "automated assistant" in reply["text"]  # the first reply says it is a bot
        assert reply["reply_markup"] == {"inline_keyboard": [[{"text": "Yes", "callback_data": "/affirm"}],
                                                             [{"text": "No", "callback_data": "/deny"}]]}
        async with aiohttp.ClientSession() as session, \
                session.post(f"{farm.url}/webhooks/demo/telegram",
                             json=callback_update(4242, "/affirm", title="Yes", update_id=3),
                             headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}) as r:
            assert r.status == 200
        await telegram.wait_for("answerCallbackQuery")
        await farm.farm.settle()
        await telegram.wait_for("sendMessage", 2)
        assert all(c["text"] != "echo: forged" for c in telegram.calls("sendMessage"))


async def test_whatsapp_message_in_reply_with_buttons_out(
    tmp_path: Path, telegram: FakeTelegramAPI, whatsapp: FakeWhatsAppAPI
) -> None:
    async with running_farm(tmp_path, bots=bots(telegram, whatsapp), engines={"demo": EchoEngine()}) as farm:
        url = f"{farm.url}/webhooks/demo/whatsapp"
        assert await post_webhook(url, text_webhook("491701234567", "buttons please"), app_secret=WA_SECRET) == 200
        assert await post_webhook(url, text_webhook("491701234567", "forged"), app_secret="nope") == 401
        await farm.farm.settle()
        [reply] = await whatsapp.wait_for_messages(1)
        assert reply["to"] == "491701234567" and reply["type"] == "interactive"
        assert reply["interactive"]["body"]["text"].endswith("echo: buttons please")
        assert [b["reply"] for b in reply["interactive"]["action"]["buttons"]] == [
            {"id": "/affirm", "title": "Yes"}, {"id": "/deny", "title": "No"}]


async def refused_reply(farm: RunningFarm) -> OutboxItem:
    """The farm's one reply once its first send was refused: it waits in the outbox for its retry."""
    async def waiting() -> OutboxItem | None:
        conversations = await farm.store.list_conversations("demo")
        events = [e for c in conversations for e in await farm.store.transcript(c.id) if e.type == "bot"]
        if not events:
            return None
        item = await farm.store.get_outbox_item(events[0].data["metadata"]["outbound_id"])
        return item if item is not None and item.attempts == 1 and item.not_before is not None else None

    return await eventually(waiting, message="the refused reply was not put back for a retry")


async def test_telegram_429_is_retried_after_retry_after_and_delivered_once(
    tmp_path: Path, telegram: FakeTelegramAPI, whatsapp: FakeWhatsAppAPI
) -> None:
    telegram.fail_next(1, status=429, retry_after=1, method="sendMessage")
    clock = FakeClock()
    async with running_farm(tmp_path, bots=bots(telegram, whatsapp), engines={"demo": EchoEngine()},
                            clock=clock) as farm:
        async with aiohttp.ClientSession() as session, \
                session.post(f"{farm.url}/webhooks/demo/telegram", json=text_update(77, "hello", update_id=9),
                             headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}) as r:
            assert r.status == 200
        item = await refused_reply(farm)
        assert item.not_before is not None and item.not_before - clock.now() >= timedelta(seconds=0.9), \
            "the outbox waits retry_after"
        assert telegram.count("sendMessage") == 1
        clock.advance(1)
        await wait_for(lambda: telegram.count("sendMessage") >= 2)
        await farm.farm.settle()
        attempts = [c for c in telegram.requests if c.method == "sendMessage"]
        assert len(attempts) == 2, "one refused attempt, then exactly one delivery"
        assert attempts[1].params["text"].endswith("echo: hello")


async def test_whatsapp_rate_limit_is_retried_and_delivered_once(
    tmp_path: Path, telegram: FakeTelegramAPI, whatsapp: FakeWhatsAppAPI
) -> None:
    whatsapp.fail_next(1, code=130429, target="messages")
    clock = FakeClock()
    async with running_farm(tmp_path, bots=bots(telegram, whatsapp), engines={"demo": EchoEngine()},
                            clock=clock) as farm:
        url = f"{farm.url}/webhooks/demo/whatsapp"
        assert await post_webhook(url, text_webhook("491709999999", "hi"), app_secret=WA_SECRET) == 200
        item = await refused_reply(farm)
        assert item.not_before is not None and item.not_before - clock.now() >= timedelta(seconds=0.9), \
            "the outbox waits (130429 → retry after 1 s)"
        assert len(whatsapp.messages()) == 1
        clock.advance(1)
        await wait_for(lambda: len(whatsapp.messages()) >= 2)
        await farm.farm.settle()
        sends = [c for c in whatsapp.requests if "to" in c.body]
        assert len(sends) == 2 and sends[0].body == sends[1].body, "one refused attempt, then exactly one delivery"
