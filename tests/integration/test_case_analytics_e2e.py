"""Issue 17 through the real webhooks (Telegram and WhatsApp fakes), the web desk and the CLI:
10 cases on two channels — 6 solved by the bot, 4 handed over (2 requested, 1 frustration,
1 always-human intent), 3 of them claimed and closed, 2 rated (5 and 2) — and
``switchboard report --format json`` gives exactly those figures; so does it after a restart
of the farm and after ``switchboard forget`` of one customer. /metrics serves the store's counts."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from core.model import ConversationStatus
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.fakes.whatsapp_api import FakeWhatsAppAPI
from tests.handoff.handoff_support import PASSWORDS, desk_config
from tests.integration.test_honest_triggers_e2e import (
    TG_SECRET,
    TG_TOKEN,
    WA_PHONE,
    WA_SECRET,
    WA_TOKEN,
    TelegramCustomer,
    WhatsAppCustomer,
    desk_post,
    wait_until,
)
from tests.support.farm import DEMO_PROJECT, RunningFarm, running_farm

pytestmark = [
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Please use 'Bot.getUpdates':telegram.warnings.PTBUserWarning"),
]

COMMAND = [sys.executable, "-c", "from core.cli import main; main()"]  # what the `switchboard` script runs
FRUSTRATED = "DAS IST DOCH SCHEISSE, IHR BOT IST VÖLLIG NUTZLOS!!!"
ASK_FOR_A_PERSON = "Ich will einen Menschen sprechen"


def bots(telegram: FakeTelegramAPI, whatsapp: FakeWhatsAppAPI) -> dict[str, Any]:
    return {"demo": {
        "project": str(DEMO_PROJECT), "languages": ["de", "en"], "default_language": "de",
        "handoff": {"business_hours": {}, "always_human_intents": ["cancel_contract"]},
        "channels": {
            "telegram": {"token": TG_TOKEN, "webhook_secret": TG_SECRET, "api_base": telegram.url,
                         "webhook_url": "https://bots.example/webhooks/demo/telegram"},
            "whatsapp": {"access_token": WA_TOKEN, "app_secret": WA_SECRET, "verify_token": "v",
                         "phone_number_id": WA_PHONE, "api_base": whatsapp.url},
        },
    }}


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegramAPI]:
    async with FakeTelegramAPI(TG_TOKEN) as api:
        yield api


@pytest.fixture
async def whatsapp() -> AsyncIterator[FakeWhatsAppAPI]:
    async with FakeWhatsAppAPI(WA_TOKEN, WA_PHONE) as api:
        yield api


async def switchboard(*args: str) -> str:
    """Run the CLI in its own process (as an operator would, beside the running farm)."""
    done = await asyncio.to_thread(subprocess.run, [*COMMAND, *args], capture_output=True, text=True, timeout=120,
                                   check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def report(config: Path, *options: str) -> dict[str, Any]:
    return dict(json.loads(await switchboard("report", "--config", str(config), "--format", "json", *options)))


async def handled_by_anna(farm: RunningFarm, customer: TelegramCustomer | WhatsAppCustomer, *,
                          rating: str | None) -> None:
    """Anna claims, answers and closes; the customer rates (or does not)."""
    conversation = await customer.conversation()
    assert conversation.status is ConversationStatus.WAITING
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as agent:
        await desk_post(agent, farm.url, "login", {"agent": "anna", "password": PASSWORDS["anna"]})
        base = f"conversations/{conversation.id}"
        await desk_post(agent, farm.url, f"{base}/claim")
        await desk_post(agent, farm.url, f"{base}/reply", {"text": "Ich kümmere mich darum."})
        before = len(customer.received())
        await desk_post(agent, farm.url, f"{base}/close")
    await farm.farm.settle()
    await wait_until(lambda: any("zufrieden" in t for t in customer.received()[before:]), "the rating question")
    if rating is not None:
        assert "Bewertung" in await customer.says(rating)


async def play_the_script(farm: RunningFarm, telegram: FakeTelegramAPI, whatsapp: FakeWhatsAppAPI) -> str:
    """The ten cases; returns the contact id of the customer who is forgotten afterwards."""
    # Six cases the bot solves alone, three per channel.
    for chat_id, text in ((7001, "Wie sind eure Öffnungszeiten?"), (7002, "Was kostet der Pro-Tarif?"),
                          (7003, "Hallo")):
        await TelegramCustomer(farm, telegram, chat_id).says(text)
    for wa_id, text in (("491700000001", "Wie sind eure Öffnungszeiten?"),
                        ("491700000002", "Was kostet der Pro-Tarif?"), ("491700000003", "Hallo")):
        await WhatsAppCustomer(farm, whatsapp, wa_id).says(text)

    # Two ask for a person; both are served and rate it, 5 and 2.
    asks_telegram = TelegramCustomer(farm, telegram, 7004)
    await asks_telegram.says(ASK_FOR_A_PERSON)
    await handled_by_anna(farm, asks_telegram, rating="5")
    asks_whatsapp = WhatsAppCustomer(farm, whatsapp, "491700000004")
    await asks_whatsapp.says(ASK_FOR_A_PERSON)
    await handled_by_anna(farm, asks_whatsapp, rating="2")

    # One is frustrated (served and closed, no rating); one wants to cancel (always human, still waiting).
    frustrated = TelegramCustomer(farm, telegram, 7005)
    await frustrated.says("Hallo")
    await frustrated.says(FRUSTRATED)
    assert (await frustrated.conversation()).handoff_reason == "frustration"
    await handled_by_anna(farm, frustrated, rating=None)
    cancels = WhatsAppCustomer(farm, whatsapp, "491700000005")
    await cancels.says("Ich möchte kündigen")
    waiting = await cancels.conversation()
    assert (waiting.status, waiting.handoff_reason) == (ConversationStatus.WAITING, "intent")
    return (await asks_telegram.conversation()).contact_id


def assert_the_script(found: dict[str, Any]) -> None:
    demo = found["bots"]["demo"]
    assert (demo["cases"], demo["bot_only"], demo["containment_rate"], demo["handoffs"]) == (10, 6, 0.6, 4)
    assert demo["handoffs_by_reason"] == {"requested": 2, "frustration": 1, "fallback": 0, "intent": 1, "action": 0}
    assert demo["csat"] == {"responses": 2, "average": 3.5,
                            "distribution": {"1": 0, "2": 1, "3": 0, "4": 0, "5": 1}, "response_rate": 0.6667}
    assert demo["messages"]["customer"] == 10 + 1 + 2  # one message per case, the frustrated one's "Hallo", 2 ratings
    assert demo["messages"]["agent"] == 3
    assert demo["dead_letters"] == 0
    for measure in ("time_to_claim_seconds", "time_to_first_reply_seconds", "handle_time_seconds"):
        spread = demo[measure]
        assert 0 <= spread["p50"] <= spread["p90"] <= spread["max"], (measure, spread)
    assert set(demo) == {"cases", "bot_only", "containment_rate", "handoffs", "handoffs_by_reason",
                         "time_to_claim_seconds", "time_to_first_reply_seconds", "handle_time_seconds", "csat",
                         "fallback_rate", "messages", "dead_letters"}


async def metrics(farm: RunningFarm) -> str:
    await farm.farm.services["analytics_metrics"].refresh()
    async with aiohttp.ClientSession() as http, http.get(f"{farm.url}/metrics") as response:
        return await response.text()


async def test_ten_scripted_cases_give_exactly_their_figures_after_a_restart_and_a_forget(
    tmp_path: Path, telegram: FakeTelegramAPI, whatsapp: FakeWhatsAppAPI,
) -> None:
    async with running_farm(tmp_path, bots=bots(telegram, whatsapp), desk=desk_config()) as farm:
        forgotten = await play_the_script(farm, telegram, whatsapp)
        config = farm.config_path
        first = await report(config)
        assert_the_script(first)
        by_channel = (await report(config, "--by", "channel"))["bots"]["demo"]["groups"]
        assert {k: (g["cases"], g["bot_only"]) for k, g in by_channel.items()} == {
            "telegram": (5, 3), "whatsapp": (5, 3)}
        by_intent = (await report(config, "--by", "intent"))["bots"]["demo"]["groups"]
        assert by_intent["cancel_contract"]["handoffs_by_reason"]["intent"] == 1
        by_agent = (await report(config, "--by", "agent"))["bots"]["demo"]["groups"]
        assert (by_agent["web:anna"]["cases"], by_agent["(none)"]["cases"]) == (3, 7)
        live = await metrics(farm)
        assert 'switchboard_cases_total{bot="demo"} 10.0' in live
        assert 'switchboard_queue_waiting{bot="demo"} 1.0' in live

    # A new farm process on the same file: nothing was kept in memory.
    async with running_farm(tmp_path, bots=bots(telegram, whatsapp), desk=desk_config()) as farm:
        assert await report(farm.config_path) == first
        live = await metrics(farm)
        for line in ('switchboard_cases_total{bot="demo"} 10.0',
                     'switchboard_case_handoffs_total{bot="demo",reason="requested"} 2.0',
                     'switchboard_case_handoffs_total{bot="demo",reason="frustration"} 1.0',
                     'switchboard_case_handoffs_total{bot="demo",reason="intent"} 1.0',
                     'switchboard_csat_responses_total{bot="demo"} 2.0',
                     'switchboard_csat_score_sum_total{bot="demo"} 7.0',
                     'switchboard_queue_waiting{bot="demo"} 1.0'):
            assert line in live, line

        # Erasing a rated customer keeps every figure.
        await switchboard("forget", "--config", str(farm.config_path), "--contact", forgotten, "--yes")
        assert (await farm.store.export_contact(forgotten)) == {}
        assert await report(farm.config_path) == first
