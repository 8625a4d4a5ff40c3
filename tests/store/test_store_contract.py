"""The `Store` conformance suite on every implementation (``store`` fixture: sqlite, mongodb)."""

from __future__ import annotations

from tests.store.contract import StoreContract


class TestStoreContract(StoreContract):
    """Runs each contract test once per store kind (see ``tests/store/conftest.py``)."""
