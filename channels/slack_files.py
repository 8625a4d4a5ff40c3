"""Files in the Slack desk's threads, both ways.

Agent → customer: a file shared in a handoff thread arrives as a ``message`` event with
subtype ``file_share`` and ``files``; each file is downloaded from ``url_private_download``
with the bot token (scope ``files:read``; Slack Connect files first through ``files.info``),
checked and kept by `core.files.FileStore`, and sent with the message's text as an ordinary
agent reply (through the outbox and each platform's media API). A refused file (size, type)
is named to the agent in an ephemeral message; the rest of the message still goes.

Customer → agent: a customer's photo or document is fetched from its platform
(`core.files.FileStore.customer_media`) and uploaded into the thread the way Slack requires
today (``files.getUploadURLExternal``, the bytes to the returned URL,
``files.completeUploadExternal`` with ``thread_ts``; slack-sdk's ``files_upload_v2``, scope
``files:write``). When it cannot be fetched, the thread's line still names the file.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import aiohttp
import structlog
from slack_sdk.errors import SlackClientError

from core.errors import ChannelError, SwitchboardError
from core.files import MEDIA_KINDS, FileRefused, FileStore, attachment_of, human_size
from core.model import Attachment

log = structlog.get_logger(__name__)

Call = Callable[..., Awaitable[Any]]


class SlackFiles:
    """Downloads agents' files and uploads customers' media for one Slack desk."""

    def __init__(self, store: FileStore, bot_token: str, call: Call,
                 session: Callable[[], aiohttp.ClientSession | None]) -> None:
        self.store = store
        self.bot_token = bot_token
        self.call = call
        self.session = session

    async def incoming(self, files: Sequence[Any]) -> tuple[list[Attachment], list[str]]:
        """The files an agent shared, kept for sending; and why any were refused (for the agent)."""
        kept: list[Attachment] = []
        refused: list[str] = []
        for item in files:
            if not isinstance(item, Mapping):
                continue
            try:
                kept.append(await self._keep(item))
            except FileRefused as exc:
                refused.append(str(exc))
            except SwitchboardError as exc:
                log.warning("slack_desk.file.download_failed", file=item.get("id"), error=str(exc))
                refused.append(f"“{item.get('name') or item.get('id')}” could not be read from Slack ({exc}).")
        return kept, refused

    async def _keep(self, item: Mapping[str, Any]) -> Attachment:
        if item.get("file_access") == "check_file_info":  # Slack Connect: details only through files.info
            info = await self.call("files_info", file=str(item.get("id")))
            item = info.get("file") or {}
        name = str(item.get("name") or item.get("title") or "file")
        size = item.get("size")
        self.store.check(size if isinstance(size, int) else None, None, name)
        url = item.get("url_private_download") or item.get("url_private")
        if not isinstance(url, str) or not url:
            raise ChannelError("no download URL")
        data = await self._download(url, name)
        return await self.store.put(data, name, caption=None)

    async def _download(self, url: str, name: str) -> bytes:
        session = self.session()
        if session is None:
            raise ChannelError("desk not started")
        limit = self.store.config.max_bytes
        try:
            async with session.get(url, headers={"Authorization": f"Bearer {self.bot_token}"}) as response:
                if response.status != 200:
                    raise ChannelError(f"HTTP {response.status}")
                if response.content_type == "text/html":  # Slack's login page: the token lacks files:read
                    raise ChannelError("Slack answered with a login page; the app needs the files:read scope")
                data = await response.content.read(limit + 1)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ChannelError(type(exc).__name__) from exc
        if len(data) > limit:
            raise FileRefused(f"“{name}” is over {human_size(limit)}; files up to that size can be sent to customers.")
        return data

    async def outgoing(self, channel: str, thread: str, bot: str, source_channel: str | None,
                       attachments: Sequence[Any]) -> None:
        """A customer's media into the thread (best effort: failures are logged, never raised)."""
        for raw in attachments:
            if not isinstance(raw, Mapping) or raw.get("kind") not in MEDIA_KINDS:
                continue
            attachment = attachment_of(raw)
            try:
                found = await self.store.customer_media(bot, source_channel or "", attachment)
            except SwitchboardError as exc:
                log.warning("slack_desk.media.fetch_failed", channel=source_channel, error=str(exc))
                found = None
            if found is None:
                await self._say(channel, thread, f"_(the customer's {attachment.kind} could not be fetched "
                                                 "to show it here)_")
                continue
            try:
                await self.call("files_upload_v2", channel=channel, thread_ts=thread, content=found.data,
                                filename=found.name, title=found.name)
                log.info("slack_desk.media.uploaded", thread=thread, size=found.size)
            except (ChannelError, SlackClientError) as exc:
                log.warning("slack_desk.media.upload_failed", thread=thread, error=str(exc))
                await self._say(channel, thread, f"_(the customer's {attachment.kind} could not be uploaded "
                                                 "to Slack; open it on the web desk)_")

    async def _say(self, channel: str, thread: str, text: str) -> None:
        try:
            await self.call("chat_postMessage", channel=channel, thread_ts=thread, text=text)
        except ChannelError as exc:
            log.warning("slack_desk.media.notice_failed", thread=thread, error=str(exc))
