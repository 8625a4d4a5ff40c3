"""Two farm processes on one MongoDB database: each message processed once, replies in order.

Two ``switchboard run`` processes (the CLI's own code path, with a deterministic echo
engine in place of NLU; see ``bench/scale_out.py``) share one database on a SecantusDB
server of their own. Customers post over the web chat, alternately at both processes,
each message after the previous one was acknowledged.

CI runs 200 messages from 20 customers; ``SWITCHBOARD_FULL=1`` runs 1,000 from 100.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.scale_out import run_once
from tests.store.mongo_server import secantus_server, with_options

pytestmark = [pytest.mark.mongo, pytest.mark.slow]

FULL = os.environ.get("SWITCHBOARD_FULL") == "1"
MESSAGES, CUSTOMERS = (1000, 100) if FULL else (200, 20)


@pytest.fixture
def farm_mongo_url(tmp_path: Path) -> Iterator[str]:
    """A server of its own (this test writes a lot), without retryable writes (SecantusDB slows down)."""
    external = os.environ.get("MONGODB_URL")
    if external:
        yield external
        return
    with secantus_server(tmp_path / "db") as url:
        yield with_options(url, retryWrites="false")


@pytest.mark.timeout(900 if FULL else 240)
async def test_two_farm_processes_process_every_message_once_and_reply_in_order(
    tmp_path: Path, farm_mongo_url: str
) -> None:
    result = await run_once(tmp_path, farm_mongo_url, processes=2, messages=MESSAGES, customers=CUSTOMERS,
                            timeout=600 if FULL else 150)
    assert result.verified["messages"] == MESSAGES
    assert result.verified["customers"] == CUSTOMERS
    assert result.verified["problems"] == []
