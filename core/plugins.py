"""The plugin protocol: how a feature (handoff, privacy, a desk) joins the farm without touching it.

A plugin is built once per farm start from a `PluginContext` (the store, the adapters, the
outbox and the turns, the identity service) and answers with `PluginParts`, which declare
in one place everything it adds:

- ``routes``: mounted on the farm's one aiohttp app;
- ``hooks``: turn hooks (`core.pipeline.hooks`), each with an explicit ``order``; per kind,
  every plugin's hooks run sorted by it (lower first; a tie keeps the plugins' order);
  ``in_commit`` hooks give writes that ride along with the turn's commit (`TurnWrite`);
- ``services``: started in the order given after the adapters, stopped in reverse; a
  failed start stops what was started;
- listeners the outbox (``delivery_listeners``) and the turns (``dead_letter_listeners``) call;
- ``on_http_shutdown``: run when the HTTP server shuts down (end live streams);
- ``provides``: named objects for tests and tools (``Farm.services``, read-only), and for the
  plugins built after this one (`PluginContext.provided`);
- ``outbound``: destinations the outbox delivers through that are not customer adapters
  (privacy's ``desk-erasure`` jobs), by ``(bot, name)``;
- ``at_rest``: what is stored of a turn differs from what the turn saw (privacy: masked
  texts, sealed sensitive slots); at most one plugin declares it.

The farm composes a declared list of plugins (`core.farm.farm_plugins`); no plugin reaches
into the farm. The built-in orders are below; a new hook picks a number between them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Generic, Protocol, TypeVar

import structlog
from aiohttp import web

from core.delivery.sender import DeliveryListener
from core.engine import Engine
from core.identity import IdentityService
from core.pipeline.channels import ChannelRegistry
from core.pipeline.hooks import AfterCommit, InCommit, Interceptor, PostProcessor, Preparer
from core.pipeline.turns import AtRestHook, DeadLetterListener
from core.ports import Channel, Route
from core.store.base import Store

log = structlog.get_logger(__name__)

H = TypeVar("H")


class InterceptorOrder:
    """Where the built-in interceptors sit; the first that answers ends the turn."""

    LINK_CODE = 100  # privacy: a link code is never anything else
    READ_RECEIPTS = 200  # handoff: blue ticks as the turn starts; never answers
    HANDOFF = 300  # handoff: a request for a person works from any state, mid-form too
    LANGUAGE_SWITCH = 400  # "English please": after a request for a person, before the bot
    MEDIA = 500  # photos, voice notes, locations: an honest answer, no fallback


class PreparerOrder:
    MOOD = 100  # handoff: the customer's mood as slots, for calmer answers


class PostProcessorOrder:
    """Where the built-in post-processors sit; each amends the output of the one before."""

    HANDOFF = 100  # handoff: triggers decide whether a person takes over
    NO_DESK = 200  # right after the handoff decision: no promise nobody can keep
    DISCLOSURE = 900  # privacy: "automated assistant" in the final first reply, last


class InCommitOrder:
    """Where the built-in in-commit hooks sit; their writes ride along with the turn's commit in this order."""

    ANALYTICS = 1000  # analytics: the case figures of what the turn commits


class AfterCommitOrder:
    NUMBER_CHANGE = 100  # handoff: a WhatsApp number change moves the identity
    HANDOFF = 200  # handoff: desks told of what the turn decided
    LINK_CODE = 300  # privacy: contacts merged after a redeemed link code
    MEDIA_RECORD = 350  # privacy: where a turn's uploads went, for forget and export
    FORGET = 400  # privacy: erasure on request, once the turn is recorded


@dataclass(frozen=True, slots=True)
class Ordered(Generic[H]):
    """One hook and where it runs among the hooks of its kind; ``bots`` None: every bot."""

    order: int
    hook: H
    bots: frozenset[str] | None = None

    def applies_to(self, bot: str) -> bool:
        return self.bots is None or bot in self.bots


@dataclass(frozen=True, slots=True)
class Hooks:
    """A plugin's turn hooks, by kind (see `core.pipeline.hooks` for what each kind may do)."""

    interceptors: Sequence[Ordered[Interceptor]] = ()
    preparers: Sequence[Ordered[Preparer]] = ()
    post: Sequence[Ordered[PostProcessor]] = ()
    in_commit: Sequence[Ordered[InCommit]] = ()
    after: Sequence[Ordered[AfterCommit]] = ()


