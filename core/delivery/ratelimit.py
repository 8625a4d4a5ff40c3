"""Send-rate limits per bot+channel and per chat, on aiolimiter's leaky buckets."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

from aiolimiter import AsyncLimiter

from core.delivery.config import ChannelRateLimit
from core.ports import RateLimits


class SendLimiter:
    """Waits until a message to ``(bot, channel, chat)`` may go out under both limits."""

    def __init__(self, overrides: Mapping[str, ChannelRateLimit] | None = None, max_chats: int = 50_000) -> None:
        self.overrides = dict(overrides or {})
        self.max_chats = max_chats
        self._bots: dict[tuple[str, str], AsyncLimiter] = {}
        self._chats: OrderedDict[tuple[str, str, str], AsyncLimiter] = OrderedDict()

    def limits(self, channel: str, declared: RateLimits) -> RateLimits:
        o = self.overrides.get(channel)
        if o is None:
            return declared
        return RateLimits(
            per_bot=o.per_bot or declared.per_bot,
            per_chat=o.per_chat or declared.per_chat,
            per_chat_burst=o.per_chat_burst or declared.per_chat_burst,
        )

    async def acquire(self, bot: str, channel: str, chat_id: str, declared: RateLimits) -> None:
        limits = self.limits(channel, declared)
        chat_key = (bot, channel, chat_id)
        chat = self._chats.get(chat_key)
        if chat is None:
            burst = max(1, limits.per_chat_burst)
            chat = AsyncLimiter(burst, burst / limits.per_chat)
            self._chats[chat_key] = chat
            if len(self._chats) > self.max_chats:
                self._chats.popitem(last=False)
        else:
            self._chats.move_to_end(chat_key)
        await chat.acquire()
        bot_key = (bot, channel)
        bucket = self._bots.get(bot_key)
        if bucket is None:
            bucket = self._bots[bot_key] = AsyncLimiter(max(1.0, limits.per_bot), 1.0)
        await bucket.acquire()
