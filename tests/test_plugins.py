"""The plugin protocol (core/plugins.py): the farm composes plugins; hooks run in their declared order.

Farms run in-process on a real SQLite file and are driven through the web chat socket and HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from core import metrics
from core.config import FarmConfig, load_farm_config
from core.engine import Reply, TurnOutput
from core.errors import StoreUnavailable
from core.farm import Farm, farm_plugins
from core.model import Event
from core.pipeline.hooks import TurnContext
from core.plugins import (
    Hooks,
    InCommitOrder,
    InterceptorOrder,
    Ordered,
    Plugin,
    PluginContext,
    PluginParts,
    hooks_for,
)
from core.ports import Route
from core.store.ports.analytics import CaseQuery
from core.store.ports.turns import TurnWrite
from tests.support.engines import EchoEngine
from tests.support.farm import running_farm, write_config
from tests.support.webchat import receive

BOTS = {"demo": {"project": str(Path(__file__).resolve().parents[1] / "config" / "demo"),
                 "channels": {"webchat": {}}}}


def names(hooks: Sequence[object]) -> list[str]:
    return [type(hook).__name__ for hook in hooks]


class Forecast:
    """An interceptor that answers "weather?" itself."""

    async def intercept(self, ctx: TurnContext) -> TurnOutput | None:
        if ctx.turn.message.text != "weather?":
            return None
        user = Event("user", {"text": ctx.turn.message.text, "message_id": ctx.turn.message.platform_message_id,
                              "parse_data": {"intent": {"name": "weather", "confidence": 1.0}, "entities": []}})
        return TurnOutput(events=(user,), replies=(Reply(text="sunny"),), conversation=ctx.turn.conversation)


class Recorder:
    """A service that notes when it starts and stops; ``fail`` makes its start raise."""

    def __init__(self, name: str, log: list[str], *, fail: bool = False) -> None:
        self.name, self.log, self.fail = name, log, fail

    async def start(self) -> None:
        self.log.append(f"{self.name} started")
        if self.fail:
            raise RuntimeError(f"{self.name} cannot start")

    async def stop(self) -> None:
        self.log.append(f"{self.name} stopped")


class Weather:
    """A third-party plugin: a route, an interceptor between read receipts and the handoff, services."""

    name = "weather"

    def __init__(self, log: list[str], *, failing: bool = False) -> None:
        self.log = log
        self.failing = failing

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(text="forecast: sunny")

    def build(self, ctx: PluginContext) -> PluginParts:
        services = [Recorder("radar", self.log), *([Recorder("satellite", self.log, fail=True)] if self.failing else [])]
        return PluginParts(
            routes=(Route("GET", "/weather", self.page),),
            hooks=Hooks(interceptors=(Ordered(InterceptorOrder.READ_RECEIPTS + 50, Forecast()),)),
            services=services,
            provides={"radar": services[0]},
        )


async def test_the_built_in_hooks_run_in_their_declared_order(tmp_path: Path) -> None:
    async with running_farm(tmp_path, bots=BOTS, engines={"demo": EchoEngine()}) as farm:
        runtime = farm.farm.runtimes["demo"]
        assert names(runtime.interceptors) == ["LinkCodeInterceptor", "ReadReceipts", "HandoffInterceptor",
                                               "LanguageSwitchInterceptor", "MediaInterceptor"]
        assert names(runtime.preparers) == ["MoodPreparer"]
        assert names(runtime.post) == ["HandoffPostProcessor", "NoDeskPostProcessor", "DisclosurePostProcessor"]
        assert names(runtime.after) == ["NumberChange", "HandoffAfterCommit", "LinkCodeInterceptor",
                                        "MediaRecorder", "ReviewAfterCommit", "ForgetAfterCommit"]
        assert names(runtime.in_commit) == ["CaseRecorder"]
        assert {"identity", "handoff", "read_receipts", "web_desk", "handoff_background", "privacy",
                "retention"} <= set(farm.farm.services)


async def test_a_plugin_adds_a_route_a_hook_at_its_order_and_a_service_without_touching_the_farm(
    tmp_path: Path,
) -> None:
    log: list[str] = []

    def plugins(config: FarmConfig) -> list[Plugin]:
        return [Weather(log), *farm_plugins(config)]  # listed first; its hook still runs at its order

    async with running_farm(tmp_path, bots=BOTS, engines={"demo": EchoEngine()}, plugins=plugins) as farm, \
            aiohttp.ClientSession() as http:
        assert log == ["radar started"]
        assert names(farm.farm.runtimes["demo"].interceptors) == [
            "LinkCodeInterceptor", "ReadReceipts", "Forecast", "HandoffInterceptor", "LanguageSwitchInterceptor",
            "MediaInterceptor"]
        async with http.get(f"{farm.url}/weather") as response:
            assert await response.text() == "forecast: sunny"
        ws = await http.ws_connect(f"{farm.url}/chat/demo/ws")
        await ws.send_json({"type": "hello", "session": None})
        await receive(ws, "welcome")
        await ws.send_json({"type": "message", "id": "m1", "text": "weather?"})
        assert (await receive(ws, "message"))["text"].endswith("sunny")  # after the first-reply disclosure
        await ws.send_json({"type": "message", "id": "m2", "text": "Hallo"})
        assert (await receive(ws, "message"))["text"] == "echo: Hallo"
        await ws.close()
        assert farm.farm.services["radar"] is not None
        with pytest.raises(TypeError):
            farm.farm.services["radar"] = None  # type: ignore[index]  # a read-only view
    assert log == ["radar started", "radar stopped"]


async def test_a_service_that_fails_to_start_stops_those_started_before_it_and_closes_the_store(
    tmp_path: Path,
) -> None:
    log: list[str] = []
    config = load_farm_config(write_config(tmp_path, bots=BOTS))
    farm = Farm(config, engines={"demo": EchoEngine()}, plugins=[*farm_plugins(config), Weather(log, failing=True)])
    with pytest.raises(RuntimeError, match="satellite cannot start"):
        await farm.start()
    assert log == ["radar started", "satellite started", "satellite stopped", "radar stopped"]
    assert farm.store is not None
    with pytest.raises(StoreUnavailable):
        await farm.store.ping()


class Tally:
    """An in-commit hook: a write per turn that notes the customer's text (``fail``: the write raises)."""

    def __init__(self, log: list[str], *, fail: bool = False) -> None:
        self.log, self.fail = log, fail

    def write(self, ctx: TurnContext, output: TurnOutput, events: Sequence[Event]) -> TurnWrite:
        text = ctx.turn.message.text

        async def run() -> None:
            if self.fail:
                raise RuntimeError("tally lost")
            self.log.append(f"{text}: {[e.type for e in events if e.type in ('user', 'bot')]}")

        return TurnWrite("tally", run)


