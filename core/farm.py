"""The farm: composition root that wires store, bots, the message path, the plugins and the web app.

Data flows one way: adapter → ingest → turn → outbox → adapter (`core.pipeline.path`).
Adapters are found through the ``switchboard.channels`` entry-point group (the core never
imports ``channels``); desks through ``switchboard.desks``. Features (handoff and its
desks, privacy) are plugins (`core.plugins`): each declares its routes, hooks and
services; the farm composes them and no plugin touches the farm.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import MappingProxyType
from typing import Any

import structlog
from aiohttp import web
from pydantic import TypeAdapter

from core.analytics.install import AnalyticsPlugin
from core.config import FarmConfig
from core.delivery.sender import OutboxSender
from core.engine import Engine
from core.errors import ConfigError, DialogueError
from core.handoff.wiring import DeskPlugin, HandoffPlugin, installed_desks
from core.identity import IdentityService
from core.pipeline.ingest import Ingest
from core.pipeline.path import ContextFor, MessagePath
from core.pipeline.turns import BotRuntime, TurnRunner
from core.plugins import Plugin, PluginContext, Services, build_plugins, hooks_for
from core.ports import Channel
from core.privacy.at_rest import farm_sealer
from core.privacy.install import PrivacyPlugin
from core.review.plugin import ReviewPlugin
from core.store import factory as store_factory
from core.store.base import Store
from core.web.app import build_app
from core.web.desk_plugin import WebDeskPlugin

log = structlog.get_logger(__name__)

CHANNELS_GROUP = "switchboard.channels"


def open_store(config: FarmConfig) -> Store:
    return store_factory.open_store(config.store)


def channel_classes() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=CHANNELS_GROUP)}


async def load_engine(config: FarmConfig, bot: str) -> Engine:
    """The bot's Rasa-compatible engine (trained off the event loop if the model is stale)."""
    from core.dialogue.engine import RasaEngine

    bot_config = config.bots[bot]

    def load() -> RasaEngine:
        try:
            engine = RasaEngine.load(
                config.project_dir(bot),
                bot=bot,
                languages=bot_config.languages,
                default_language=bot_config.default_language,
                action_endpoint=bot_config.action_endpoint,
                actions=bot_config.actions,
            )
        except DialogueError as exc:  # name the bot and its project: file names in the message are relative
            raise DialogueError(f"bots.{bot} ({config.project_dir(bot)}): {exc}") from exc
        engine.phone_prefixes = bot_config.language.phone_prefixes
        engine.detector.warm_up()  # language models load now, not on the first customer's message
        return engine

    return await asyncio.to_thread(load)


def load_adapters(config: FarmConfig, context_for: ContextFor) -> dict[tuple[str, str], Channel]:
    """Every enabled adapter of every bot, found through the ``switchboard.channels`` entry points."""
    available = channel_classes()
    adapters: dict[tuple[str, str], Channel] = {}
    for bot, bot_config in config.bots.items():
        for name, raw in bot_config.channels.items():
            raw = raw or {}
            if not TypeAdapter(bool).validate_python(raw.get("enabled", True)):
                continue
            if name not in available:
                known = ", ".join(sorted(available)) or "none"
                raise ConfigError(f"unknown channel '{name}' (installed: {known})", key=f"bots.{bot}.channels")
            adapters[(bot, name)] = available[name].load().from_config(bot, raw, context_for(bot, name))
    return adapters


def farm_plugins(config: FarmConfig, runtimes: dict[str, BotRuntime] | None = None) -> list[Plugin]:
    """The built-in plugins, in order: the handoff with its desks (web, then installed ones such as
    Slack), then privacy, then the case analytics, then the review loop (which retrains ``runtimes``'
    engines). Their hooks run in the orders of `core.plugins`, whatever this order."""
    desks: list[DeskPlugin] = []
    web = WebDeskPlugin(config.desk.web, config.desk.canned) if config.desk.web.enabled else None
    if web is not None:
        desks.append(web)
    installed = installed_desks(config.desk)
    desks.extend(installed)
    sealer = farm_sealer({bot: c.privacy for bot, c in config.bots.items()}, config.store)  # the data key
    analytics = AnalyticsPlugin(config.bots)  # hears agents' actions through the handoff
    review = ReviewPlugin(config.bots, {bot: config.project_dir(bot) for bot in config.bots}, runtimes=runtimes,
                          train=functools.partial(load_engine, config), login=lambda: web.desk if web else None,
                          agents=config.desk.web.agents, desks=lambda: [getattr(d, "desk", None) for d in installed])
    return [HandoffPlugin(config.bots, config.desk, desks, observers=(analytics.agent_action,)),
            PrivacyPlugin(config.bots, sealer=sealer), analytics, review]


