"""Shared fixtures of the fault tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bench import load


@pytest.fixture
async def fakes() -> AsyncIterator[load.Fakes]:
    """The fake Telegram and WhatsApp APIs of the benchmark, recording every reply."""
    fakes = await load.Fakes.start()
    yield fakes
    await fakes.stop()
