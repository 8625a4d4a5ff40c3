"""Erasing a handoff's copies in Slack: the card and every message of its thread.

Slack keeps what the desk posted (the card with the customer's name, last messages and
slots; every customer message mirrored into the thread) and what agents typed there.
`SlackEraser.erase_thread` removes all of it, newest reply first and the card last (on
Slack a parent deleted before its replies stays behind as a tombstone with the replies):

- ``chat.delete`` with the bot token (the app's own messages);
- for a message the bot token may not delete (an agent's reply: ``cant_delete_message``),
  ``chat.delete`` with ``erasure_token`` (a workspace admin's user token) if configured,
  else ``chat.update`` to `ERASED` (works only where the token may edit);
- what neither can touch is counted as ``left`` (the report and the audit say so).

Idempotent: a message already gone counts as gone, so a retried erasure picks up where a
failed one stopped. Failures raise the core's channel errors (`TransientError` while Slack
is unreachable) so the outbox retries the job.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from channels.slack_desk_config import SlackDeskConfig
from channels.slack_errors import map_slack_error
from core.errors import BadRequest, TransientError
from core.privacy.erasure import ErasureCount

log = structlog.get_logger(__name__)

ERASED = "[erased: personal data removed on request or after the retention period]"
_GONE = frozenset({"message_not_found", "thread_not_found"})
_NOT_ALLOWED = frozenset({"cant_delete_message", "cant_update_message", "edit_window_closed",
                          "msg_too_long", "not_authorized", "cant_update_message_in_thread"})


class SlackEraser:
    """Deletes or blanks a desk thread's messages in the agents' channel."""

    def __init__(self, config: SlackDeskConfig, *, session: aiohttp.ClientSession | None = None) -> None:
        self.channel = config.channel
        self.bot = AsyncWebClient(token=config.bot_token, base_url=config.api_base, session=session,
                                  retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=3)])
        self.admin = (AsyncWebClient(token=config.erasure_token, base_url=config.api_base, session=session,
                                     retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=3)])
                      if config.erasure_token else None)
        self.bot_user_id: str | None = None

    async def erase_thread(self, thread: str) -> ErasureCount:
        """Erase the card ``thread`` (its ts) and its replies; counts of what happened."""
        messages = await self._thread(thread)
        if messages is None:
            return ErasureCount()
        count = ErasureCount()
        replies = [m for m in messages if str(m.get("ts")) != thread]
        parent = [m for m in messages if str(m.get("ts")) == thread]
        for message in [*sorted(replies, key=lambda m: float(m["ts"]), reverse=True), *parent]:
            if message.get("subtype") == "tombstone":
                continue
            count = count + await self._erase_one(str(message["ts"]))
        log.info("slack_erase.thread", thread=thread, deleted=count.deleted, blanked=count.blanked, left=count.left)
        return count

    async def _thread(self, thread: str) -> list[dict[str, Any]] | None:
        """Every message of the thread (parent first); None if Slack has no such thread."""
        client = self.admin or self.bot
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            try:
                kwargs: dict[str, Any] = {"channel": self.channel, "ts": thread, "limit": 200}
                if cursor:
                    kwargs["cursor"] = cursor
                result = await self._api(client, "conversations_replies", **kwargs)
            except BadRequest as exc:
                if str(exc).removeprefix("slack: ") in _GONE:
                    return None if not found else found
                raise
            found.extend(result.get("messages") or [])
            cursor = (result.get("response_metadata") or {}).get("next_cursor") or None
            if not result.get("has_more") or not cursor:
                return found

    async def _erase_one(self, ts: str) -> ErasureCount:
        for client in (self.bot, self.admin):
            if client is None:
                continue
            outcome = await self._try(client, "chat_delete", channel=self.channel, ts=ts)
            if outcome == "ok":
                return ErasureCount(deleted=1)
            if outcome == "gone":
                return ErasureCount(gone=1)
        for client in (self.bot, self.admin):
            if client is None:
                continue
            outcome = await self._try(client, "chat_update", channel=self.channel, ts=ts, text=ERASED, blocks=[])
            if outcome == "ok":
                return ErasureCount(blanked=1)
            if outcome == "gone":
                return ErasureCount(gone=1)
        log.warning("slack_erase.not_allowed", ts=ts, hint="set desk.slack.erasure_token (an admin user token)")
        return ErasureCount(left=1)

    async def _try(self, client: AsyncWebClient, method: str, **kwargs: Any) -> str:
        """'ok', 'gone' or 'refused' (the token may not); other errors raise."""
        try:
            await self._api(client, method, **kwargs)
        except BadRequest as exc:
            error = str(exc).removeprefix("slack: ")
            if error in _GONE:
                return "gone"
            if error in _NOT_ALLOWED:
                return "refused"
            raise
        return "ok"

    @staticmethod
    async def _api(client: AsyncWebClient, method: str, **kwargs: Any) -> Any:
        try:
            return await getattr(client, method)(**kwargs)
        except SlackApiError as exc:
            raise map_slack_error(exc) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"slack: {type(exc).__name__}") from exc

