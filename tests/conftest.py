"""Test-wide set-up: quiet logging, shared fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from core import logging as sb_logging
from tests.fakes.slack_api import FakeSlackAPI
from tests.store.mongo_server import farm_mongo_url  # noqa: F401  (the two-process tests' server)

sb_logging.configure("warning")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlackAPI]:
    """A fake Slack Web API (agents' channel, users, files) on 127.0.0.1."""
    async with FakeSlackAPI() as api:
        yield api
