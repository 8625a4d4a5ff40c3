"""The channel adapter contract and the registry of adapters.

An adapter knows one platform: it verifies and parses what the platform sends
into `Inbound` messages and `DeliveryReceipt`s, and turns `Outbound` messages
into platform calls. It never touches the store directly; it hands what it
parsed to the `AdapterContext` the core gives it, and acknowledges the platform
only after that call returns (the message is then durable).

Built-in and third-party adapters register under the entry-point group
``switchboard.channels``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, ClassVar, Self

import orjson
import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from core.errors import BadRequest, ConfigError, StoreUnavailable, Unauthorized
from core.model import Button, Inbound, Outbound
from core.ports import AdapterContext, Capabilities, Parsed, RateLimits, Route

__all__ = [
    "AdapterConfig",
    "AdapterContext",
    "Capabilities",
    "ChannelAdapter",
    "Parsed",
    "RateLimits",
    "Registry",
    "Route",
    "load_registry",
    "read_body",
]

ENTRY_POINT_GROUP = "switchboard.channels"
MAX_BODY_BYTES = 1_048_576

log = structlog.get_logger(__name__)


async def read_body(request: web.Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The raw request body; raises ``HTTPRequestEntityTooLarge`` (413) past ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=size)
        chunks.append(chunk)
    return b"".join(chunks)


class AdapterConfig(BaseModel):
    """Base of every adapter's settings; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True


