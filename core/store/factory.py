"""The store a farm.yml names, for the farm and for commands that open it beside a farm."""

from __future__ import annotations

from core.store.base import Store
from core.store.config import StoreConfig


def open_store(config: StoreConfig) -> Store:
    """The configured store, not opened yet (the MongoDB driver is imported only when used)."""
    if config.kind == "mongodb":
        from core.store.mongo import MongoStore

        assert config.url is not None
        return MongoStore(config.url, config.database)
    from core.store.sqlite import SQLiteStore

    return SQLiteStore(config.path)
