"""A farm whose start fails part-way leaves nothing open: the same farm.yml starts again at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import load_farm_config
from core.errors import StoreUnavailable, Unauthorized
from core.farm import Farm
from tests.fakes.slack_api import AGENTS_CHANNEL, FakeSlackAPI
from tests.support.engines import EchoEngine
from tests.support.farm import write_config


async def test_a_failed_start_closes_the_store_and_stops_what_it_started(tmp_path: Path, slack: FakeSlackAPI) -> None:
    desk = {"web": {"enabled": False}, "slack": {"enabled": True, "bot_token": "xoxb-revoked", "signing_secret": "s",
                                                  "channel": AGENTS_CHANNEL, "api_base": slack.url}}
    config = load_farm_config(write_config(tmp_path, desk=desk))
    farm = Farm(config, engines={"demo": EchoEngine()})
    with pytest.raises(Unauthorized):
        await farm.start()  # the Slack desk checks its token after the channels started
    assert farm.store is not None
    with pytest.raises(StoreUnavailable):
        await farm.store.ping()  # closed
    # The SQLite file's lock is free again: a farm with a working config starts on it.
    fixed = load_farm_config(write_config(tmp_path, desk={"web": {"enabled": False}}, port=config.server.port))
    again = Farm(fixed, engines={"demo": EchoEngine()})
    await again.start()
    await again.stop()
