"""An agent typing in the web desk for a Telegram customer: Telegram's own "typing…" (sendChatAction)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from core.model import ConversationStatus, Identity
from tests.fakes.telegram_api import FakeTelegramAPI, text_update
from tests.handoff.handoff_support import PASSWORDS, desk_config
from tests.support.farm import DEMO_PROJECT, RunningFarm, running_farm

pytestmark = [
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Please use 'Bot.getUpdates':telegram.warnings.PTBUserWarning"),
]

TOKEN = "7000000016:AAH-typing-token"
SECRET = "typing-secret"
H = {"X-Desk-Request": "1"}
CHAT = 4242


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegramAPI]:
    async with FakeTelegramAPI(TOKEN) as api:
        yield api


@pytest.fixture
async def farm(tmp_path: Path, telegram: FakeTelegramAPI) -> AsyncIterator[RunningFarm]:
    bots = {"demo": {
        "project": str(DEMO_PROJECT), "languages": ["de", "en"], "default_language": "de",
        "handoff": {"business_hours": {}},
        "channels": {"telegram": {"token": TOKEN, "webhook_secret": SECRET, "api_base": telegram.url,
                                  "webhook_url": "https://bots.example/webhooks/demo/telegram"}},
    }}
    async with running_farm(tmp_path, bots=bots, desk=desk_config()) as running:
        yield running


async def test_agent_typing_for_a_telegram_customer_sends_telegrams_typing_action(
    farm: RunningFarm, telegram: FakeTelegramAPI
) -> None:
    async with aiohttp.ClientSession() as http:
        update = text_update(CHAT, "Ich möchte mit einem Mitarbeiter sprechen", update_id=1)
        async with http.post(f"{farm.url}/webhooks/demo/telegram", json=update,
                             headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as response:
            assert response.status == 200
        await farm.farm.settle()
        [contact] = await farm.store.find_contacts("demo", identity=Identity("telegram", str(CHAT), str(CHAT)))
        conversation = await farm.store.conversation_for("demo", contact.id)
        assert conversation.status is ConversationStatus.WAITING

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as anna:
        async with anna.post(f"{farm.url}/desk/api/login", json={"agent": "anna", "password": PASSWORDS["anna"]},
                             headers=H) as response:
            assert response.status == 200
        async with anna.post(f"{farm.url}/desk/api/conversations/{conversation.id}/claim", json={},
                             headers=H) as response:
            assert response.status == 200
        before = telegram.count("sendChatAction")
        async with anna.post(f"{farm.url}/desk/api/conversations/{conversation.id}/typing", json={},
                             headers=H) as response:
            assert response.status == 200
            assert (await response.json())["sent"] is True
        calls = await telegram.wait_for("sendChatAction", before + 1)
        assert str(calls[-1]["chat_id"]) == str(CHAT) and calls[-1]["action"] == "typing"
