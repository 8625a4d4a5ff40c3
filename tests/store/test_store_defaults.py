"""`Store`'s own hot path (accept, next and finish turn by the single calls), for stores that
do not fuse them: the hot-path contract on a SQLite store that uses the defaults."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.store.base import Store
from core.store.sqlite import SQLiteStore
from tests.store.contract_hotpath import TurnUnitOfWorkContract
from tests.support.clock import FakeClock


class SingleCallsStore(SQLiteStore):
    """SQLite's concern stores, but the hot path as `Store` composes it by default."""

    accept_inbound = Store.accept_inbound
    next_turn = Store.next_turn
    finish_turn = Store.finish_turn


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    instance = SingleCallsStore(str(tmp_path / "switchboard.db"), clock=FakeClock())
    await instance.open()
    try:
        yield instance
    finally:
        await instance.close()


class TestStoreDefaultHotPath(TurnUnitOfWorkContract):
    """`TurnUnitOfWork` through `Store`'s defaults."""
