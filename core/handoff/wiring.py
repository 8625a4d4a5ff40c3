"""The human handoff as a plugin (`core.plugins`): service, turn hooks, desks, re-pinger, delivery listener.

`HandoffPlugin` declares per bot, in the built-in orders of `core.plugins`: `ReadReceipts`
(marks each message read as its turn starts), `HandoffInterceptor` (a request for a person
works from any state, mid-form too), `LanguageSwitchInterceptor`, `MediaInterceptor` (media,
edits, number changes; `core.handoff.media`), `MoodPreparer`, `HandoffPostProcessor` then
`NoDeskPostProcessor` (`core.handoff.no_desk`), and after commit `NumberChange` then
`HandoffAfterCommit`. The service hears of failed deliveries and dead letters.

Desks join through `DeskPlugin`: the built-in web desk (`core.web.desk_plugin`, at ``/desk``
with ``desk.web.enabled``) and the desks of the ``switchboard.desks`` entry points whose
``desk.<name>`` block is enabled (`EntryPointDesk`; Slack, which is then the primary desk:
its thread id is stored on the conversation). The core never imports ``channels``.

``Farm.services``: ``handoff`` (the `HandoffService`, also the `DeskActions`),
``read_receipts``, ``handoff_background`` (re-pings), ``web_desk``, ``slack_desk``.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Protocol

import structlog

from core.desk import Desk
from core.desk_config import DESKS_GROUP, DeskConfig
from core.errors import ConfigError, StoreError
from core.files import FileStore
from core.handoff.hooks import HandoffAfterCommit, HandoffInterceptor, HandoffPostProcessor
from core.handoff.media import MediaInterceptor, NumberChange, ReadReceipts
from core.handoff.mood import MoodPreparer
from core.handoff.no_desk import NoDeskPostProcessor, bots_without_agents
from core.handoff.service import REPING_LEASE, AgentPolicy, BotSettings, HandoffService, Observer
from core.language.switch import LanguageSwitchInterceptor
from core.periodic import Periodic
from core.pipeline.dead_letters import DeadLetters
from core.plugins import (
    AfterCommitOrder,
    Hooks,
    HttpShutdown,
    InterceptorOrder,
    Ordered,
    PluginContext,
    PluginParts,
    PostProcessorOrder,
    PreparerOrder,
    Service,
)
from core.ports import Route
from core.privacy.config import PrivacyConfig
from core.privacy.masking import Masker

log = structlog.get_logger(__name__)


class HandoffBotSettings(BotSettings, Protocol):
    """What the handoff reads of a bot's config (core.config.BotConfig)."""

    privacy: PrivacyConfig


@dataclass(frozen=True, slots=True)
class DeskParts:
    """What one desk adds: the desk, whether it is primary, and its routes and services."""

    desk: Desk
    provides: str  # its name in ``Farm.services`` (``web_desk``, ``slack_desk``)
    primary: bool = False
    routes: Sequence[Route] = ()
    services: Sequence[Service] = ()
    on_http_shutdown: Sequence[HttpShutdown] = ()
    agent_login: object | None = None  # the desk that signs agents in for desk-only routes (web chat files)


class DeskPlugin(Protocol):
    """An agents' desk: built after the handoff service it shows handoffs of and acts through."""

    name: str

    def build(self, ctx: PluginContext, handoff: HandoffService, dead_letters: DeadLetters,
              files: FileStore) -> DeskParts: ...


def agent_policy(desk: DeskConfig) -> AgentPolicy:
    """Which agent may serve which bot: web agents per ``WebAgent.bots`` (empty = all); agents of an
    enabled installed desk (``slack:U123``, already checked by that desk against its agent list)
    serve every bot."""
    web_agents = {f"web:{a.id}": a for a in desk.web.agents} if desk.web.enabled else {}
    installed = set(desk.enabled_desks())

    def may_serve(agent_id: str, bot: str) -> bool:
        if agent_id.startswith("web:"):
            agent = web_agents.get(agent_id)
            return agent is not None and (not agent.bots or bot in agent.bots)
        desk, colon, _ = agent_id.partition(":")
        return bool(colon) and desk in installed

    return may_serve


class HandoffBackground:
    """Re-pings unclaimed handoffs (one farm process at a time, by lease)."""

    def __init__(self, service: HandoffService, *, interval: float) -> None:
        self.service = service
        self.interval = interval
        self._job = Periodic("handoff-reping", interval, self._step, first="after_interval")

    async def start(self) -> None:
        await self._job.start()

    async def stop(self) -> None:
        await self._job.stop()
        with contextlib.suppress(StoreError):
            await self.service.store.release_lease(REPING_LEASE, self.service.owner)

    async def _step(self) -> None:
        try:
            if await self.service.store.acquire_lease(REPING_LEASE, self.service.owner, max(30.0, self.interval * 3)):
                await self.service.reping_due()
        except StoreError as exc:
            log.warning("handoff.reping_failed", error=str(exc))


