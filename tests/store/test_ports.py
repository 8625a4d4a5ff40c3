"""The shape of the store: `Store` is exactly the sum of its ports, and each backend composes one store per port."""

from __future__ import annotations

import inspect

import pytest

from core.store import ports
from core.store.base import Store
from core.store.mongo import MongoStore
from core.store.sqlite import SQLiteStore

PORTS = [getattr(ports, name) for name in ports.__all__]
LIFECYCLE = {"open", "close", "ping", "serve_check"}
# The facades' attribute for each port.
ATTRIBUTES = {
    "contacts": ports.ContactStore, "conversations": ports.ConversationStore, "inbox": ports.InboxStore,
    "transcripts": ports.TranscriptStore, "outbox": ports.OutboxStore, "receipts": ports.ReceiptStore,
    "leases": ports.LeaseStore, "kv": ports.KeyValueStore, "privacy": ports.PrivacyStore, "audits": ports.AuditStore,
    "analytics": ports.AnalyticsStore, "turns": ports.TurnUnitOfWork,
}


def _methods(cls: type) -> set[str]:
    return {name for name, _ in inspect.getmembers(cls, inspect.isfunction) if not name.startswith("_")}


def test_every_store_method_belongs_to_exactly_one_port() -> None:
    owners: dict[str, list[str]] = {}
    for port in PORTS:
        for name in _methods(port):
            owners.setdefault(name, []).append(port.__name__)
    assert {name: found for name, found in owners.items() if len(found) > 1} == {}
    assert _methods(Store) - LIFECYCLE == set(owners)


@pytest.mark.parametrize("facade", [SQLiteStore(":memory:"), MongoStore("mongodb://127.0.0.1:1")],
                         ids=["sqlite", "mongodb"])
def test_each_backend_composes_one_store_per_port(facade: Store) -> None:
    for attribute, port in ATTRIBUTES.items():
        assert isinstance(getattr(facade, attribute), port), attribute
    assert set(ATTRIBUTES.values()) == set(PORTS)
