"""Two farm processes on one MongoDB database, one killed with SIGKILL in the middle of the load.

Web chat customers post alternately at both ``switchboard run`` processes (the harness of
``bench/scale_out.py``; the outbox lease is 6 s there). Once a third of the messages are
acknowledged the second process is killed; the customers carry on with the first, which
takes over the dead one's turns and claimed replies when their leases run out. Then: every
message processed once and in order, every reply reached its customer, in order, and a reply
the customer received twice is one the store knew to be in doubt (its send was claimed but
its result never recorded: the crash window). How many is printed.

CI runs 300 messages from 30 customers; ``SWITCHBOARD_FULL=1`` runs 2,000 from 200.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.scale_out import run_once

pytestmark = [pytest.mark.mongo, pytest.mark.slow]

FULL = os.environ.get("SWITCHBOARD_FULL") == "1"
MESSAGES, CUSTOMERS = (2000, 200) if FULL else (300, 30)


@pytest.mark.timeout(1200 if FULL else 150)
async def test_kill9_of_one_of_two_processes_sends_twice_only_replies_in_doubt(
    tmp_path: Path, farm_mongo_url: str, record_property: pytest.RecordProperty
) -> None:
    result = await run_once(tmp_path, farm_mongo_url, processes=2, messages=MESSAGES, customers=CUSTOMERS,
                            timeout=900 if FULL else 100, kill_after=MESSAGES // 3)
    report = result.as_dict()
    print(f"\nkill -9 after {report['kill9_after_acks']} acknowledged messages: {report['replies']} replies, "
          f"{report['frames_received']} reply frames received, {report['duplicate_replies']} duplicates, "
          f"{report['replies_in_doubt']} replies in doubt, {report['messages_resent_by_customers']} messages "
          f"re-sent by customers to the other process; {report['seconds']} s")
    for key in ("duplicate_replies", "replies_in_doubt", "messages_resent_by_customers"):
        record_property(key, report[key])
    assert result.verified["messages"] == MESSAGES
    assert result.verified["problems"] == []  # processed once, in order; every reply reached its customer
    outside = [d for d in result.duplicates if not d["in_doubt"]]
    assert outside == [], f"replies sent twice outside the crash window: {outside[:5]}"
