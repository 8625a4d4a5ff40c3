"""The farm: composition root that wires store, bots, adapters, turns, outbox, desks and the web app.

Data flows one way: adapter → ingest → turn → outbox → adapter. Adapters are
found through the ``switchboard.channels`` entry-point group (the core never
imports ``channels``); desks through ``switchboard.desks``.
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import structlog
from aiohttp import web
from pydantic import TypeAdapter

from core import metrics
from core.config import FarmConfig
from core.delivery.sender import OutboxSender
from core.engine import Engine
from core.errors import ConfigError, DialogueError
from core.identity import IdentityService
from core.model import Inbound
from core.pipeline.context import FarmAdapterContext
from core.pipeline.ingest import ContactResolver, Ingest
from core.pipeline.turns import BotRuntime, TurnRunner
from core.ports import Channel, Route
from core.store import factory as store_factory
from core.store.base import Store
from core.web.app import build_app

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


@dataclass
class Farm:
    """A running farm. Build with `Farm(config)`, then `await start()`; `await stop()` drains."""

    config: FarmConfig
    store: Store | None = None
    engines: dict[str, Engine] = field(default_factory=dict)
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{id(object()):x}")

    def __post_init__(self) -> None:
        self.channels: dict[tuple[str, str], Channel] = {}
        self.runtimes: dict[str, BotRuntime] = {}
        self.extra_routes: list[Route] = []
        self.services: dict[str, Any] = {}  # handoff, privacy, identity, desks (for tests/CLI)
        self._started: list[Any] = []
        self._tasks: set[asyncio.Task[Any]] = set()  # background work (typing indicators), cancelled on stop
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
        for part in (self.sender, self.turns):
            if part is not None:
                try:
                    await part.stop()
                except Exception:
                    log.exception("farm.unwind_failed", part=type(part).__name__)
        for part in reversed(self._started):
            try:
                await part.stop()
            except Exception:
                log.exception("farm.unwind_failed", part=type(part).__name__)
        self._started.clear()
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
        self.sender = OutboxSender(store, self.channels, config.delivery, owner=self.owner)
        self.runtimes = {
            bot: BotRuntime(name=bot, engine=self.engines[bot], config=config.bots[bot]) for bot in config.bots
        }
        self.turns = TurnRunner(
            store, self.runtimes, owner=self.owner, on_outbound=self.sender.notify, on_claimed=self.sender.submit,
            on_typing=self._typing, send_lease_seconds=config.delivery.lease_seconds, config=config.turns,
        )
        resolver = self._contact_resolver()
        self.ingest = Ingest(store, resolver, self.turns.schedule)
        self._build_channels()
        self._install_extensions()
        routes: list[Route] = []
        for channel in self.channels.values():
            routes.extend(channel.routes())
        routes.extend(self.extra_routes)
        self.app = build_app(store, routes, max_body_bytes=config.server.max_body_bytes)
        self.app.on_shutdown.append(self._on_http_shutdown)
        for channel in self.channels.values():
            self._started.append(channel)  # before start: a half-started channel is stopped on unwind
            await channel.start()
        for service in self.services.values():
            start = getattr(service, "start", None)
            if start is not None:
                self._started.append(service)
                await start()
        await self.turns.start()
        await self.sender.start()
        log.info("farm.started", bots=sorted(config.bots), channels=sorted(f"{b}/{c}" for b, c in self.channels))
        return self.app

    async def stop(self) -> None:
        """Graceful shutdown: stop taking input, drain turns in flight and the sends under way."""
        if self.turns:
            await self.turns.stop()
        if self.sender:
            await self.sender.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for part in reversed(self._started):
            try:
                await part.stop()
            except Exception:
                log.exception("farm.stop_failed", part=type(part).__name__)
        self._started.clear()
        for engine in self.engines.values():
            close = getattr(engine, "close", None)
            if close is not None:
                await close()
        if self.store:
            await self.store.close()
        log.info("farm.stopped")

    async def _on_http_shutdown(self, app: web.Application) -> None:
        # Finish the turns and sends under way while the adapters can still deliver, then
        # close long-lived connections (web sockets), or the HTTP server would wait for them.
        if self.turns:
            await self.turns.stop()
        if self.sender:
            await self.sender.stop()
        for channel in self.channels.values():
            try:
                await channel.stop()
            except Exception:
                log.exception("farm.channel_stop_failed", channel=channel.name, bot=channel.bot)

    # -- wiring ---------------------------------------------------------------------------
    def _contact_resolver(self) -> ContactResolver:
        """Contacts resolved with cross-channel linking (verified phones, link codes)."""
        assert self.store is not None
        service = IdentityService(self.store, {b: c.privacy for b, c in self.config.bots.items()})
        self.services["identity"] = service
        return service

    def _build_channels(self) -> None:
        assert self.store is not None and self.ingest is not None
        available = channel_classes()
        for bot, bot_config in self.config.bots.items():
            for name, raw in bot_config.channels.items():
                raw = raw or {}
                if not TypeAdapter(bool).validate_python(raw.get("enabled", True)):
                    continue
                if name not in available:
                    known = ", ".join(sorted(available)) or "none"
                    raise ConfigError(f"unknown channel '{name}' (installed: {known})", key=f"bots.{bot}.channels")
                cls = available[name].load()
                context = FarmAdapterContext(self.store, self.ingest, owner=self.owner, scope=f"{bot}:{name}")
                self.channels[(bot, name)] = cls.from_config(bot, raw, context)

    def _install_extensions(self) -> None:
        """Handoff, privacy and desks plug into turns and routes: called after adapters are built and
        before routes are mounted.

        Order matters: the handoff interceptor comes first (a request for a person works
        from any state), then privacy puts link codes in front of it and the disclosure
        last among the post-processors.
        """
        from core.analytics.install import install_analytics
        from core.handoff.wiring import install_handoff
        from core.privacy.install import install as install_privacy

        install_handoff(self)
        install_privacy(self)
        install_analytics(self)  # last: it reads what the others commit

    def _typing(self, message: Inbound) -> None:
        channel = self.channels.get((message.bot, message.channel))
        if channel is None or not channel.capabilities.typing:
            return
        task = asyncio.get_running_loop().create_task(channel.typing(message.chat_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_task_error)

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


def _log_task_error(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        metrics.ERRORS.labels("background").inc()
        log.warning("farm.background_task_failed", task=task.get_name(), error=str(task.exception()))


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
