"""The SQLite unit-of-work engine: group commit, a unit's failure rolled back alone, the
time budget that keeps a burst of slow units from holding the event loop in one batch, and
a WAL that starts over under steady writes."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from core.store.sqlite import engine as engine_module
from core.store.sqlite.engine import SQLiteEngine

MIGRATIONS = [(1, ["CREATE TABLE t (n INTEGER NOT NULL)"])]


@pytest.fixture
async def engine(tmp_path: Path) -> SQLiteEngine:
    engine = SQLiteEngine(str(tmp_path / "engine.db"), checkpoint_interval=0)
    await engine.open(MIGRATIONS)
    yield engine
    await engine.close()


def _traced(engine: SQLiteEngine) -> list[str]:
    statements: list[str] = []
    assert engine.db is not None
    engine.db.set_trace_callback(statements.append)
    return statements


def _insert(n: int, *, busy: float = 0.0):  # type: ignore[no-untyped-def]
    def unit(db: sqlite3.Connection) -> int:
        until = time.perf_counter() + busy  # a slow unit: CPU, as a large write would take
        while time.perf_counter() < until:
            pass
        db.execute("INSERT INTO t (n) VALUES (?)", (n,))
        return n

    return unit


def _rows(engine: SQLiteEngine) -> list[int]:
    with sqlite3.connect(engine.path) as other:  # what another connection sees: committed rows only
        return [r[0] for r in other.execute("SELECT n FROM t ORDER BY rowid")]


async def test_units_submitted_together_share_one_commit(engine: SQLiteEngine) -> None:
    statements = _traced(engine)
    results = await asyncio.gather(*(engine.tx(_insert(n)) for n in range(10)))
    assert results == list(range(10))
    assert statements.count("COMMIT") == 1
    assert _rows(engine) == list(range(10))


async def test_a_failing_unit_is_rolled_back_alone(engine: SQLiteEngine) -> None:
    def broken(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO t (n) VALUES (99)")
        raise ValueError("the action's value cannot be stored")

    results = await asyncio.gather(engine.tx(_insert(1)), engine.tx(broken), engine.tx(_insert(2)),
                                   return_exceptions=True)
    assert results[0] == 1 and results[2] == 2
    assert isinstance(results[1], ValueError)
    assert _rows(engine) == [1, 2]


async def test_a_burst_of_slow_units_is_committed_in_several_batches_in_order(engine: SQLiteEngine) -> None:
    statements = _traced(engine)
    slow = engine_module.INLINE_BUDGET_SECONDS / 2
    results = await asyncio.gather(*(engine.tx(_insert(n, busy=slow)) for n in range(10)))
    assert results == list(range(10))
    # Each batch stops once it has run longer than the budget: at most 3 of these units.
    assert statements.count("COMMIT") >= 4
    assert _rows(engine) == list(range(10))


async def test_a_zero_budget_runs_every_unit_once_in_its_own_batch(engine: SQLiteEngine,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "INLINE_BUDGET_SECONDS", 0.0)
    statements = _traced(engine)
    results = await asyncio.gather(*(engine.tx(_insert(n)) for n in range(5)))
    assert results == list(range(5))
    assert statements.count("COMMIT") == 5  # one unit per batch: each runs, none twice
    assert _rows(engine) == list(range(5))


async def test_temporary_data_stays_in_memory(engine: SQLiteEngine) -> None:
    # Statement journals as files cost an open, an unlink and many writes under load.
    assert engine.db is not None
    assert engine.db.execute("PRAGMA temp_store").fetchone()[0] == 2  # MEMORY


async def _wal_pages_after_steady_writes(path: Path, *, rewind_frames: int, pages: int) -> tuple[int, int]:
    """Write about ``pages`` pages with a unit always queued, as under load; the WAL file's
    size in pages at the end, and the engine's rewinds."""
    engine = SQLiteEngine(str(path), checkpoint_interval=0.005, rewind_frames=rewind_frames)
    await engine.open([(1, ["CREATE TABLE b (data BLOB NOT NULL)"])])
    row = b"x" * 3000  # a page a row

    def insert(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO b (data) VALUES (?)", (row,))

    async def writer(count: int) -> None:
        for _ in range(count):
            await engine.tx(insert)

    try:
        await asyncio.wait_for(asyncio.gather(*(writer(pages // 4) for _ in range(4))), timeout=60)
        return Path(f"{path}-wal").stat().st_size // 4096, engine.rewinds  # closing removes the WAL
    finally:
        await engine.close()


async def test_under_steady_writes_the_wal_starts_over_instead_of_growing(tmp_path: Path) -> None:
    # 10,000 rows of a page each: without the rewind the WAL ends 15,572 pages long (every page
    # ever written; checkpoints copy it all, but commits never pause for it to start over). With
    # it, the WAL is as long as the most written between two rewinds: 1,800-2,300 pages, on a
    # machine busy with other work too.
    pages, rewinds = await _wal_pages_after_steady_writes(tmp_path / "store.db", rewind_frames=300, pages=10_000)
    assert rewinds >= 3
    assert pages < 5000
