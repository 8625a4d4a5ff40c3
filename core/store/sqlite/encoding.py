"""How values are stored in the SQLite file: JSON text, and times as float seconds since the epoch."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson


def dumps(value: Any) -> str:
    """JSON text for the hot columns (orjson: several times faster than json for events)."""
    return orjson.dumps(value).decode()


def ts(value: datetime) -> float:
    return value.timestamp()


def from_ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)
