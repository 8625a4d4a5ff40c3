"""Two farm processes on one MongoDB record the same case at once: it is one case, every message counts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from core.store.mongo import MongoStore
from core.store.ports.analytics import CaseQuery, CaseUpdate
from tests.store.mongo_server import mongo_database, mongo_url  # noqa: F401  (fixtures)

pytestmark = pytest.mark.mongo
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


async def test_two_processes_opening_and_counting_one_case_make_one_case(mongo_url: str,  # noqa: F811
                                                                           mongo_database: str) -> None:  # noqa: F811
    first, second = MongoStore(mongo_url, mongo_database), MongoStore(mongo_url, mongo_database)
    await first.open()
    await second.open()
    try:
        def turn(i: int) -> CaseUpdate:
            return CaseUpdate(bot="shop", conversation_id="conv_1", at=T0 + timedelta(milliseconds=i), opens=True,
                              channel="whatsapp", customer_messages=1, bot_messages=1, fallbacks=1)

        await asyncio.gather(*(store.record_case(turn(i)) for i in range(15) for store in (first, second)))
        await asyncio.gather(
            first.record_case(CaseUpdate(bot="shop", conversation_id="conv_1", at=T0 + timedelta(seconds=1),
                                         handoff_reason="requested")),
            second.record_case(CaseUpdate(bot="shop", conversation_id="conv_1", at=T0 + timedelta(seconds=1),
                                          handoff_reason="fallback")),
        )
        (cell,) = await second.case_cells(CaseQuery())
        assert (cell.cases, cell.customer_messages, cell.fallbacks) == (1, 30, 30)
        totals = {(t.name, t.label): t.value for t in await first.case_totals()}
        assert totals[("cases", "")] == 1 and totals[("fallbacks", "")] == 30
        assert sum(v for (name, _), v in totals.items() if name == "handoffs") == 1  # the first handoff only
    finally:
        await first.close()
        await second.close()
