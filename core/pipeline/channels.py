"""The farm's adapters by (bot, channel name): where a reply or a typing indicator goes out.

Built once, complete, before anything that sends through it (`core.pipeline.path`), and
read-only afterwards. It is also the turn's `Typing` port: the indicator goes from the
turn straight to the adapter.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType

from core.model import Inbound
from core.ports import Channel


class ChannelRegistry(Mapping[tuple[str, str], Channel]):
    """Adapters by ``(bot, channel)``; a read-only mapping.

    Besides the adapters, the outbox may deliver to destinations that are not customer
    channels (privacy's ``desk-erasure`` jobs): plugins declare them (`PluginParts.outbound`)
    and the farm adds them once, before anything starts (`add_outbound`). Looking one up by
    key finds it; iterating lists the adapters only (what is started, routed and shown).
    """

    def __init__(self, channels: Mapping[tuple[str, str], Channel]) -> None:
        self._channels = MappingProxyType(dict(channels))
        self._outbound: dict[tuple[str, str], Channel] = {}

    def add_outbound(self, destinations: Mapping[tuple[str, str], Channel]) -> None:
        """Destinations the plugins declared (called by the farm before start); never an adapter's key."""
        clash = sorted(f"{bot}/{name}" for bot, name in destinations if (bot, name) in self._channels
                       or (bot, name) in self._outbound)
        if clash:
            raise ValueError(f"outbound destinations already taken: {', '.join(clash)}")
        self._outbound.update(destinations)

    def __getitem__(self, key: tuple[str, str]) -> Channel:
        found = self._channels.get(key)
        if found is None:
            return self._outbound[key]
        return found

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._channels)

    def __len__(self) -> int:
        return len(self._channels)

    def for_message(self, message: Inbound) -> Channel | None:
        """The adapter a customer message came through (and its replies go out through)."""
        return self._channels.get((message.bot, message.channel))

    def channel(self, bot: str, channel: str) -> Channel | None:
        return self._channels.get((bot, channel))

    async def typing(self, message: Inbound) -> None:
        """Show the bot typing in the chat ``message`` came from, where the platform can."""
        channel = self.for_message(message)
        if channel is not None and channel.capabilities.typing:
            await channel.typing(message.chat_id)
