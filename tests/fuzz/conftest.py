"""A whole farm for the fuzz tests: Telegram and WhatsApp webhooks and the Slack desk's
``/slack/events``, all pointed at the platform fakes, on a real SQLite file."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from bench import load
from tests.fakes.slack_api import AGENT, AGENTS_CHANNEL, SIGNING_SECRET, FakeSlackAPI
from tests.support.engines import EchoEngine
from tests.support.farm import DEMO_PROJECT, RunningFarm, running_farm
from tests.support.wait import eventually

BOT = "demo"


@dataclass
class FuzzFarm:
    farm: RunningFarm
    http: aiohttp.ClientSession
    fakes: load.Fakes
    slack: FakeSlackAPI

    @property
    def url(self) -> str:
        return self.farm.url

    def stored(self) -> tuple[int, ...]:
        """Row counts of what a request may leave behind (inbox, contacts, events, seen keys, kv)."""
        db = sqlite3.connect(f"file:{self.farm.db_path}?mode=ro", uri=True, timeout=10)
        try:
            return tuple(
                int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # fixed table names
                for table in ("inbox", "contacts", "conversations", "events", "seen", "kv")
            )
        finally:
            db.close()

    async def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
                      ) -> tuple[int, bytes]:
        async with self.http.request(method, self.url + path, data=body, headers=headers or {}) as response:
            return response.status, await response.read()

    async def quiesce(self, timeout: float = 20.0) -> None:
        """Wait until what was accepted is processed and no send is under way.

        Not a full settle: a reply the fake platform keeps refusing stays queued for retry
        (writing nothing the invariants count), which is not what the fuzzing is about.
        """
        farm = self.farm.farm
        assert farm.turns is not None and farm.sender is not None and farm.store is not None
        async def quiet() -> bool:
            await farm.turns.idle()  # type: ignore[union-attr]
            return not await farm.store.conversations_with_pending_inbox(limit=1) and not farm.sender._inflight  # type: ignore[union-attr]

        await eventually(quiet, timeout=timeout, message="farm did not quiesce")

    async def healthy(self) -> bool:
        async with self.http.get(self.url + "/healthz") as response:
            return response.status == 200


@pytest.fixture
async def fuzz_farm(tmp_path: Path) -> AsyncIterator[FuzzFarm]:
    fakes = await load.Fakes.start()
    slack = FakeSlackAPI()
    await slack.start()
    channels = load.farm_channels(fakes)
    channels["telegram"]["webhook_url"] = "https://fuzz.invalid/webhooks/demo/telegram"
    bots = {BOT: {"project": str(DEMO_PROJECT), "languages": ["en"], "default_language": "en", "channels": channels}}
    desk = {"web": {"enabled": False}, "slack": {
        "enabled": True, "bot_token": slack.bot_token, "signing_secret": SIGNING_SECRET,
        "channel": AGENTS_CHANNEL, "agents": [AGENT], "api_base": slack.url}}
    try:
        async with running_farm(tmp_path, bots=bots, desk=desk, engines={BOT: EchoEngine()}) as farm, \
                aiohttp.ClientSession() as http:
            yield FuzzFarm(farm, http, fakes, slack)
    finally:
        await slack.stop()
        await fakes.stop()
