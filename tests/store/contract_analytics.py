"""The store contract for `AnalyticsStore`: cases open, close and expire; figures add up; totals only grow
(run on every backend by ``test_store_contract.py``)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from core.store.base import Store
from core.store.ports.analytics import CELL_COUNTERS, CaseCell, CaseQuery, CaseUpdate
from tests.store.contract_support import BOT, OTHER_BOT, T0, contact_and_conversation

HOUR = 3600.0


def customer(conversation: str, seconds: float, *, bot: str = BOT, channel: str = "telegram",
             **changes: object) -> CaseUpdate:
    return CaseUpdate(bot=bot, conversation_id=conversation, at=T0 + timedelta(seconds=seconds), opens=True,
                      expiry_seconds=HOUR, channel=channel, customer_messages=1, **changes)  # type: ignore[arg-type]


def step(conversation: str, seconds: float, **changes: object) -> CaseUpdate:
    return CaseUpdate(bot=BOT, conversation_id=conversation, at=T0 + timedelta(seconds=seconds),
                      **changes)  # type: ignore[arg-type]


def total(cells: list[CaseCell], name: str) -> int:
    return sum(int(getattr(cell, name)) for cell in cells)


def handoffs(cells: list[CaseCell]) -> dict[str, int]:
    found: dict[str, int] = {}
    for cell in cells:
        for reason, n in cell.handoffs.items():
            found[reason] = found.get(reason, 0) + n
    return found


class AnalyticsContract:
    """Behaviour every store must show for `AnalyticsStore`; tests need an async ``store`` fixture."""

    async def test_messages_within_the_session_expiry_are_one_case(self, store: Store) -> None:
        await store.record_case(customer("c1", 0, intent="order_status", bot_messages=1))
        await store.record_case(customer("c1", 600, intent="greet", bot_messages=2))
        (cell,) = await store.case_cells(CaseQuery())
        assert (cell.bot, cell.cases, cell.customer_messages, cell.bot_messages) == (BOT, 1, 2, 3)
        (by_intent,) = await store.case_cells(CaseQuery(by="intent"))
        assert by_intent.key == "order_status"  # the first topic is the case's

    async def test_a_message_after_the_session_expiry_opens_a_new_case(self, store: Store) -> None:
        await store.record_case(customer("c1", 0))
        await store.record_case(customer("c1", HOUR + 1))
        assert total(await store.case_cells(CaseQuery()), "cases") == 2

    async def test_a_closed_case_takes_its_rating_and_the_next_message_opens_a_new_one(self, store: Store) -> None:
        await store.record_case(customer("c1", 0, handoff_reason="requested", handoff_intent="refund"))
        await store.record_case(step("c1", 30, claimed_by="web:anna"))
        await store.record_case(step("c1", 45, agent_replied=True, agent_messages=1))
        await store.record_case(step("c1", 90, agent_done=True, closed=True))
        await store.record_case(step("c1", 100, csat=4, customer_messages=1))  # the answer to the rating question
        await store.record_case(customer("c1", 200))
        (cell,) = await store.case_cells(CaseQuery())
        assert (cell.cases, cell.handoffs, cell.csat, cell.claimed, cell.closed, cell.agent_messages) == (
            2, {"requested": 1}, {4: 1}, 1, 1, 1)
        (durations,) = await store.case_durations(CaseQuery())
        assert (durations.to_claim, durations.to_first_reply, durations.handle) == ([30.0], [45.0], [60.0])
        by_agent = {c.key: c.cases for c in await store.case_cells(CaseQuery(by="agent"))}
        assert by_agent == {"web:anna": 1, None: 1}

    async def test_only_the_first_handoff_claim_and_rating_of_a_case_count(self, store: Store) -> None:
        await store.record_case(customer("c1", 0, handoff_reason="frustration"))
        await store.record_case(step("c1", 10, claimed_by="web:anna"))
        await store.record_case(step("c1", 20, claimed_by="web:ben"))
        await store.record_case(customer("c1", 30, handoff_reason="requested"))
        await store.record_case(step("c1", 40, agent_done=True, closed=True, csat=5))
        await store.record_case(step("c1", 50, csat=1))
        (cell,) = await store.case_cells(CaseQuery(by="agent"))
        assert (cell.key, cell.handoffs, cell.csat, cell.closed) == ("web:anna", {"frustration": 1}, {5: 1}, 1)
        totals = {(t.name, t.label): t.value for t in await store.case_totals()}
        assert totals == {("cases", ""): 1, ("handoffs", "frustration"): 1, ("csat_responses", ""): 1,
                          ("csat_score_sum", ""): 5}

    async def test_updates_without_a_case_are_dropped(self, store: Store) -> None:
        await store.record_case(step("c1", 0, claimed_by="web:anna", csat=3))
        assert await store.case_cells(CaseQuery()) == []
        assert await store.case_totals() == []

    async def test_counters_add_up_and_cells_split_by_reason_and_rating(self, store: Store) -> None:
        for i in range(6):
            await store.record_case(customer(f"bot-{i}", i, fallbacks=i % 2, channel="webchat" if i < 3 else "telegram"))
        await store.record_case(customer("h1", 10, handoff_reason="requested", frustration_peaks=1))
        await store.record_case(customer("h2", 11, handoff_reason="intent", handoff_intent="cancel"))
        await store.record_case(customer("h3", 12, dead_letters=1))
        cells = await store.case_cells(CaseQuery())
        assert total(cells, "cases") == 9
        assert total(cells, "with_fallback") == 3 and total(cells, "fallbacks") == 3
        assert total(cells, "frustration_peaks") == 1 and total(cells, "dead_letters") == 1
        assert handoffs(cells) == {"intent": 1, "requested": 1}
        by_channel = {c.key: (c.cases, c.cases - sum(c.handoffs.values()))
                      for c in await store.case_cells(CaseQuery(by="channel"))}
        assert by_channel == {"webchat": (3, 3), "telegram": (6, 4)}
        intents = {c.key for c in await store.case_cells(CaseQuery(by="intent")) if c.handoffs.get("intent")}
        assert intents == {"cancel"}

    async def test_a_query_selects_by_bot_and_start_time(self, store: Store) -> None:
        await store.record_case(customer("a1", 0))
        await store.record_case(customer("a2", 86400))
        await store.record_case(customer("b1", 0, bot=OTHER_BOT))
        assert total(await store.case_cells(CaseQuery(bot=BOT)), "cases") == 2
        assert total(await store.case_cells(CaseQuery(since=T0 + timedelta(hours=1))), "cases") == 1
        assert total(await store.case_cells(CaseQuery(until=T0 + timedelta(hours=1))), "cases") == 2
        days = sorted((c.bot, c.key) for c in await store.case_cells(CaseQuery(by="day")))
        assert days == [(BOT, "2026-03-01"), (BOT, "2026-03-02"), (OTHER_BOT, "2026-03-01")]

    async def test_daily_aggregates_and_the_cases_themselves_give_the_same_sums(self, store: Store) -> None:
        await store.record_case(customer("a", 0, language="de", handoff_reason="requested", fallbacks=1))
        await store.record_case(step("a", 5, claimed_by="web:anna"))
        await store.record_case(step("a", 9, agent_replied=True, agent_messages=2, agent_done=True, closed=True))
        await store.record_case(step("a", 12, csat=2, customer_messages=1, fallbacks=1))
        await store.record_case(customer("b", 86400, channel="webchat", language="en", dead_letters=1))
        await store.record_case(customer("c", 86401, channel="webchat", language="en", frustration_peaks=1))

        def summed(cells: list[CaseCell]) -> CaseCell:
            out = CaseCell(BOT, None)
            for cell in cells:
                for name in CELL_COUNTERS:
                    out.add(name, getattr(cell, name))
                for reason, n in cell.handoffs.items():
                    out.add(f"handoffs:{reason}", n)
                for score, n in cell.csat.items():
                    out.add(f"csat:{score}", n)
            return out

        whole_days = CaseQuery(since=T0.replace(hour=0, minute=0, second=0, microsecond=0))
        assert whole_days.by_day and not CaseQuery(by="language").by_day
        from_days = summed(await store.case_cells(whole_days))
        from_cases = summed(await store.case_cells(CaseQuery(by="language")))
        assert from_days == from_cases
        assert (from_days.cases, from_days.with_fallback, from_days.fallbacks, from_days.closed) == (3, 1, 2, 1)
        by_channel = {c.key: c.cases for c in await store.case_cells(CaseQuery(by="channel"))}
        assert by_channel == {"telegram": 1, "webchat": 2}

    async def test_a_query_rejects_an_unknown_group(self) -> None:
        with pytest.raises(ValueError, match="group by"):
            CaseQuery(by="contact")

    async def test_live_cases_count_the_queue_its_oldest_wait_and_open_cases(self, store: Store) -> None:
        await store.record_case(customer("w1", 0, handoff_reason="requested"))
        await store.record_case(customer("w2", 60, handoff_reason="fallback"))
        await store.record_case(customer("a1", 0, handoff_reason="requested"))
        await store.record_case(step("a1", 5, claimed_by="web:anna"))
        await store.record_case(customer("bot", 0))
        await store.record_case(customer("done", 0, handoff_reason="requested"))
        await store.record_case(step("done", 9, claimed_by="web:anna"))
        await store.record_case(step("done", 10, agent_done=True, closed=True))
        (live,) = await store.live_cases(T0 + timedelta(seconds=100))
        assert (live.bot, live.waiting, live.oldest_wait_seconds, live.open) == (BOT, 2, 100.0, 4)
        (later,) = await store.live_cases(T0 + timedelta(hours=5))
        assert (later.waiting, later.open) == (2, 3)  # bot-only cases expire; those with agents stay open

    async def test_agents_active_since_a_time(self, store: Store) -> None:
        await store.agent_seen(BOT, "web:anna", T0)
        await store.agent_seen(BOT, "web:ben", T0 + timedelta(minutes=10))
        await store.agent_seen(BOT, "web:anna", T0 + timedelta(minutes=1))
        assert await store.agents_active(T0 + timedelta(minutes=5)) == {BOT: 1}
        assert await store.agents_active(T0) == {BOT: 2}

    async def test_cases_survive_forget_and_transcript_purges(self, store: Store) -> None:
        contact, conversation = await contact_and_conversation(store)
        await store.record_case(customer(conversation.id, 0, handoff_reason="requested"))
        await store.record_case(step(conversation.id, 20, closed=True, agent_done=True, csat=2))
        before = await store.case_cells(CaseQuery())
        await store.forget_contact(contact.id)
        await store.purge_transcripts(BOT, T0 + timedelta(days=30))
        assert await store.case_cells(CaseQuery()) == before

    async def test_concurrent_updates_of_one_case_all_count(self, store: Store) -> None:
        await store.record_case(customer("c1", 0))
        await asyncio.gather(*(store.record_case(step("c1", 1 + i, bot_messages=1, fallbacks=1)) for i in range(20)))
        (cell,) = await store.case_cells(CaseQuery())
        assert (cell.cases, cell.bot_messages, cell.fallbacks) == (1, 20, 20)
        totals = {(t.name, t.label): t.value for t in await store.case_totals()}
        assert totals[("fallbacks", "")] == 20