@dataclass
class Farm:
    """A running farm. Build with `Farm(config)`, then `await start()`; `await stop()` drains.

    ``plugins``: the features composed into it (default `farm_plugins`).
    """

    config: FarmConfig
    store: Store | None = None
    engines: dict[str, Engine] = field(default_factory=dict)
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{id(object()):x}")
    plugins: Sequence[Plugin] | None = None

    def __post_init__(self) -> None:
        self.path: MessagePath | None = None
        self.channels: Mapping[tuple[str, str], Channel] = {}
        self.runtimes: dict[str, BotRuntime] = {}
        self.services: Mapping[str, object] = MappingProxyType({})  # what plugins provide, for tests/CLI
        self._services = Services(())
        self._started: list[Channel] = []
        self.app: web.Application | None = None
        self.turns: TurnRunner | None = None
        self.sender: OutboxSender | None = None
        self.ingest: Ingest | None = None

    # -- start/stop ---------------------------------------------------------------------
    async def start(self) -> web.Application:
        """Open the store, load the bots, start channels, services, turns and the sender.

        If a step fails, what was started is stopped again and the store closed, then the
        error is raised: a failed start leaves nothing running or open.
        """
        if self.store is None:
            self.store = open_store(self.config)
        await self.store.open()
        try:
            return await self._start(self.store)
        except BaseException:
            await self._unwind()
            raise

    async def _unwind(self) -> None:
        if self.path is not None:
            try:
                await self.path.stop()
            except Exception:
                log.exception("farm.unwind_failed", part="path")
        await self._services.stop()
        await self._stop_channels("farm.unwind_failed")
        if self.store is not None:
            try:
                await self.store.close()
            except Exception:
                log.exception("farm.unwind_failed", part="store")
        log.warning("farm.start_failed")

    async def _start(self, store: Store) -> web.Application:
        config = self.config
        store.serve_check()
        for bot in config.bots:
            if bot not in self.engines:
                self.engines[bot] = await load_engine(config, bot)
        self.runtimes = {
            bot: BotRuntime(name=bot, engine=self.engines[bot], config=config.bots[bot]) for bot in config.bots
        }
        # Contacts resolved with cross-channel linking (verified phones, link codes).
        identity = IdentityService(store, {b: c.privacy for b, c in config.bots.items()})
        # adapter → ingest → turn → outbox → adapter (core.pipeline.path)
        path = self.path = MessagePath(
            store, self.runtimes, resolver=identity, build_adapters=functools.partial(load_adapters, config),
            owner=self.owner, delivery=config.delivery, turns=config.turns,
        )
        self.channels, self.sender, self.turns, self.ingest = path.channels, path.outbox, path.turns, path.ingest
        # The plugins: each declares its routes, hooks, services and listeners; composed here.
        context = PluginContext(store, self.owner, tuple(config.bots), path.channels, path.outbox, path.turns,
                                identity, engines=MappingProxyType(dict(self.engines)))
        parts = build_plugins(farm_plugins(config, self.runtimes) if self.plugins is None else self.plugins, context)
        path.channels.add_outbound({key: dest for p in parts for key, dest in p.outbound.items()})
        at_rest = [p.at_rest for p in parts if p.at_rest is not None]
        if len(at_rest) > 1:
            raise ConfigError("more than one plugin declares at_rest (what is stored of a turn)", key="plugins")
        if at_rest:  # what is stored differs from what the turn sees: masked texts, sealed slots
            path.turns.at_rest = at_rest[0]
            path.ingest.prepare = at_rest[0].seal_inbound
        for bot, runtime in self.runtimes.items():
            hooks = hooks_for(bot, parts)
            runtime.interceptors, runtime.preparers, runtime.post, runtime.in_commit, runtime.after = (
                hooks.interceptors, hooks.preparers, hooks.post, hooks.in_commit, hooks.after)
        path.outbox.listeners.extend(listener for p in parts for listener in p.delivery_listeners)
        path.turns.dead_letter_listeners.extend(listener for p in parts for listener in p.dead_letter_listeners)
        self.services = MappingProxyType({"identity": identity, **{k: v for p in parts for k, v in p.provides.items()}})
        self._services = Services([service for p in parts for service in p.services])
        routes = [route for channel in path.channels.values() for route in channel.routes()]
        routes.extend(route for p in parts for route in p.routes)
        self.app = build_app(store, routes, max_body_bytes=config.server.max_body_bytes)
        self.app.on_shutdown.append(self._on_http_shutdown)
        self.app.on_shutdown.extend(shutdown for p in parts for shutdown in p.on_http_shutdown)
        for channel in path.channels.values():
            self._started.append(channel)  # before start: a half-started channel is stopped on unwind
            await channel.start()
        await self._services.start()
        await path.start()
        log.info("farm.started", bots=sorted(config.bots), channels=sorted(f"{b}/{c}" for b, c in self.channels),
                 plugins=[type(p).__name__ for p in parts])
        return self.app

    async def stop(self) -> None:
        """Graceful shutdown: stop taking input, drain turns in flight and the sends under way."""
        if self.path is not None:
            await self.path.stop()
        await self._services.stop()
        await self._stop_channels("farm.stop_failed")
        for engine in self.engines.values():
            close = getattr(engine, "close", None)
            if close is not None:
                await close()
        if self.store:
            await self.store.close()
        log.info("farm.stopped")

    async def _stop_channels(self, event: str) -> None:
        while self._started:
            channel = self._started.pop()
            try:
                await channel.stop()
            except Exception:
                log.exception(event, part=type(channel).__name__)

    async def _on_http_shutdown(self, app: web.Application) -> None:
        # Finish the turns and sends under way while the adapters can still deliver, then
        # close long-lived connections (web sockets), or the HTTP server would wait for them.
        if self.path is not None:
            await self.path.stop()
        for channel in self.channels.values():
            try:
                await channel.stop()
            except Exception:
                log.exception("farm.channel_stop_failed", channel=channel.name, bot=channel.bot)

    # -- helpers for tests and tools ---------------------------------------------------------
    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until every accepted message is processed and every reply handed to its adapter."""
        assert self.turns is not None and self.sender is not None and self.store is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            await self.turns.idle()
            pending = await self.store.conversations_with_pending_inbox(limit=1)
            if pending:
                for conversation_id in pending:
                    self.turns.schedule(conversation_id)
                await asyncio.sleep(0.01)
                continue
            if await self.sender.drain(timeout=max(0.1, deadline - loop.time())):
                await self.turns.idle()
                if not await self.store.conversations_with_pending_inbox(limit=1):
                    return
        raise TimeoutError("farm did not settle in time")


async def serve(farm: Farm, host: str, port: int) -> web.AppRunner:
    app = await farm.start()
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=10)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    settle_heap()
    return runner


#: Young-generation GC threshold while serving (CPython's default is 700). Nearly all the
#: farm's per-message objects are freed by reference counting; with 700 the collector
#: still ran about 80 times a second under load and took 4.4 % of the CPU (bench/, echo
#: engine); with 20,000 it ran twice in the whole run (0.2 %), a few milliseconds each.
GC_THRESHOLDS = (20_000, 50, 50)


def settle_heap() -> None:
    """Exempt what start-up built (modules, models, config) from the cyclic garbage
    collector, and collect the young generation less often.

    A full collection walks every tracked object; with the engines, NLU models and
    libraries loaded, each one took 30-40 ms and stalled every conversation at once
    (the p99 latency under load). Frozen objects are never walked again; what the farm
    allocates while serving is collected as usual, in fewer, larger passes.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def channels_summary(farm: Farm, host: str, port: int) -> list[str]:
    """Where each running channel is reached, for the start-up log."""
    lines = []
    for (bot, name), channel in sorted(farm.channels.items()):
        pages = [r.path for r in channel.routes() if r.method == "GET" and "{" not in r.path]
        paths = sorted({r.path for r in channel.routes()})
        if name == "webchat" and pages:
            lines.append(f"web chat for '{bot}': http://{host}:{port}{pages[0]}")
        elif paths:
            lines.append(f"{name} for '{bot}': webhook at http://{host}:{port}{paths[0]}")
        else:
            lines.append(f"{name} for '{bot}': connected outbound (long polling / socket), no public URL needed")
    return lines