class ChannelAdapter(ABC):
    """One platform for one bot. Subclasses set the class attributes below."""

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities] = Capabilities()
    rate_limits: ClassVar[RateLimits] = RateLimits()
    Config: ClassVar[type[AdapterConfig]] = AdapterConfig
    #: HTTP status for a request that fails `verify` (Telegram's own server uses 403).
    forged_status: ClassVar[int] = 401

    def __init__(self, bot: str, config: AdapterConfig, context: AdapterContext) -> None:
        self.bot = bot
        self.config = config
        self.context = context

    @classmethod
    def from_config(cls, bot: str, raw: Mapping[str, Any], context: AdapterContext) -> Self:
        """Validate ``raw`` (one ``channels.<name>`` block of farm.yml) and build the adapter."""
        try:
            config = cls.Config.model_validate(dict(raw))
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(p) for p in first["loc"])
            raise ConfigError(
                first["msg"], key=f"bots.{bot}.channels.{cls.name}.{key}"
            ) from exc
        return cls(bot, config, context)

    def routes(self) -> Sequence[Route]:
        """HTTP routes on the farm's app (absolute paths); empty for polling/socket adapters."""
        return ()

    async def start(self) -> None:
        """Open the client session, start polling tasks."""

    async def stop(self) -> None:
        """Stop polling, close the client session. Must be safe to call twice."""

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise `Unauthorized` if the request does not come from the platform."""

    @abstractmethod
    def parse(self, payload: Mapping[str, Any]) -> Parsed:
        """Pure: a platform payload to messages/receipts. Raises `BadRequest` on malformed input."""

    @abstractmethod
    async def send(self, message: Outbound) -> str:
        """Deliver one message; return the namespaced platform message id.

        Raises a `ChannelError` subclass mapped from the platform's answer.
        """

    async def typing(self, chat_id: str) -> None:
        """Show a typing indicator where the platform has one."""

    async def mark_read(self, message: Inbound, *, typing: bool = True) -> None:
        """Send a read receipt where the platform has one (``typing``: with its typing indicator, if any)."""

    def in_service_window(self, last_customer_message_age_seconds: float) -> bool:
        """Whether free-form messages may be sent now (WhatsApp's 24-hour rule)."""
        return True

    # -- helpers for subclasses --------------------------------------------------------
    async def handle_webhook(self, request: web.Request) -> web.Response:
        """The shared inbound flow: verify the raw body, JSON, `parse`, `context.accept`, 200.

        The 200 goes out only after ``accept`` returned (the message is durable):
        forged → `forged_status`, oversized → 413, malformed → 400, store down → 503.
        """
        try:
            body = await read_body(request)
        except web.HTTPRequestEntityTooLarge:
            log.warning("channel.webhook.rejected", channel=self.name, bot=self.bot, reason="too large")
            return web.Response(status=413, text="request body too large")
        try:
            self.verify(request.headers, body)
        except Unauthorized as exc:
            log.warning("channel.webhook.rejected", channel=self.name, bot=self.bot, reason=str(exc))
            return web.Response(status=self.forged_status, text="forbidden")
        try:
            payload = orjson.loads(body)  # strict: UTF-8 only, no NaN, 64-bit integers
        except (ValueError, RecursionError):  # orjson.JSONDecodeError is a ValueError
            log.warning("channel.webhook.rejected", channel=self.name, bot=self.bot, reason="invalid JSON")
            return web.Response(status=400, text="invalid JSON")
        if not isinstance(payload, dict):
            log.warning("channel.webhook.rejected", channel=self.name, bot=self.bot, reason="not an object")
            return web.Response(status=400, text="expected a JSON object")
        try:
            parsed = self.parse(payload)
        except BadRequest as exc:
            log.warning("channel.webhook.rejected", channel=self.name, bot=self.bot, reason=str(exc))
            return web.Response(status=400, text="malformed payload")
        for reason in parsed.ignored:
            log.info("channel.webhook.ignored", channel=self.name, bot=self.bot, reason=reason)
        if parsed.messages or parsed.receipts:
            try:
                await self.context.accept(parsed)
            except StoreUnavailable as exc:
                log.warning("channel.webhook.store_unavailable", channel=self.name, bot=self.bot, error=str(exc))
                return web.Response(status=503, text="try again later")
        await self.after_accept(payload, parsed)
        return web.Response(status=200, text="ok")

    async def after_accept(self, payload: Mapping[str, Any], parsed: Parsed) -> None:
        """Called once a request's content is durable (e.g. answer a Telegram button press).

        Must not raise: the platform is acknowledged regardless.
        """

    def namespaced(self, platform_id: object) -> str:
        return f"{self.name}:{platform_id}"

    @staticmethod
    def signed_text(message: Outbound) -> str:
        """The text as the customer sees it: an agent's message names the agent, so the
        customer always knows whether a bot or a person answers."""
        if message.author.is_agent and message.author.name and message.text:
            return f"{message.author.name}: {message.text}"
        return message.text

    @staticmethod
    def split_text(text: str, limit: int) -> list[str]:
        """Text in pieces of at most ``limit`` characters, cut at line breaks where possible."""
        pieces: list[str] = []
        while len(text) > limit:
            cut = text.rfind("\n", 0, limit)
            cut = cut if cut > 0 else limit
            pieces.append(text[:cut])
            text = text[cut:].lstrip("\n")
        if text:
            pieces.append(text)
        return pieces

    @staticmethod
    def buttons_as_text(text: str, buttons: Sequence[Button]) -> str:
        """Graceful degradation: buttons become a numbered list the customer can answer."""
        if not buttons:
            return text
        lines = [text, ""] if text else []
        lines += [f"{i}. {b.title}" for i, b in enumerate(buttons, start=1)]
        return "\n".join(lines)


@dataclass
class Registry:
    """Adapter classes by name, filled from the entry-point group."""

    adapters: dict[str, type[ChannelAdapter]] = field(default_factory=dict)

    def register(self, cls: type[ChannelAdapter]) -> type[ChannelAdapter]:
        self.adapters[cls.name] = cls
        return cls

    def get(self, name: str) -> type[ChannelAdapter]:
        try:
            return self.adapters[name]
        except KeyError:
            known = ", ".join(sorted(self.adapters)) or "none"
            raise ConfigError(f"unknown channel '{name}' (installed: {known})") from None


def load_registry() -> Registry:
    """Every adapter installed under the ``switchboard.channels`` entry-point group."""
    registry = Registry()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, ChannelAdapter)):
            raise ConfigError(f"entry point {ep.name} = {ep.value} is not a ChannelAdapter")
        registry.register(cls)
    return registry