class Broken:
    """An in-commit hook that raises instead of giving a write."""

    def write(self, ctx: TurnContext, output: TurnOutput, events: Sequence[Event]) -> TurnWrite | None:
        raise ValueError("no write today")


class Tallies:
    name = "tallies"

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def build(self, ctx: PluginContext) -> PluginParts:
        return PluginParts(hooks=Hooks(in_commit=(
            Ordered(InCommitOrder.ANALYTICS + 20, Tally(self.log)),
            Ordered(InCommitOrder.ANALYTICS - 20, Tally(self.log, fail=True)),
            Ordered(InCommitOrder.ANALYTICS - 10, Broken()),
        )))


async def test_in_commit_writes_ride_along_with_each_turn_and_a_failing_one_loses_neither_turn_nor_figures(
    tmp_path: Path,
) -> None:
    log: list[str] = []
    errors = {label: metrics.ERRORS.labels(label)._value.get() for label in ("tally", "in_commit")}

    def plugins(config: FarmConfig) -> list[Plugin]:
        return [*farm_plugins(config), Tallies(log)]

    async with running_farm(tmp_path, bots=BOTS, engines={"demo": EchoEngine()}, plugins=plugins) as farm, \
            aiohttp.ClientSession() as http:
        assert names(farm.farm.runtimes["demo"].in_commit) == ["Tally", "Broken", "CaseRecorder", "Tally"]
        ws = await http.ws_connect(f"{farm.url}/chat/demo/ws")
        await ws.send_json({"type": "hello", "session": None})
        await receive(ws, "welcome")
        for n, text in enumerate(("Hallo", "Tschüss"), 1):
            await ws.send_json({"type": "message", "id": f"m{n}", "text": text})
            assert (await receive(ws, "message"))["text"].endswith(f"echo: {text}")
        await ws.close()
        await farm.farm.turns.idle()  # a write SQLite cannot hold in the commit runs once the turn is done
        assert log == ["Hallo: ['user', 'bot']", "Tschüss: ['user', 'bot']"]
        (cell,) = await farm.farm.store.case_cells(CaseQuery(bot="demo"))
        assert (cell.cases, cell.customer_messages, cell.bot_messages) == (1, 2, 2)
    assert {label: metrics.ERRORS.labels(label)._value.get() - before for label, before in errors.items()} == {
        "tally": 2, "in_commit": 2}


def test_hooks_of_equal_order_keep_the_plugins_order_and_apply_only_to_their_bots() -> None:
    first, second, third, only_b = Forecast(), Forecast(), Forecast(), Forecast()
    parts = [
        PluginParts(hooks=Hooks(interceptors=(Ordered(200, second), Ordered(100, first)))),
        PluginParts(hooks=Hooks(interceptors=(Ordered(200, third), Ordered(50, only_b, frozenset({"b"}))))),
    ]
    assert hooks_for("a", parts).interceptors == [first, second, third]
    assert hooks_for("b", parts).interceptors == [only_b, first, second, third]
