"""A customer message's path through the farm, in one place: adapter → ingest → turn → outbox → adapter.

::

    platform ─▶ adapter ──parse──▶ MessagePath.accept
                   ▲                    │
                   │                    ▼
                   │                 Ingest          de-duplicate, resolve the contact, store in the inbox
                   │                    │            (durably, before the adapter acknowledges the platform)
                   │                    ▼
                   │◀──── typing ─── TurnRunner      one turn at a time per conversation: hooks, engine;
                   │                    │            commits transcript + replies to the outbox in one write
                   │                    ▼
                   └────── send ─── OutboxSender     in order per conversation, rate-limited, retried

Each arrow is a named collaborator given complete at construction: the adapters are built
first (their context points back at `accept`), then the sender over the finished
`ChannelRegistry`, then the turns over the sender and the registry (typing indicators go
from the turn straight to the adapter), then ingest over the turns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from core.delivery.config import DeliveryConfig
from core.delivery.sender import OutboxSender
from core.pipeline.channels import ChannelRegistry
from core.pipeline.config import TurnsConfig
from core.pipeline.context import FarmAdapterContext
from core.pipeline.ingest import ContactResolver, Ingest
from core.pipeline.turns import BotRuntime, TurnRunner
from core.ports import AdapterContext, Channel, Parsed
from core.store.base import Store

ContextFor = Callable[[str, str], AdapterContext]
"""(bot, channel name) -> the context an adapter is built with."""

BuildAdapters = Callable[[ContextFor], Mapping[tuple[str, str], Channel]]
"""Builds every enabled adapter with the context it is given (`core.farm.load_adapters`)."""


class MessagePath:
    """The adapters, ingest, turns and outbox of one farm process, wired in the order a message travels."""

    def __init__(
        self,
        store: Store,
        bots: Mapping[str, BotRuntime],
        *,
        resolver: ContactResolver,
        build_adapters: BuildAdapters,
        owner: str,
        delivery: DeliveryConfig,
        turns: TurnsConfig,
    ) -> None:
        self.store = store
        self.owner = owner
        # adapter → ingest: every adapter hands what it parsed to `accept`, through its context
        self.channels = ChannelRegistry(build_adapters(self._context_for))
        # outbox → adapter: the sender delivers through the finished registry
        self.outbox = OutboxSender(store, self.channels, delivery, owner=owner)
        # turn → outbox; the typing indicator goes from the turn to the adapter
        self.turns = TurnRunner(store, bots, owner=owner, outbox=self.outbox, typing=self.channels,
                                send_lease_seconds=delivery.lease_seconds, config=turns)
        # ingest → turn
        self.ingest = Ingest(store, resolver, self.turns)

    def _context_for(self, bot: str, channel: str) -> AdapterContext:
        return FarmAdapterContext(self.store, self, owner=self.owner, scope=f"{bot}:{channel}")

    async def accept(self, parsed: Parsed) -> None:
        """What an adapter parsed: stored durably (then the adapter may acknowledge), then turns run."""
        await self.ingest.accept(parsed)

    async def start(self) -> None:
        """Start turns and sending (the adapters are started by the farm, before the plugins' services)."""
        await self.turns.start()
        await self.outbox.start()

    async def stop(self) -> None:
        """Finish the turns in flight, then send what they committed."""
        await self.turns.stop()
        await self.outbox.stop()
