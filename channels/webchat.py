"""Web chat: a small page at ``/chat/{bot}`` talking to the farm over a web socket.

Protocol (JSON text frames):

client → server
  ``{"type": "hello", "session": "<id or null>"}``            first frame; the server answers ``welcome``
  ``{"type": "message", "id": "<client id>", "text": "..."}``  a customer message (id = retry-safe dedupe key)
  ``{"type": "button", "id": "<client id>", "payload": "/intent", "title": "..."}``
  ``{"type": "history"}``                                      ask for the transcript again
server → client
  ``{"type": "welcome", "session": "<id>", "bot": "<name>", "title": "..."}``
  ``{"type": "history", "messages": [<message>...]}``
  ``{"type": "message", "id", "role": "bot"|"agent"|"user"|"system", "author", "text", "buttons", "ts"}``
  ``{"type": "ack", "id": "<client id>"}``                     the message is durably stored
  ``{"type": "typing"}``
  ``{"type": "error", "code": "...", "message": "..."}``       the connection stays open

Messages are acknowledged only after the core stored them; the page resends
unacknowledged messages after a reconnect and the core de-duplicates them.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections import defaultdict
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any, ClassVar

import structlog
from aiohttp import WSMsgType, web
from aiolimiter import AsyncLimiter
from pydantic import Field

from channels.base import AdapterConfig, Capabilities, ChannelAdapter, Parsed, RateLimits, Route
from core.errors import BadRequest, StoreUnavailable
from core.model import Event, Inbound, Outbound, utcnow

log = structlog.get_logger(__name__)

SESSION_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class WebChatConfig(AdapterConfig):
    title: str = Field(default="", description="Shown in the page header; defaults to the bot name.")
    max_text_chars: int = Field(default=4000, ge=1)
    max_frame_bytes: int = Field(default=16_384, ge=256)
    messages_per_minute: int = Field(default=60, ge=1)
    allowed_origins: list[str] = Field(default_factory=list, description="Empty: same origin only.")
    sync_interval: float = Field(
        default=0.0, ge=0,
        description="Seconds between transcript checks for replies sent by another farm process "
                    "(set it when several processes share a MongoDB store); 0 = off.",
    )


def _error(code: str, message: str) -> dict[str, str]:
    return {"type": "error", "code": code, "message": message}


class WebChatAdapter(ChannelAdapter):
    name: ClassVar[str] = "webchat"
    capabilities: ClassVar[Capabilities] = Capabilities(buttons=True, max_buttons=10, typing=True)
    rate_limits: ClassVar[RateLimits] = RateLimits(per_bot=1000.0, per_chat=20.0, per_chat_burst=20)
    Config: ClassVar[type[AdapterConfig]] = WebChatConfig

    def __init__(self, bot: str, config: AdapterConfig, context: Any) -> None:
        super().__init__(bot, config, context)
        self.settings: WebChatConfig = config  # type: ignore[assignment]
        self._sockets: dict[str, set[web.WebSocketResponse]] = defaultdict(set)

    # -- routes ----------------------------------------------------------------------
    def routes(self) -> Sequence[Route]:
        base = f"/chat/{self.bot}"
        return (
            Route("GET", base, self._page, name=f"webchat-{self.bot}"),
            Route("GET", f"{base}/ws", self._socket),
            Route("GET", f"{base}/chat.js", self._asset),
            Route("GET", f"{base}/chat.css", self._asset),
        )

    async def _page(self, request: web.Request) -> web.StreamResponse:
        html = _read_static("chat.html")
        title = self.settings.title or self.bot
        html = html.replace("{{BOT}}", self.bot).replace("{{TITLE}}", _escape(title))
        return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-store"})

    async def _asset(self, request: web.Request) -> web.StreamResponse:
        filename = request.path.rsplit("/", 1)[-1]
        content_type = "text/javascript" if filename.endswith(".js") else "text/css"
        return web.Response(text=_read_static(filename), content_type=content_type)

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin and not self._origin_allowed(origin, request):
            log.warning("webchat.origin_rejected", bot=self.bot, origin=origin)
            return web.Response(status=403, text="origin not allowed")
        ws = web.WebSocketResponse(heartbeat=25, max_msg_size=1_048_576)
        await ws.prepare(request)
        session: str | None = None
        limiter = AsyncLimiter(self.settings.messages_per_minute, 60)
        sync: asyncio.Task[None] | None = None
        try:
            async for frame in ws:
                if frame.type == WSMsgType.TEXT:
                    try:
                        reply_session = await self._on_frame(ws, frame.data, session, limiter)
                    except Exception:
                        # The socket is already upgraded: answer with a frame, never an HTTP error page.
                        log.exception("webchat.frame_failed", bot=self.bot)
                        await ws.send_json(_error("internal", "something went wrong; please try again"))
                        continue
                    if reply_session and reply_session != session:
                        if session:
                            self._sockets[session].discard(ws)
                        session = reply_session
                        self._sockets[session].add(ws)
                        if self.settings.sync_interval and sync is None:
                            sync = asyncio.get_running_loop().create_task(self._sync(ws, session))
                elif frame.type == WSMsgType.BINARY:
                    await ws.send_json(_error("unsupported", "binary frames are not supported; send JSON text"))
                elif frame.type == WSMsgType.ERROR:
                    log.info("webchat.socket_error", bot=self.bot, error=str(ws.exception()))
        finally:
            if sync is not None:
                sync.cancel()
            if session:
                self._sockets[session].discard(ws)
                if not self._sockets[session]:
                    del self._sockets[session]
        return ws

    def _origin_allowed(self, origin: str, request: web.Request) -> bool:
        if origin in self.settings.allowed_origins:
            return True
        return origin.split("://", 1)[-1] == request.host

    async def _on_frame(
        self, ws: web.WebSocketResponse, data: str, session: str | None, limiter: AsyncLimiter
    ) -> str | None:
        if len(data.encode()) > self.settings.max_frame_bytes:
            await ws.send_json(_error("too_large", f"frames are limited to {self.settings.max_frame_bytes} bytes"))
            return session
        try:
            frame = json.loads(data)
        except ValueError:
            await ws.send_json(_error("bad_json", "frames must be JSON objects"))
            return session
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            await ws.send_json(_error("bad_frame", "frames must be JSON objects with a string 'type'"))
            return session
        kind = frame["type"]
        if kind == "hello":
            requested = frame.get("session")
            session = requested if isinstance(requested, str) and SESSION_RE.match(requested) else _new_session()
            await ws.send_json({"type": "welcome", "session": session, "bot": self.bot,
                                "title": self.settings.title or self.bot})
            await self._send_history(ws, session)
            return session
        if session is None:
            await ws.send_json(_error("no_session", "send a 'hello' frame first"))
            return None
        if kind == "history":
            await self._send_history(ws, session)
            return session
        if kind in ("message", "button"):
            if not limiter.has_capacity():
                await ws.send_json(_error("slow_down", "too many messages; wait a moment"))
                return session
            await limiter.acquire()
            try:
                inbound = self._inbound(frame, session)
            except BadRequest as exc:
                await ws.send_json(_error("bad_message", str(exc)))
                return session
            try:
                await self.context.accept(Parsed(messages=(inbound,)))
            except StoreUnavailable:
                log.warning("webchat.store_unavailable", bot=self.bot)
                await ws.send_json(_error("unavailable", "could not store the message; it will be resent"))
                return session
            await ws.send_json({"type": "ack", "id": frame["id"]})
            return session
        await ws.send_json(_error("unknown_type", f"unknown frame type '{kind[:40]}'"))
        return session

    def _inbound(self, frame: Mapping[str, Any], session: str) -> Inbound:
        client_id = frame.get("id")
        if not isinstance(client_id, str) or not CLIENT_ID_RE.match(client_id):
            raise BadRequest("'id' must be 1-64 characters of letters, digits, '.', '_', ':', '-'")
        if frame["type"] == "button":
            payload, title = frame.get("payload"), frame.get("title", "")
            if not isinstance(payload, str) or not payload or len(payload) > 512 or not isinstance(title, str):
                raise BadRequest("'payload' must be a non-empty string of at most 512 characters")
            text, button_payload = title[: self.settings.max_text_chars], payload
        else:
            raw_text = frame.get("text")
            if not isinstance(raw_text, str) or not raw_text.strip():
                raise BadRequest("'text' must be a non-empty string")
            text = raw_text
            if len(text) > self.settings.max_text_chars:
                raise BadRequest(f"messages are limited to {self.settings.max_text_chars} characters")
            button_payload = None
        return Inbound(
            bot=self.bot,
            channel=self.name,
            channel_user_id=session,
            chat_id=session,
            platform_message_id=self.namespaced(f"{session}:{client_id}"),
            text=text.strip(),
            button_payload=button_payload,
            timestamp=utcnow(),
        )

    async def _sync(self, ws: web.WebSocketResponse, session: str) -> None:
        """Push replies another farm process delivered (the page drops ids it already shows)."""
        last = max((e.seq for e in await self.context.history(self.bot, self.name, session)), default=0)
        while not ws.closed:
            await asyncio.sleep(self.settings.sync_interval)
            try:
                events = await self.context.history(self.bot, self.name, session, after_seq=last)
            except StoreUnavailable:
                continue
            for event in events:
                last = max(last, event.seq)
                message = event_to_message(event)
                if message is not None and message["role"] != "user" and not ws.closed:
                    await ws.send_json(message)

    async def _send_history(self, ws: web.WebSocketResponse, session: str) -> None:
        events = await self.context.history(self.bot, self.name, session)
        messages = [m for m in (event_to_message(e) for e in events) if m is not None]
        await ws.send_json({"type": "history", "messages": messages})

    # -- adapter contract --------------------------------------------------------------
    def parse(self, payload: Mapping[str, Any]) -> Parsed:
        """Web chat input arrives over the socket; a JSON frame parses like one message."""
        session = payload.get("session")
        if not isinstance(session, str) or not SESSION_RE.match(session):
            raise BadRequest("missing or malformed 'session'")
        return Parsed(messages=(self._inbound(payload, session),))

    async def send(self, message: Outbound) -> str:
        frame = {
            "type": "message",
            "id": message.id,
            "role": "agent" if message.author.is_agent else ("system" if message.author.kind == "system" else "bot"),
            "author": message.author.name,
            "text": message.text,
            "buttons": [{"title": b.title, "payload": b.payload} for b in message.buttons],
            "ts": message.created_at.isoformat(),
        }
        for ws in list(self._sockets.get(message.chat_id, ())):
            if not ws.closed:
                try:
                    await ws.send_json(frame)
                except ConnectionError:
                    log.debug("webchat.push_failed", bot=self.bot)
        # The transcript holds the message; a page that is offline now gets it with its history.
        return self.namespaced(message.id)

    async def typing(self, chat_id: str) -> None:
        for ws in list(self._sockets.get(chat_id, ())):
            if not ws.closed:
                try:
                    await ws.send_json({"type": "typing"})
                except ConnectionError:
                    pass

    async def stop(self) -> None:
        for sockets in list(self._sockets.values()):
            for ws in list(sockets):
                await ws.close()
        self._sockets.clear()


def event_to_message(event: Event) -> dict[str, Any] | None:
    """A transcript event as the page shows it, or None for events the customer does not see."""
    data = event.data
    if event.type == "user":
        text = data.get("text")
        if not text:
            return None
        message_id = str(data.get("message_id") or f"seq{event.seq}")
        return {"type": "message", "id": message_id.rsplit(":", 1)[-1], "role": "user", "author": None,
                "text": text, "buttons": [], "ts": event.timestamp.isoformat()}
    if event.type == "bot":
        meta = data.get("metadata") or {}
        role = meta.get("author", "bot")
        buttons = (data.get("data") or {}).get("buttons") or []
        return {"type": "message", "id": meta.get("outbound_id") or f"seq{event.seq}",
                "role": role if role in ("bot", "agent", "system") else "bot",
                "author": meta.get("author_name"), "text": data.get("text") or "",
                "buttons": buttons, "ts": event.timestamp.isoformat()}
    return None


def _new_session() -> str:
    return secrets.token_urlsafe(24)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


_STATIC_CACHE: dict[str, str] = {}


def _read_static(name: str) -> str:
    if name not in _STATIC_CACHE:
        _STATIC_CACHE[name] = resources.files("channels").joinpath("webchat_static", name).read_text("utf-8")
    return _STATIC_CACHE[name]
