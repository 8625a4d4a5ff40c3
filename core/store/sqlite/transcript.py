"""Transcripts on SQLite: the operations (append, insert, merge) and `SQLiteTranscriptStore`."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import orjson

from core.errors import NotFound
from core.model import Event, Outbound
from core.store.ports import TranscriptStore
from core.store.sqlite.encoding import dumps, from_ts, ts
from core.store.sqlite.engine import SQLiteEngine
from core.store.sqlite.outbox import enqueue


def event_from_row(row: sqlite3.Row) -> Event:
    return Event(
        type=row["type"],
        data=orjson.loads(row["data"]),
        channel=row["channel"],
        timestamp=from_ts(row["ts"]),
        seq=row["seq"],
    )


def insert_events(db: sqlite3.Connection, conversation_id: str, events: Sequence[Event], last_seq: int) -> list[Event]:
    """Insert ``events`` as the seqs up to ``last_seq`` (reserved by the caller)."""
    first = last_seq - len(events) + 1
    stored = [
        Event(e.type, e.data, e.channel, e.timestamp, first + i) for i, e in enumerate(events)
    ]
    db.executemany(
        "INSERT INTO events (conversation_id, seq, type, channel, ts, data) VALUES (?,?,?,?,?,?)",
        [(conversation_id, e.seq, e.type, e.channel, ts(e.timestamp), dumps(e.data)) for e in stored],
    )
    return stored


def append(db: sqlite3.Connection, conversation_id: str, events: Sequence[Event]) -> list[Event]:
    """Reserve seqs on the conversation and insert ``events``; the events as stored."""
    if not events:
        return []
    row = db.execute(
        "UPDATE conversations SET last_seq=last_seq+? WHERE id=? RETURNING last_seq",
        (len(events), conversation_id),
    ).fetchone()
    if row is None:
        raise NotFound(f"conversation {conversation_id}")
    return insert_events(db, conversation_id, events, row[0])


def window(db: sqlite3.Connection, conversation_id: str, *, after_seq: int = 0, limit: int | None = None) -> list[Event]:
    """Events after ``after_seq`` in order; ``limit`` keeps the newest ones."""
    if limit is None:
        rows = db.execute(
            "SELECT * FROM events WHERE conversation_id=? AND seq>? ORDER BY seq", (conversation_id, after_seq)
        ).fetchall()
    else:
        rows = db.execute(
            "SELECT * FROM (SELECT * FROM events WHERE conversation_id=? AND seq>? ORDER BY seq DESC LIMIT ?)"
            " ORDER BY seq",
            (conversation_id, after_seq, limit),
        ).fetchall()
    return [event_from_row(r) for r in rows]


def merge_transcripts(db: sqlite3.Connection, keep_conv: str, drop_conv: str) -> None:
    """Merge ``drop_conv``'s events into ``keep_conv``'s in time order, renumbered."""
    rows = db.execute(
        "SELECT type, channel, ts, data, conversation_id, seq FROM events WHERE conversation_id IN (?,?)"
        " ORDER BY ts, conversation_id=? DESC, seq",
        (keep_conv, drop_conv, keep_conv),
    ).fetchall()
    db.execute("DELETE FROM events WHERE conversation_id IN (?,?)", (keep_conv, drop_conv))
    db.executemany(
        "INSERT INTO events (conversation_id, seq, type, channel, ts, data) VALUES (?,?,?,?,?,?)",
        [(keep_conv, i, r["type"], r["channel"], r["ts"], r["data"]) for i, r in enumerate(rows, start=1)],
    )
    # The transcript was renumbered: the version bump tells cached readers to reload it.
    db.execute("UPDATE conversations SET last_seq=?, version=version+1 WHERE id=?", (len(rows), keep_conv))


class SQLiteTranscriptStore(TranscriptStore):
    """`TranscriptStore` on the engine's file."""

    def __init__(self, engine: SQLiteEngine) -> None:
        self._engine = engine

    async def append_events(
        self, conversation_id: str, events: Sequence[Event], outbound: Sequence[Outbound] = ()
    ) -> list[Event]:
        def unit(db: sqlite3.Connection) -> list[Event]:
            stored = append(db, conversation_id, events)
            enqueue(db, outbound)
            return stored

        return await self._engine.tx(unit)

    async def transcript(
        self, conversation_id: str, *, after_seq: int = 0, limit: int | None = None
    ) -> list[Event]:
        return await self._engine.run(lambda db: window(db, conversation_id, after_seq=after_seq, limit=limit))
