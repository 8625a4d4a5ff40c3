"""The shapes the core and the channel adapters exchange.

The core never imports ``channels``; it loads adapters through the entry-point
group ``switchboard.channels`` and talks to them through the `Channel` protocol
below. ``channels/base.py`` builds the adapter base class on these types.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

from aiohttp import web

from core.files import StoredFile
from core.model import DeliveryReceipt, Event, Inbound, Outbound


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a platform can show; the core degrades gracefully where a flag is False."""

    buttons: bool = False
    max_buttons: int = 0
    lists: bool = False
    media: bool = False
    typing: bool = False
    edit: bool = False
    read_receipts: bool = False


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Send limits the outbox applies per bot and per chat (messages per second)."""

    per_bot: float = 30.0
    per_chat: float = 1.0
    per_chat_burst: int = 3


@dataclass(frozen=True, slots=True)
class Parsed:
    """What one platform request carried."""

    messages: tuple[Inbound, ...] = ()
    receipts: tuple[DeliveryReceipt, ...] = ()
    ignored: tuple[str, ...] = ()  # short reasons, logged and counted


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    name: str | None = None


class AdapterContext(Protocol):
    """What the core offers an adapter (implemented by ``core.pipeline.context``)."""

    async def accept(self, parsed: Parsed) -> None:
        """Store messages and receipts durably; raises `StoreUnavailable` (answer 503)."""

    async def history(self, bot: str, channel: str, chat_id: str, after_seq: int = 0) -> list[Event]:
        """The transcript of the conversation behind this chat (web chat reload)."""

    async def kv_get(self, key: str) -> Any | None: ...

    async def kv_set(self, key: str, value: Any, ttl_seconds: float | None = None) -> None:
        """Store a JSON value under the adapter's own key (expiring after ``ttl_seconds`` if given)."""

    async def read_file(self, file_id: str) -> StoredFile | None:
        """An agent's file kept by the core (`core.files`; ``file_id`` starts with ``sbfile_``)."""

    async def acquire_lease(self, name: str, ttl_seconds: float) -> bool:
        """Leader election among farm processes (e.g. one Telegram poller per bot)."""

    async def release_lease(self, name: str) -> None: ...


@runtime_checkable
class Channel(Protocol):
    """How the core sees an adapter instance."""

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    rate_limits: ClassVar[RateLimits]
    bot: str

    def routes(self) -> Sequence[Route]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, message: Outbound) -> str: ...

    async def typing(self, chat_id: str) -> None: ...

    async def mark_read(self, message: Inbound, *, typing: bool = True) -> None: ...

    def in_service_window(self, last_customer_message_age_seconds: float) -> bool: ...
