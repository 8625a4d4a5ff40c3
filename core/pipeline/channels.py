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
    """Adapters by ``(bot, channel)``; a read-only mapping."""

    def __init__(self, channels: Mapping[tuple[str, str], Channel]) -> None:
        self._channels = MappingProxyType(dict(channels))

    def __getitem__(self, key: tuple[str, str]) -> Channel:
        return self._channels[key]

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
