"""Test-wide set-up: quiet logging, shared fixtures."""

from __future__ import annotations

import pytest

from core import logging as sb_logging

sb_logging.configure("warning")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