class Service(Protocol):
    """Something that runs while the farm runs (a background loop, a socket, a desk)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


HttpShutdown = Callable[[web.Application], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class PluginParts:
    """Everything one plugin adds to the farm (see the module docstring)."""

    routes: Sequence[Route] = ()
    hooks: Hooks = field(default_factory=Hooks)
    services: Sequence[Service] = ()
    delivery_listeners: Sequence[DeliveryListener] = ()
    dead_letter_listeners: Sequence[DeadLetterListener] = ()
    on_http_shutdown: Sequence[HttpShutdown] = ()
    provides: Mapping[str, object] = field(default_factory=dict)
    outbound: Mapping[tuple[str, str], Channel] = field(default_factory=dict)
    at_rest: AtRestHook | None = None


class Outbox(Protocol):
    """The outbox sender as plugins see it: new items were queued."""

    def notify(self) -> None: ...


class Turns(Protocol):
    """The turn runner as plugins see it."""

    def schedule(self, conversation_id: str) -> None: ...

    async def refresh_dead_letters(self) -> None: ...


@dataclass(frozen=True, slots=True)
class PluginContext:
    """What a plugin is built from: the farm's running parts, complete (never filled later)."""

    store: Store
    owner: str  # this farm process, for leases
    bots: Sequence[str]
    channels: ChannelRegistry
    outbox: Outbox
    turns: Turns
    identity: IdentityService
    engines: Mapping[str, Engine] = field(default_factory=dict)  # each bot's engine (e.g. its domain's slots)
    provided: Mapping[str, object] = field(default_factory=dict)  # what the plugins built before provide


class Plugin(Protocol):
    """A feature of the farm; `build` is called once per start, in the farm's plugin order."""

    name: str

    def build(self, ctx: PluginContext) -> PluginParts: ...


@dataclass(frozen=True, slots=True)
class HookSet:
    """One bot's turn hooks, each kind in run order."""

    interceptors: list[Interceptor]
    preparers: list[Preparer]
    post: list[PostProcessor]
    in_commit: list[InCommit]
    after: list[AfterCommit]


def _sorted(bot: str, declared: Iterable[Sequence[Ordered[H]]]) -> list[H]:
    found = [entry for entries in declared for entry in entries if entry.applies_to(bot)]
    return [entry.hook for entry in sorted(found, key=lambda entry: entry.order)]  # stable: ties keep plugin order


def hooks_for(bot: str, parts: Sequence[PluginParts]) -> HookSet:
    """The hooks of every plugin that apply to ``bot``, each kind sorted by its declared order."""
    return HookSet(
        interceptors=_sorted(bot, (p.hooks.interceptors for p in parts)),
        preparers=_sorted(bot, (p.hooks.preparers for p in parts)),
        post=_sorted(bot, (p.hooks.post for p in parts)),
        in_commit=_sorted(bot, (p.hooks.in_commit for p in parts)),
        after=_sorted(bot, (p.hooks.after for p in parts)),
    )


class Services:
    """Starts plugins' services in order and stops those started in reverse (also after a failed start)."""

    def __init__(self, services: Sequence[Service]) -> None:
        self.services = list(services)
        self._started: list[Service] = []

    async def start(self) -> None:
        """Start each service; if one fails, stop those already started (and it), then raise."""
        for service in self.services:
            self._started.append(service)  # before start: a half-started service is stopped too
            try:
                await service.start()
            except BaseException:
                await self.stop()
                raise

    async def stop(self) -> None:
        while self._started:
            service = self._started.pop()
            try:
                await service.stop()
            except Exception:
                log.exception("farm.service_stop_failed", service=type(service).__name__)


def build_plugins(plugins: Sequence[Plugin], context: PluginContext) -> list[PluginParts]:
    """Build each plugin in order; each sees what the ones before it provide (`PluginContext.provided`)."""
    provided: dict[str, object] = {}
    parts = []
    for plugin in plugins:
        built = plugin.build(replace(context, provided=MappingProxyType(dict(provided))))
        provided.update(built.provides)
        parts.append(built)
    return parts
