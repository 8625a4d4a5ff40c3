"""Writes that ride along with a turn's commit on SQLite (`core.store.ports.turns.TurnWrite`).

A concern store (analytics) hands the hot path a `SQLiteTurnWrite`: a plain function of the
connection. The turn unit (`core.store.sqlite.hotpath`) runs it inside its own transaction,
after the turn's writes, in a savepoint of its own: the turn and its ride-along writes cost one
unit of work (one batch slot, no extra COMMIT), and a write that raises is rolled back alone.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from core.store.records import TurnWrite
from core.store.sqlite.engine import SQLiteEngine


class SQLiteTurnWrite(TurnWrite):
    """A `TurnWrite` that a turn unit on the same ``engine`` runs inside its transaction;
    elsewhere (`TurnWrite.run`) it is a unit of work of its own."""

    __slots__ = ("apply", "engine")

    def __init__(self, label: str, engine: SQLiteEngine, apply: Callable[[sqlite3.Connection], None]) -> None:
        super().__init__(label, lambda: engine.tx(apply))
        self.engine = engine
        self.apply = apply


def split(writes: Sequence[TurnWrite], engine: SQLiteEngine) -> tuple[list[SQLiteTurnWrite], list[TurnWrite]]:
    """``writes`` a unit of ``engine`` can run inside, and the others (run after its commit)."""
    inside: list[SQLiteTurnWrite] = []
    after: list[TurnWrite] = []
    for write in writes:
        if isinstance(write, SQLiteTurnWrite) and write.engine is engine:
            inside.append(write)
        else:
            after.append(write)
    return inside, after


def run_inside(db: sqlite3.Connection, writes: Sequence[SQLiteTurnWrite]) -> list[tuple[TurnWrite, Exception]]:
    """Run ``writes`` in the unit's transaction, each in a savepoint; the ones that failed (rolled back).

    A failure SQLite answered by rolling the whole transaction back (disk full, I/O error) is
    raised: then nothing of the unit is durable and its caller must not think otherwise.
    """
    failed: list[tuple[TurnWrite, Exception]] = []
    for write in writes:
        db.execute("SAVEPOINT ride_along")
        try:
            write.apply(db)
        except Exception as exc:
            if not db.in_transaction:
                raise
            db.execute("ROLLBACK TO ride_along")
            failed.append((write, exc))
        db.execute("RELEASE ride_along")
    return failed
