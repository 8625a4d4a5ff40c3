"""Two farm processes on one MongoDB database: a model a lead retrains in one goes into service in both.

Each process runs its own engines; the store and the project directory are what they share.
A customer's message that the bot did not understand is labelled and the bot retrained
through farm A's review API; farm B's model follower (``review.follow_seconds``) then loads
the retrained model, and B's customers are understood too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest

from core.review.service import ReviewService
from core.store.config import StoreConfig
from core.store.factory import open_store
from tests.handoff.handoff_support import Customer
from tests.review.support import (
    GIBBERISH,
    demo_copy,
    desk_login,
    review_bots,
    review_desk,
    review_service,
)
from tests.support.farm import RunningFarm, running_farm
from tests.support.wait import eventually

pytestmark = [pytest.mark.mongo, pytest.mark.slow]

WRITE = {"X-Desk-Request": "1"}


def understood(farm: RunningFarm, text: str) -> str | None:
    engine = review_service(farm).engine_of("demo")
    return engine.understand(text).intent  # type: ignore[union-attr]


def model_of(service: ReviewService) -> str:
    return str(service.engine_of("demo").nlu.fingerprint)  # type: ignore[union-attr]


@pytest.mark.timeout(240)
async def test_a_model_retrained_in_one_farm_process_goes_into_service_in_the_other(
    tmp_path: Path, farm_mongo_url: str
) -> None:
    project = demo_copy(tmp_path)
    bots = review_bots(project, follow_seconds=0.2)
    shared = StoreConfig(kind="mongodb", url=farm_mongo_url, database="review_follow")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with running_farm(tmp_path / "a", bots=bots, desk=review_desk(), store=open_store(shared)) as a, \
            running_farm(tmp_path / "b", bots=bots, desk=review_desk(), store=open_store(shared)) as b, \
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        old = model_of(review_service(b))
        assert understood(b, GIBBERISH) == "nlu_fallback"

        customer = await Customer.connect(http, a.url)  # at farm A: not understood, so queued for review
        await customer.say(GIBBERISH)
        await a.farm.settle()
        await desk_login(http, a.url, "anna")
        async with http.get(f"{a.url}/desk/api/review?bot=demo") as response:
            (item,) = [i for i in (await response.json())["items"] if i["text"] == GIBBERISH]
        async with http.post(f"{a.url}/desk/api/review/items/{item['id']}", json={"intent": "server_down"},
                             headers=WRITE) as response:
            assert response.status == 200, await response.text()
        async with http.post(f"{a.url}/desk/api/review/retrain", json={"bot": "demo"}, headers=WRITE) as response:
            assert response.status == 200, await response.text()
            run = (await response.json())["run"]
        assert understood(a, GIBBERISH) == "server_down"
        assert run["model"] == model_of(review_service(a)) != old

        # Farm B never retrained: its follower finds A's run in the store and loads that model.
        await eventually(lambda: model_of(review_service(b)) == run["model"], timeout=60.0)
        assert understood(b, GIBBERISH) == "server_down"
        # ... and it does not load it again on the next rounds (one load per retrain).
        assert await review_service(b).follow("demo") is False


class _Kv:
    def __init__(self, run: dict[str, object] | None) -> None:
        self.run = run

    async def kv_get(self, key: str) -> object:
        return self.run if key == "review:run:demo" else None


def _engine(fingerprint: str) -> object:
    return SimpleNamespace(nlu=SimpleNamespace(fingerprint=fingerprint))


def _follower(run: dict[str, object] | None, loads: str) -> tuple[ReviewService, list[object], list[str]]:
    in_service: list[object] = [_engine("old")]
    trained: list[str] = []

    async def train(bot: str) -> object:
        trained.append(bot)
        return _engine(loads)

    service = ReviewService(None, None, {"demo": None}, kv=_Kv(run),  # type: ignore[arg-type]
                            engine_of=lambda bot: in_service[-1], train=train,  # type: ignore[arg-type,return-value]
                            put_in_service=lambda bot, engine: in_service.append(engine))
    return service, in_service, trained


async def test_the_follower_loads_each_retrained_model_once_and_keeps_its_engine_when_the_model_differs() -> None:
    service, in_service, trained = _follower({"model": "new", "by": "web:anna"}, loads="new")
    assert await service.follow("demo") is True
    assert await service.follow("demo") is False  # the same run again: nothing to load
    assert trained == ["demo"] and [e.nlu.fingerprint for e in in_service] == ["old", "new"]  # type: ignore[attr-defined]

    # A process that cannot see the retrained project loads something else: it keeps its engine, tries once.
    service, in_service, trained = _follower({"model": "new"}, loads="stale")
    assert await service.follow("demo") is False
    assert await service.follow("demo") is False
    assert trained == ["demo"] and len(in_service) == 1

    # No retrain yet, or the model already in service: nothing is loaded.
    for run in (None, {"model": "old"}):
        service, in_service, trained = _follower(run, loads="old")
        assert await service.follow("demo") is False and trained == []


async def test_a_retrain_that_finished_before_the_process_loaded_its_bots_is_not_loaded_again() -> None:
    # The process loaded the project after that run wrote its labels (and may hold newer labels since).
    earlier = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    service, in_service, trained = _follower({"model": "new", "at": earlier}, loads="new")
    assert await service.follow("demo") is False and trained == [] and len(in_service) == 1
    # A retrain after the process started is loaded.
    service, in_service, trained = _follower({"model": "new", "at": (datetime.now(UTC) + timedelta(seconds=1)).isoformat()},
                                             loads="new")
    assert await service.follow("demo") is True and trained == ["demo"]
