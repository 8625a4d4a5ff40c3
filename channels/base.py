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

from pydantic import BaseModel, ConfigDict, ValidationError

from core.errors import ConfigError
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
]

ENTRY_POINT_GROUP = "switchboard.channels"


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

    async def mark_read(self, message: Inbound) -> None:
        """Send a read receipt where the platform has one."""

    def in_service_window(self, last_customer_message_age_seconds: float) -> bool:
        """Whether free-form messages may be sent now (WhatsApp's 24-hour rule)."""
        return True

    # -- helpers for subclasses --------------------------------------------------------
    def namespaced(self, platform_id: object) -> str:
        return f"{self.name}:{platform_id}"

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