class EntryPointDesk:
    """A desk installed through the ``switchboard.desks`` entry points, built from its ``desk.<name>``
    block (validated by the desk's ``from_config``); it is the primary desk."""

    def __init__(self, name: str, settings: Mapping[str, Any]) -> None:
        self.name = name
        self.settings = settings
        self.desk: Any = None  # once built: features that add desk commands (review) reach it here

    def build(self, ctx: PluginContext, handoff: HandoffService, dead_letters: DeadLetters,
              files: FileStore) -> DeskParts:
        found = [ep for ep in entry_points(group=DESKS_GROUP) if ep.name == self.name]
        if not found:
            raise ConfigError(f"desk.{self.name}.enabled is true but no '{self.name}' desk is installed "
                              f"(entry point group {DESKS_GROUP})", key=f"desk.{self.name}")
        store, bots = ctx.store, ctx.bots

        async def resolve_thread(thread: str) -> str | None:
            for bot in bots:
                conversation = await store.find_conversation_by_thread(bot, thread)
                if conversation is not None:
                    return str(conversation.id)
            return None

        async def is_duplicate(key: str) -> bool:
            return not await store.remember(key, 86400)

        cls = found[0].load()
        accepts = inspect.signature(cls.from_config).parameters  # files in threads, /switchboard: if the desk takes them
        extra = {key: value for key, value in (("files", files), ("queue", handoff.queue)) if key in accepts}
        desk = cls.from_config(self.settings, handoff, resolve_thread, is_duplicate, **extra)
        self.desk = desk
        routes = getattr(desk, "routes", None)
        return DeskParts(desk, provides=f"{self.name}_desk", primary=True,
                         routes=tuple(routes()) if callable(routes) else (), services=(desk,))


def installed_desks(desk: DeskConfig) -> list[DeskPlugin]:
    """The enabled desks of the ``switchboard.desks`` entry points, in farm.yml order."""
    return [EntryPointDesk(name, block) for name, block in desk.enabled_desks().items()]


class HandoffPlugin:
    """The handoff layer and its desks (see the module docstring)."""

    name = "handoff"

    def __init__(self, bots: Mapping[str, HandoffBotSettings], desk: DeskConfig, desks: Sequence[DeskPlugin],
                 observers: Sequence[Observer] = ()) -> None:
        self.bots = bots
        self.desk = desk
        self.desks = desks
        self.observers = observers  # hear every agent action once committed (`HandoffService.observers`)

    def build(self, ctx: PluginContext) -> PluginParts:
        service = HandoffService(
            ctx.store,
            self.bots,
            agent_policy=agent_policy(self.desk),
            maskers={bot: Masker.for_agents(c.privacy) for bot, c in self.bots.items()},
            on_outbound=ctx.outbox.notify,
            owner=ctx.owner,
        )
        service.observers.extend(self.observers)
        receipts = ReadReceipts(ctx.channels.for_message)
        unserved = bots_without_agents(self.desk, self.bots)
        hooks = Hooks(
            interceptors=(
                Ordered(InterceptorOrder.READ_RECEIPTS, receipts),
                Ordered(InterceptorOrder.HANDOFF, HandoffInterceptor(service)),
                Ordered(InterceptorOrder.LANGUAGE_SWITCH, LanguageSwitchInterceptor()),
                Ordered(InterceptorOrder.MEDIA, MediaInterceptor()),
            ),
            preparers=(Ordered(PreparerOrder.MOOD, MoodPreparer(service)),),
            post=(
                Ordered(PostProcessorOrder.HANDOFF, HandoffPostProcessor(service)),
                Ordered(PostProcessorOrder.NO_DESK, NoDeskPostProcessor(unserved)),
            ),
            after=(
                Ordered(AfterCommitOrder.NUMBER_CHANGE, NumberChange(ctx.store, lambda: ctx.identity)),
                Ordered(AfterCommitOrder.HANDOFF, HandoffAfterCommit(service)),
            ),
        )
        dead_letters = DeadLetters(ctx.store, schedule=ctx.turns.schedule, changed=ctx.turns.refresh_dead_letters)
        files = FileStore(ctx.store, self.desk.files, channel_for=ctx.channels.channel)  # agents' files, customers' media
        desks = [plugin.build(ctx, service, dead_letters, files) for plugin in self.desks]
        for parts in desks:
            service.add_desk(parts.desk, primary=parts.primary)
        if not service.desks:
            log.warning("handoff.no_desk", hint="enable desk.web or desk.slack; handoffs will wait unseen")
        if unserved:
            log.warning("handoff.no_agent_channel", bots=sorted(unserved),
                        hint="no web-desk agent and no Slack desk serve these bots; customers asking for a "
                             "person are told so and offered bots.<name>.handoff.contact_email / contact_phone / "
                             "callback")
        agent_login = next((parts.agent_login for parts in desks if parts.agent_login is not None), None)
        for channel in ctx.channels.values():  # e.g. the web chat's waiting state and desk-only file route
            attach = getattr(channel, "attach_handoff", None)
            if callable(attach):
                attach(service, agent_login)
        intervals = [c.handoff.repings_after_seconds for c in self.bots.values() if c.handoff.repings_after_seconds > 0]
        background = HandoffBackground(service, interval=min(30.0, max(0.05, min(intervals, default=300.0) / 4)))
        return PluginParts(
            routes=tuple(route for parts in desks for route in parts.routes),
            hooks=hooks,
            services=(*(s for parts in desks for s in parts.services), background),
            delivery_listeners=(service,),
            dead_letter_listeners=(service,),  # desks hear of messages that failed for good
            on_http_shutdown=tuple(f for parts in desks for f in parts.on_http_shutdown),
            provides={"handoff": service, "read_receipts": receipts, "files": files,
                      **{parts.provides: parts.desk for parts in desks}, "handoff_background": background},
        )
