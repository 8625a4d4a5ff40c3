"""The store contract for `LeaseStore` and `KeyValueStore`: named leases, remember, kv (run on every backend by ``test_store_contract.py``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from core.store.base import Store
from tests.store.contract_support import advance


class CoordinationContract:
    """Behaviour every store must show for `LeaseStore` and `KeyValueStore`; tests need an async ``store`` fixture."""

    # -- leases --------------------------------------------------------------------------
    async def test_lease_is_exclusive_between_owners(self, store: Store) -> None:
        assert await store.acquire_lease("telegram-poller:acme", "p1", 30)
        assert not await store.acquire_lease("telegram-poller:acme", "p2", 30)
        assert await store.acquire_lease("other-lease", "p2", 30)

    async def test_owner_renews_its_lease(self, store: Store) -> None:
        assert await store.acquire_lease("poller", "p1", 30)
        advance(store, 20)
        assert await store.acquire_lease("poller", "p1", 30)  # renewed until now + 30
        advance(store, 20)
        assert not await store.acquire_lease("poller", "p2", 30)  # past the first lease; the renewed one holds
        advance(store, 11)
        assert await store.acquire_lease("poller", "p2", 30)

    async def test_expired_lease_goes_to_another_owner(self, store: Store) -> None:
        assert await store.acquire_lease("poller", "p1", 30)
        advance(store, 29)
        assert not await store.acquire_lease("poller", "p2", 30)
        advance(store, 2)
        assert await store.acquire_lease("poller", "p2", 30)
        assert not await store.acquire_lease("poller", "p1", 30)

    async def test_release_frees_the_lease_only_for_its_owner(self, store: Store) -> None:
        assert await store.acquire_lease("poller", "p1", 30)
        await store.release_lease("poller", "p2")
        assert not await store.acquire_lease("poller", "p2", 30)
        await store.release_lease("poller", "p1")
        assert await store.acquire_lease("poller", "p2", 30)

    async def test_concurrent_acquires_have_one_winner(self, store: Store) -> None:
        results = await asyncio.gather(*(store.acquire_lease("poller", f"p{n}", 30) for n in range(6)))
        assert results.count(True) == 1

    # -- remember and kv -----------------------------------------------------------------
    async def test_remember_is_true_only_the_first_time(self, store: Store) -> None:
        assert await store.remember("slack:event:Ev1", 60)
        assert not await store.remember("slack:event:Ev1", 60)
        assert await store.remember("slack:event:Ev2", 60)

    async def test_remember_forgets_after_the_ttl(self, store: Store) -> None:
        assert await store.remember("k", 60)
        advance(store, 59)
        assert not await store.remember("k", 60)
        advance(store, 2)
        assert await store.remember("k", 60)
        assert not await store.remember("k", 60)

    async def test_concurrent_remember_has_one_first(self, store: Store) -> None:
        results = await asyncio.gather(*(store.remember("slack:event:Ev9", 60) for _ in range(6)))
        assert results.count(True) == 1

    @pytest.mark.parametrize(
        "value", [{"offset": 17, "nested": {"a": [1, 2.5, None, True]}, "$weird.key": "x"}, [1, "two"], "text", 42, 0.5,
                  False],
    )
    async def test_kv_round_trips_json_values(self, store: Store, value: Any) -> None:
        await store.kv_set("telegram:offset:acme", value)
        assert await store.kv_get("telegram:offset:acme") == value

    async def test_kv_set_overwrites_and_delete_removes(self, store: Store) -> None:
        assert await store.kv_get("missing") is None
        await store.kv_set("k", {"v": 1})
        await store.kv_set("k", {"v": 2})
        assert await store.kv_get("k") == {"v": 2}
        await store.kv_delete("k")
        assert await store.kv_get("k") is None
        await store.kv_delete("k")  # deleting twice is fine

    async def test_kv_value_expires_after_its_ttl(self, store: Store) -> None:
        await store.kv_set("short", "x", ttl_seconds=30)
        await store.kv_set("long", "y", ttl_seconds=60)
        assert await store.kv_get("short") == "x"
        advance(store, 31)
        assert await store.kv_get("short") is None
        assert await store.kv_get("long") == "y"
        await store.kv_set("short", "z")  # no ttl: kept
        assert await store.kv_get("short") == "z"

    async def test_kv_items_lists_one_prefix_in_key_order_without_expired_keys(self, store: Store) -> None:
        await store.kv_set("privacy:copies:c2", [{"desk": "slack", "thread": "t2"}])
        await store.kv_set("privacy:copies:c1", [{"desk": "slack", "thread": "t1"}])
        await store.kv_set("privacy:copies:c3", ["gone soon"], ttl_seconds=30)
        await store.kv_set("privacy:copiesX", "another prefix")
        await store.kv_set("privacy:copie", "shorter")
        await store.kv_set("parts:out_1", {"sent": 1})
        assert await store.kv_items("privacy:copies:") == [
            ("privacy:copies:c1", [{"desk": "slack", "thread": "t1"}]),
            ("privacy:copies:c2", [{"desk": "slack", "thread": "t2"}]),
            ("privacy:copies:c3", ["gone soon"]),
        ]
        advance(store, 31)
        assert [key for key, _ in await store.kv_items("privacy:copies:")] == ["privacy:copies:c1", "privacy:copies:c2"]
        assert await store.kv_items("nothing:") == []
        with pytest.raises(ValueError):
            await store.kv_items("")
