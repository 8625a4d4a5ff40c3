"""SQLite runs a turn's ride-along writes (its case update) inside the turn's own unit of work:
one COMMIT for both, and a failed write's first steps rolled back alone (its savepoint)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from core.store.migrations import MIGRATIONS
from core.store.ports.analytics import CaseQuery
from core.store.records import TurnState
from core.store.sqlite.analytics import SQLiteAnalyticsStore
from core.store.sqlite.coordination import SQLiteLeaseStore
from core.store.sqlite.engine import SQLiteEngine
from core.store.sqlite.hotpath import SQLiteTurnUnitOfWork
from tests.store.contract_hotpath import case_of_a_turn
from tests.store.contract_support import BOT, T0, event, inbound


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[SQLiteEngine]:
    engine = SQLiteEngine(str(tmp_path / "switchboard.db"), checkpoint_interval=0)
    await engine.open(MIGRATIONS)
    yield engine
    await engine.close()


async def _started(turns: SQLiteTurnUnitOfWork) -> TurnState:
    accepted = await turns.accept_inbound(inbound(1))
    assert accepted is not None
    state = await turns.next_turn(accepted.conversation_id, lease="turn", owner="w1", lease_seconds=30, history=10)
    assert state is not None and state.item is not None and state.conversation is not None
    return state


async def test_a_turn_and_its_case_update_are_committed_in_one_transaction(engine: SQLiteEngine) -> None:
    turns, analytics = SQLiteTurnUnitOfWork(engine, SQLiteLeaseStore(engine)), SQLiteAnalyticsStore(engine)
    state = await _started(turns)
    assert state.item is not None and state.conversation is not None
    statements: list[str] = []
    assert engine.db is not None
    engine.db.set_trace_callback(statements.append)
    commit = await turns.finish_turn(state.conversation, inbox_ids=[state.item.id], events=[event(1)], owner="w1",
                                     lease_seconds=30, release="turn",
                                     also=[analytics.turn_write(case_of_a_turn(state.conversation.id))])
    engine.db.set_trace_callback(None)
    assert commit.later == []  # nothing left for after the commit
    assert [s for s in statements if s in ("BEGIN IMMEDIATE", "COMMIT")] == ["BEGIN IMMEDIATE", "COMMIT"]
    (cell,) = await analytics.case_cells(CaseQuery(bot=BOT))
    assert (cell.cases, cell.customer_messages) == (1, 1)


async def test_a_failed_case_update_leaves_nothing_of_itself_and_the_turn_whole(engine: SQLiteEngine) -> None:
    turns, analytics = SQLiteTurnUnitOfWork(engine, SQLiteLeaseStore(engine)), SQLiteAnalyticsStore(engine)
    state = await _started(turns)
    assert state.item is not None and state.conversation is not None
    # opening the case works, its next statement cannot bind the value: the opened case goes too
    failing = analytics.turn_write(case_of_a_turn(state.conversation.id, language=object()))
    commit = await turns.finish_turn(state.conversation, inbox_ids=[state.item.id], events=[event(1)],
                                     owner="w1", lease_seconds=30, also=[failing])
    assert commit.later == [] and commit.conversation.version == 1 and [e.seq for e in commit.events] == [1]
    assert await analytics.live_cases(T0 + timedelta(seconds=1)) == []
