"""Two farm processes on one MongoDB database: each message processed once, each reply sent once, in order.

Two ``switchboard run`` processes (the CLI's own code path, with a deterministic echo
engine in place of NLU; see ``bench/scale_out.py``) share one database on a SecantusDB
server of their own. Customers post over the web chat, alternately at both processes,
each message after the previous one was acknowledged, and keep their sockets open until
the farm is done: every reply frame they receive is counted, so a reply sent twice (by
one process or by both) shows up as a duplicate, as the customer would see it.

CI runs 200 messages from 20 customers; ``SWITCHBOARD_FULL=1`` runs 2,000 from 200.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.scale_out import run_once

pytestmark = [pytest.mark.mongo, pytest.mark.slow]

FULL = os.environ.get("SWITCHBOARD_FULL") == "1"
MESSAGES, CUSTOMERS = (2000, 200) if FULL else (200, 20)


@pytest.mark.timeout(1200 if FULL else 240)
async def test_two_farm_processes_process_every_message_once_and_send_every_reply_once_in_order(
    tmp_path: Path, farm_mongo_url: str
) -> None:
    result = await run_once(tmp_path, farm_mongo_url, processes=2, messages=MESSAGES, customers=CUSTOMERS,
                            timeout=900 if FULL else 150)
    report = result.as_dict()
    print(f"\n{MESSAGES} messages, {CUSTOMERS} customers, 2 processes: {report['seconds']} s, "
          f"{report['messages_per_second']} messages/s, {report['frames_received']} reply frames for "
          f"{report['replies']} replies, {report['duplicate_replies']} duplicates")
    assert result.verified["messages"] == MESSAGES
    assert result.verified["customers"] == CUSTOMERS
    assert result.verified["problems"] == []  # incl. every reply received, in order
    assert result.duplicates == []  # no crash: no reply reached a customer twice
    assert result.verified["received"] == result.verified["replies"]
