"""The web desk's live updates: server-sent events to logged-in agents, and the `core.desk.Desk`
calls (handoff opened, customer message, status change) that produce them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import structlog
from aiohttp import web

from core.desk import DeadLetterNotice, HandoffSummary
from core.errors import StoreError
from core.model import Conversation, ConversationStatus, Event, Identity
from core.web.desk_auth import DeskAuth
from core.web.desk_http import AGENT_PREFIX, KEEPALIVE_SECONDS

log = structlog.get_logger(__name__)

PRESENCE_PREFIX = "desk:online:"
PRESENCE_SECONDS = KEEPALIVE_SECONDS * 3


class DeskLive(DeskAuth):
    """Live-update streams; `core.web.desk.WebDesk` sets the attributes declared here."""

    _streams: dict[asyncio.Queue[dict[str, Any] | None], Any]
    _closing: bool

    def close_streams(self) -> None:
        """End every live-update stream (before the HTTP server waits for open requests)."""
        self._closing = True
        for queue in list(self._streams):
            queue.put_nowait(None)

    async def dead_letter(self, notice: DeadLetterNotice) -> None:
        item = {"type": "dead_letter", "conversation": notice.conversation_id, "bot": notice.bot, "id": notice.id}
        for queue, agent in list(self._streams.items()):
            if self._may_serve(agent, notice.bot):
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(item)

    # -- live updates --------------------------------------------------------------------
    async def _stream(self, request: web.Request) -> web.StreamResponse:
        agent = await self._require(request)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                               "X-Accel-Buffering": "no"})
        await response.prepare(request)
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=200)
        self._streams[queue] = agent
        try:
            await self._present(agent)
            await response.write(b"retry: 2000\ndata: {\"type\": \"hello\"}\n\n")
            while not self._closing:
                try:
                    item = await asyncio.wait_for(queue.get(), timeout=KEEPALIVE_SECONDS)
                except TimeoutError:
                    await response.write(b": keepalive\n\n")
                    await self._present(agent)
                    continue
                if item is None:
                    break
                await response.write(f"data: {json.dumps(item)}\n\n".encode())
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            self._streams.pop(queue, None)
            if not any(a.id == agent.id for a in self._streams.values()):
                with contextlib.suppress(StoreError):
                    await self.store.kv_delete(PRESENCE_PREFIX + agent.id)
        return response

    async def _present(self, agent: Any) -> None:
        """The agent has the desk open: seen by every farm process (`reachable`) until the
        stream ends or keepalives stop for `PRESENCE_SECONDS`."""
        await self.store.kv_set(PRESENCE_PREFIX + agent.id, {"at": time.time()}, ttl_seconds=PRESENCE_SECONDS)

    async def reachable(self, bot: str, *, presence: bool = False) -> bool:
        """Whether the web desk can bring a handoff of ``bot`` to a person: always, unless
        ``presence`` asks for an agent who serves the bot to have the desk open right now."""
        if not presence:
            return True
        for agent in self.agents.values():
            if not self._may_serve(agent, bot):
                continue
            if any(a.id == agent.id for a in self._streams.values()) \
                    or await self.store.kv_get(PRESENCE_PREFIX + agent.id) is not None:
                return True
        return False

    def _push(self, conversation: Conversation, kind: str) -> None:
        item = {"type": kind, "conversation": conversation.id, "bot": conversation.bot,
                "status": conversation.status.value}
        for queue, agent in list(self._streams.items()):
            if self._may_serve(agent, conversation.bot):
                try:
                    queue.put_nowait(item)
                except asyncio.QueueFull:
                    log.debug("web_desk.stream_full", agent=agent.id)

    async def customer_typing(self, bot: str, channel: str, chat_id: str) -> None:
        """A customer is typing (the web chat calls this; its user id is its chat id): the agent in
        charge of their conversation sees "customer is typing…" live (an SSE ``typing`` item)."""
        contacts = await self.store.find_contacts(bot, identity=Identity(channel, chat_id, chat_id))
        if not contacts:
            return
        conversation = await self.store.conversation_for(bot, contacts[0].id)
        if conversation.status is not ConversationStatus.AGENT or not conversation.assigned_agent:
            return
        item = {"type": "typing", "conversation": conversation.id, "bot": bot}
        for queue, agent in list(self._streams.items()):
            if AGENT_PREFIX + agent.id == conversation.assigned_agent:
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(item)

    # -- Desk ----------------------------------------------------------------------------
    async def open_handoff(self, summary: HandoffSummary) -> str | None:
        self._push(summary.conversation, "handoff")
        return f"web:{summary.conversation.id}"

    async def customer_message(self, conversation: Conversation, event: Event) -> None:
        self._push(conversation, "message")

    async def status_changed(self, conversation: Conversation, detail: str | None = None) -> None:
        self._push(conversation, "status")

    async def transcript_changed(self, conversation: Conversation) -> None:
        self._push(conversation, "message")

