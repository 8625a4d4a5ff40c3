"""Fixtures of the store tests: ``store`` runs every contract test on SQLite and on MongoDB."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.store.base import Store
from tests.store.mongo_server import mongo_database, mongo_url  # noqa: F401  (fixtures)
from tests.support.clock import FakeClock


def _sqlite(path: Path, clock: FakeClock) -> Store:
    from core.store.sqlite import SQLiteStore

    return SQLiteStore(str(path / "switchboard.db"), clock=clock)


@pytest.fixture(params=["sqlite", "sqlite-second-opener", pytest.param("mongodb", marks=pytest.mark.mongo)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """An opened, empty store of each implementation.

    ``sqlite-second-opener`` is a SQLite store on a file another store holds (as the CLI
    opens the file a farm serves): its leases live in the file instead of in memory.
    """
    holder: Store | None = None
    clock = FakeClock()  # expiry is reached with store.clock.advance(...) (see contract_support.advance)
    if request.param == "sqlite":
        instance = _sqlite(tmp_path, clock)
    elif request.param == "sqlite-second-opener":
        holder = _sqlite(tmp_path, clock)
        await holder.open()
        instance = _sqlite(tmp_path, clock)
    else:
        from core.store.mongo import MongoStore

        url = request.getfixturevalue("mongo_url")
        instance = MongoStore(url, database=request.getfixturevalue("mongo_database"), clock=clock)
    await instance.open()
    try:
        yield instance
    finally:
        await instance.close()
        if holder is not None:
            await holder.close()
