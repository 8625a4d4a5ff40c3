"""The team lead's insights page in chromium, after the scripted run of issue 17 (10 cases through the
Telegram and WhatsApp webhooks): the cards, the charts and the tables show that run, and the
downloaded CSV is exactly what ``switchboard report --format csv`` prints for the same range."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from playwright.async_api import Page, expect

from core.model import utcnow
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.fakes.whatsapp_api import FakeWhatsAppAPI
from tests.handoff.handoff_support import HASHES, PASSWORDS, desk_config
from tests.handoff.handoff_support import bots as handoff_bots
from tests.integration.test_case_analytics_e2e import bots, play_the_script, switchboard
from tests.integration.test_honest_triggers_e2e import TG_TOKEN, WA_PHONE, WA_TOKEN, desk_post
from tests.support.desk import log_in
from tests.support.farm import RunningFarm, running_farm

pytestmark = [
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Please use 'Bot.getUpdates':telegram.warnings.PTBUserWarning"),
]


def with_a_lead() -> dict[str, Any]:
    """The usual desk (anna serves demo) and Lena, who leads the demo team (her password is Ben's)."""
    desk = desk_config()
    desk["web"]["agents"].append({"id": "lena", "name": "Lena Lead", "password_hash": HASHES["ben"],
                                  "bots": ["demo"], "role": "lead"})
    return desk


@pytest_asyncio.fixture
async def scripted(tmp_path: Path) -> AsyncIterator[RunningFarm]:
    async with FakeTelegramAPI(TG_TOKEN) as telegram, FakeWhatsAppAPI(WA_TOKEN, WA_PHONE) as whatsapp, \
            running_farm(tmp_path, bots=bots(telegram, whatsapp), desk=with_a_lead()) as farm:
        await play_the_script(farm, telegram, whatsapp)
        yield farm


async def test_the_lead_sees_the_run_in_charts_and_tables_and_the_csv_matches_the_report(
    scripted: RunningFarm, desk_page: Page, tmp_path: Path,
) -> None:
    page = desk_page
    await log_in(page, scripted.url, "lena", PASSWORDS["ben"])
    await expect(page.locator("#queue-pane")).to_be_visible()
    await page.goto(f"{scripted.url}/desk/insights")
    today = utcnow().date().isoformat()
    await expect(page.locator("#until")).to_have_value(today)

    await expect(page.locator("#card-cases b")).to_have_text("10")
    await expect(page.locator("#card-containment b")).to_have_text("60 %")
    await expect(page.locator("#card-handoffs b")).to_have_text("4")
    await expect(page.locator("#card-csat b")).to_have_text("3.5")

    # The charts are drawn for today: containment 0.6, handoffs stacked by reason, ratings 2 and 5.
    day = page.locator(f'#svg-containment rect.bar[data-label="{today[5:]}"]')
    await expect(day).to_have_attribute("data-value", "0.6")
    for reason, count in (("requested", "2.0"), ("frustration", "1.0"), ("intent", "1.0")):
        bar = page.locator(f'#svg-handoffs rect.bar[data-series="{reason}"][data-label="{today[5:]}"]')
        await expect(bar).to_have_attribute("data-value", count)
    ratings = page.locator("#svg-csat-distribution rect.bar")
    await expect(ratings).to_have_count(5)
    values = [await ratings.nth(i).get_attribute("data-value") for i in range(5)]
    assert values == ["0.0", "1.0", "0.0", "0.0", "1.0"]
    await expect(page.locator("#svg-waiting rect.bar").first).to_be_visible()
    await expect(page.locator("#svg-csat rect.bar")).to_have_attribute("data-value", "3.5")

    # Tables by channel, language, agent and intent.
    channels = page.locator("#by-channel tbody tr")
    await expect(channels).to_have_count(2)
    await expect(channels.nth(0)).to_contain_text("telegram")
    await expect(channels.nth(1)).to_contain_text("whatsapp")
    await expect(page.locator("#by-agent")).to_contain_text("web:anna")
    await expect(page.locator("#by-intent")).to_contain_text("cancel_contract")
    await expect(page.locator("#by-language")).to_be_visible()

    # The CSV download is the report's CSV, byte for byte.
    async with page.expect_download() as download_info:
        await page.click("#csv")
    download = await download_info.value
    saved = tmp_path / "insights.csv"
    await download.save_as(saved)
    since = await page.locator("#since").input_value()
    expected = await switchboard("report", "--config", str(scripted.config_path), "--bot", "demo", "--since", since,
                                 "--until", today, "--by", "day", "--format", "csv")
    assert saved.read_text(encoding="utf-8") == expected
    assert "demo,all,10,6,0.6,4,2,1,0,1,0," in expected


async def test_the_insights_page_is_for_leads_only(tmp_path: Path) -> None:
    async with running_farm(tmp_path, bots=handoff_bots(), desk=with_a_lead()) as farm:
        async with aiohttp.ClientSession() as anonymous, anonymous.get(f"{farm.url}/desk/insights") as response:
            assert response.status == 401
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as agent:
            await desk_post(agent, farm.url, "login", {"agent": "anna", "password": PASSWORDS["anna"]})
            async with agent.get(f"{farm.url}/desk/insights") as response:
                assert response.status == 403
            async with agent.get(f"{farm.url}/desk/insights/report.csv") as response:
                assert response.status == 403
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as lead:
            await desk_post(lead, farm.url, "login", {"agent": "lena", "password": PASSWORDS["ben"]})
            async with lead.get(f"{farm.url}/desk/insights") as response:
                assert response.status == 200
                assert "No cases in this range." in await response.text()
