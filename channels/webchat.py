"""Web chat: a page at ``/chat/{bot}`` (and an embeddable launcher) talking to the farm over a web socket.

Protocol (JSON text frames):

client → server
  ``{"type": "hello", "session": "<id or null>", "languages": ["de-DE", ...], "watch": true}``  first frame;
                                                               ``watch``: also send state, receipts, language
  ``{"type": "message", "id": "<client id>", "text": "...", "attachments": ["f_..."]}``  (id = retry-safe dedupe key;
                                                               attachments are ids from ``POST /chat/{bot}/upload``)
  ``{"type": "button", "id": "<client id>", "payload": "/intent", "title": "..."}``
  ``{"type": "history"}``                                      ask for the transcript again
  ``{"type": "typing"}``                                       the customer is typing (shown in the web desk
                                                               while an agent is in charge; no answer)
server → client
  ``{"type": "welcome", "session": "<id>", "bot": "<name>", "title": "...", "language": "de"}``
  ``{"type": "history", "messages": [<message>...]}``
  ``{"type": "message", "id", "role": "bot"|"agent"|"user"|"system", "author", "text", "buttons", "attachments", "ts"}``
                                                               ``id``: the reply's outbox item id, the same on every
                                                               send of it; the page shows a given id once
  ``{"type": "ack", "id": "<client id>", "waiting": bool}``   stored durably (= "sent"); ``waiting``: queued for a person
  ``{"type": "receipts", "messages": {"<client id>": "delivered"|"read"}}``
  ``{"type": "state", "state": "bot"|"waiting"|"agent", "position": n|null, "minutes": n|null, "agent": name|null}``
  ``{"type": "language", "language": "en"}``                  the customer's detected language changed
  ``{"type": "typing", "who": "bot"|"agent", "name": str|null}``
  ``{"type": "error", "code": "...", "message": "..."}``       the connection stays open

Message states of the customer's own messages: *sent* = the server stored it (the ack);
*delivered* = it reached its reader: the bot's turn took it, or it was relayed to the
agents' desk (its ``user`` event is in the transcript); *read* = the bot or an agent
answered after it. Messages are acknowledged only after the core stored them; the page
resends unacknowledged messages after a reconnect and the core de-duplicates them.

Typing: the core calls `typing` when a turn takes a moment; it is shown only while the bot
answers (not while the conversation waits for or is with a person). `agent_typing` is called
by the web desk while the agent in charge types a reply (``POST /desk/api/conversations/{id}/typing``); the page hides the dots on
the next message, or after 8 s without one.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

import structlog
from aiohttp import WSMsgType, web
from aiolimiter import AsyncLimiter
from pydantic import Field, field_validator

from channels import webchat_labels as labels_
from channels.base import (
    AdapterConfig,
    Capabilities,
    ChannelAdapter,
    Parsed,
    RateLimits,
    Route,
)
from channels.webchat_files import (
    MAX_UPLOAD_LIMIT,
    SESSION_RE,
    SUPPORTED_TYPES,
    DeskAuth,
    FileRoutes,
)
from channels.webchat_live import HandoffView, LiveState
from channels.webchat_page import read_static, render_page, render_widget
from channels.webchat_state import (
    attachment_json,
    conversation_language,
    event_to_message,
)
from core.errors import BadRequest, StoreUnavailable
from core.files import StoredFile, is_stored
from core.model import (
    Attachment,
    Event,
    Inbound,
    Outbound,
    utcnow,
)

log = structlog.get_logger(__name__)

CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
TYPING_EVERY = 2.0  # seconds between customer-typing signals to the desk, per session


class WebChatConfig(AdapterConfig):
    title: str = Field(default="", description="Shown in the page header; defaults to the bot name.")
    max_text_chars: int = Field(default=4000, ge=1)
    max_frame_bytes: int = Field(default=16_384, ge=256)
    messages_per_minute: int = Field(default=60, ge=1)
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Origins of pages that may open the socket or frame the chat (the launcher); "
                    "empty: same origin only.")
    sync_interval: float = Field(
        default=0.0, ge=0,
        description="Seconds between transcript checks for replies sent by another farm process "
                    "(set it when several processes share a MongoDB store); 0 = off.",
    )
    language: str | None = Field(
        default=None, description="UI language when the farm gives none (else the bot's default_language).")
    labels: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="Per-language label overrides, e.g. {de: {send: Los}}.")
    max_upload_bytes: int = Field(default=5_000_000, ge=1, le=MAX_UPLOAD_LIMIT)
    allowed_types: list[str] = Field(default_factory=lambda: list(SUPPORTED_TYPES))
    uploads_per_hour: int = Field(default=30, ge=1, description="Per client address.")

    @field_validator("labels")
    @classmethod
    def _known_labels(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for language, entries in value.items():
            unknown = sorted(set(entries) - labels_.KEYS)
            if unknown:
                raise ValueError(f"unknown label(s) for '{language}': {', '.join(unknown)}; "
                                 f"known: {', '.join(sorted(labels_.KEYS))}")
        return value

    @field_validator("allowed_types")
    @classmethod
    def _supported_types(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(SUPPORTED_TYPES))
        if unknown:
            raise ValueError(f"unsupported type(s) {', '.join(unknown)}; the content check knows "
                             f"{', '.join(SUPPORTED_TYPES)}")
        return value


def _error(code: str, message: str) -> dict[str, str]:
    return {"type": "error", "code": code, "message": message}


class WebChatAdapter(ChannelAdapter):
    name: ClassVar[str] = "webchat"
    capabilities: ClassVar[Capabilities] = Capabilities(buttons=True, max_buttons=10, typing=True, media=True)
    rate_limits: ClassVar[RateLimits] = RateLimits(per_bot=1000.0, per_chat=20.0, per_chat_burst=20)
    Config: ClassVar[type[AdapterConfig]] = WebChatConfig

    def __init__(self, bot: str, config: AdapterConfig, context: Any) -> None:
        super().__init__(bot, config, context)
        self.settings: WebChatConfig = config  # type: ignore[assignment]
        self._sockets: dict[str, set[web.WebSocketResponse]] = defaultdict(set)
        self._handoff: HandoffView | None = None
        self._typing_seen: dict[str, float] = {}  # session -> loop time of the last typing signal to the desk
        self.live = LiveState(bot, self.name, context, self._sockets, self._language)
        self.files = FileRoutes(bot, context, max_bytes=self.settings.max_upload_bytes,
                                allowed_types=self.settings.allowed_types, origin_allowed=self._origin_allowed,
                                per_hour=self.settings.uploads_per_hour)

    # -- wiring (called by core.handoff.wiring when the handoff layer is installed) ---------
    def attach_handoff(self, handoff: HandoffView, web_desk: DeskAuth | None) -> None:
        """Read the queue for the waiting state and let desk agents open uploaded files."""
        self._handoff = handoff
        self.files.desk = web_desk
        self.live.handoff = handoff
        handoff.watchers.append(self.live.handoff_changed)

    def _bot_settings(self) -> Any:
        return self._handoff.bots.get(self.bot) if self._handoff is not None else None

    def default_language(self) -> str:
        settings = self._bot_settings()
        return str(getattr(settings, "default_language", None) or self.settings.language or "en")

    def offered_languages(self) -> list[str]:
        settings = self._bot_settings()
        offered = [str(x) for x in getattr(settings, "languages", None) or []]
        return [labels_.primary(x) for x in [self.default_language(), *offered]]

    # -- routes ----------------------------------------------------------------------
    def routes(self) -> Sequence[Route]:
        base = f"/chat/{self.bot}"
        return (
            Route("GET", base, self._page, name=f"webchat-{self.bot}"),
            Route("GET", f"{base}/ws", self._socket),
            Route("GET", f"{base}/chat.js", self._asset),
            Route("GET", f"{base}/chat.css", self._asset),
            Route("GET", f"{base}/widget.js", self._widget),
            Route("POST", f"{base}/upload", self.files.upload),
            Route("GET", f"{base}/files/{{file_id}}", self.files.customer_file),
            Route("GET", f"/desk/api/webchat/{self.bot}/files/{{file_id}}", self.files.agent_file),
        )

    def _frame_ancestors(self) -> str:
        return " ".join(["'self'", *self.settings.allowed_origins])

    async def _page(self, request: web.Request) -> web.StreamResponse:
        html = render_page(
            bot=self.bot, title=self.settings.title or self.bot, language=labels_.primary(self.default_language()),
            offered=self.offered_languages(), overrides=self.settings.labels,
            max_upload_bytes=self.settings.max_upload_bytes, allowed_types=self.settings.allowed_types,
            embedded=request.query.get("embed") == "1")
        return web.Response(text=html, content_type="text/html", headers={
            "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": f"frame-ancestors {self._frame_ancestors()}",
        })

    async def _asset(self, request: web.Request) -> web.StreamResponse:
        filename = request.path.rsplit("/", 1)[-1]
        content_type = "text/javascript" if filename.endswith(".js") else "text/css"
        return web.Response(text=read_static(filename), content_type=content_type,
                            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"})

    async def _widget(self, request: web.Request) -> web.StreamResponse:
        """The launcher: included on any page, it opens the chat in a corner iframe."""
        words = labels_.labels(labels_.primary(self.default_language()), self.settings.labels)
        script = render_widget(bot=self.bot, label=labels_.fill(words["chat_with"],
                                                                title=self.settings.title or self.bot))
        return web.Response(text=script, content_type="text/javascript", headers={
            "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache",
            "Cross-Origin-Resource-Policy": "cross-origin"})

    # -- socket -------------------------------------------------------------------------
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
                        self.live.joined(session)
                        if self.settings.sync_interval and sync is None:
                            sync = asyncio.get_running_loop().create_task(self._sync(ws, session))
                elif frame.type == WSMsgType.BINARY:
                    await ws.send_json(_error("unsupported", "binary frames are not supported; send JSON text"))
                elif frame.type == WSMsgType.ERROR:
                    log.info("webchat.socket_error", bot=self.bot, error=str(ws.exception()))
        finally:
            if sync is not None:
                sync.cancel()
            last = False
            if session:
                self._sockets[session].discard(ws)
                if not self._sockets[session]:
                    del self._sockets[session]
                    last = True
            self.live.left(ws, session, last=last)
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
            raw = frame.get("languages")
            browser = tuple(str(x)[:35] for x in raw[:10]) if isinstance(raw, list) else ()
            events = await self.context.history(self.bot, self.name, session)
            self.live.hello(ws, session, events, watch=frame.get("watch") is True, browser=browser)
            language = self._language(conversation_language(events), browser)
            await ws.send_json({"type": "welcome", "session": session, "bot": self.bot,
                                "title": self.settings.title or self.bot, "language": language})
            await self._send_history(ws, events)
            return session
        if session is None:
            await ws.send_json(_error("no_session", "send a 'hello' frame first"))
            return None
        if kind == "history":
            await self._send_history(ws, await self.context.history(self.bot, self.name, session))
            return session
        if kind == "typing":
            await self._customer_typing(session)
            return session
        if kind in ("message", "button"):
            if not limiter.has_capacity():
                await ws.send_json(_error("slow_down", "too many messages; wait a moment"))
                return session
            await limiter.acquire()
            try:
                inbound = self._inbound(frame, session, await self.files.attachments(frame, session),
                                       language_hint=",".join(self.live.browser.get(ws, ())) or None)
            except BadRequest as exc:
                await ws.send_json(_error("bad_message", str(exc)))
                return session
            try:
                await self.context.accept(Parsed(messages=(inbound,)))
            except StoreUnavailable:
                log.warning("webchat.store_unavailable", bot=self.bot)
                await ws.send_json(_error("unavailable", "could not store the message; it will be resent"))
                return session
            shown = self.live.state_of(session)
            await ws.send_json({"type": "ack", "id": frame["id"],
                                "waiting": shown is not None and shown.state == "waiting"})
            return session
        await ws.send_json(_error("unknown_type", f"unknown frame type '{kind[:40]}'"))
        return session

    async def _customer_typing(self, session: str) -> None:
        """The customer is typing: tell the web desk, only while an agent is in charge (no reply)."""
        shown = self.live.state_of(session)
        notify = getattr(self.files.desk, "customer_typing", None)
        if shown is None or shown.state != "agent" or not callable(notify):
            return
        now = asyncio.get_running_loop().time()
        if now - self._typing_seen.get(session, -TYPING_EVERY) < TYPING_EVERY:
            return  # at most one signal per session every TYPING_EVERY seconds, whatever the page sends
        self._typing_seen[session] = now
        if len(self._typing_seen) > 10_000:
            self._typing_seen.clear()
        try:
            await notify(self.bot, self.name, session)
        except StoreUnavailable:
            log.debug("webchat.typing_unavailable", bot=self.bot)

    def _language(self, conversation: str | None, browser: Iterable[str]) -> str:
        return labels_.page_language(default=self.default_language(), offered=self.offered_languages(),
                                     conversation=conversation, browser=browser)

    def _inbound(self, frame: Mapping[str, Any], session: str, attachments: tuple[Attachment, ...] = (),
                 language_hint: str | None = None) -> Inbound:
        """``language_hint``: the page's browser languages (``navigator.languages``), strongest first."""
        client_id = frame.get("id")
        if not isinstance(client_id, str) or not CLIENT_ID_RE.match(client_id):
            raise BadRequest("'id' must be 1-64 characters of letters, digits, '.', '_', ':', '-'")
        if frame["type"] == "button":
            payload, title = frame.get("payload"), frame.get("title", "")
            if not isinstance(payload, str) or not payload or len(payload) > 512 or not isinstance(title, str):
                raise BadRequest("'payload' must be a non-empty string of at most 512 characters")
            text, button_payload = title[: self.settings.max_text_chars], payload
        else:
            raw_text = frame.get("text", "")
            if not isinstance(raw_text, str) or (not raw_text.strip() and not attachments):
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
            attachments=attachments,
            timestamp=utcnow(),
            language_hint=language_hint,
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
            shown = self.live.state_of(session)
            if shown is not None and shown.state == "waiting":  # other processes' claims move the queue
                self.live.queue_moved = True
            if events or (shown is not None and shown.state == "waiting"):
                self.live.schedule((session,))

    async def _send_history(self, ws: web.WebSocketResponse, events: Sequence[Event]) -> None:
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
        if any(is_stored(a) for a in message.attachments):
            message = replace(message, attachments=tuple(
                [await self.files.copy_for(a, message.chat_id) if is_stored(a) else a for a in message.attachments]))
        frame = {
            "type": "message",
            "id": message.id,
            "role": "agent" if message.author.is_agent else ("system" if message.author.kind == "system" else "bot"),
            "author": message.author.name,
            "text": message.text,
            "buttons": [{"title": b.title, "payload": b.payload} for b in message.buttons],
            "attachments": [attachment_json(a) for a in message.attachments],
            "ts": message.created_at.isoformat(),
        }
        for ws in list(self._sockets.get(message.chat_id, ())):
            if not ws.closed:
                try:
                    await ws.send_json(frame)
                except ConnectionError:
                    log.debug("webchat.push_failed", bot=self.bot)
        self.live.schedule((message.chat_id,))  # receipts (read), state and language follow the transcript
        # The transcript holds the message; a page that is offline now gets it with its history.
        return self.namespaced(message.id)

    async def fetch_media(self, attachment: Attachment, max_bytes: int) -> StoredFile:
        """A customer's upload (kept in this adapter's files store), for a desk to show."""
        found = await self.files.stored(attachment.file_id or "")
        if found is None:
            raise BadRequest("upload not found")
        return StoredFile(found.id, found.mime_type, found.name, found.data)

    async def typing(self, chat_id: str) -> None:
        """The bot is working on an answer; not shown while a person is (to be) in charge."""
        shown = self.live.state_of(chat_id)
        if shown is not None and shown.state != "bot":
            return
        await self._typing_frame(chat_id, {"type": "typing", "who": "bot", "name": None})

    async def agent_typing(self, chat_id: str, name: str | None = None) -> None:
        """Hook for a desk that reports an agent typing (the page shows "<name> is typing")."""
        await self._typing_frame(chat_id, {"type": "typing", "who": "agent", "name": name})

    async def _typing_frame(self, chat_id: str, frame: dict[str, Any]) -> None:
        for ws in list(self._sockets.get(chat_id, ())):
            if not ws.closed:
                try:
                    await ws.send_json(frame)
                except ConnectionError:
                    pass

    async def stop(self) -> None:
        self.live.stop()
        for sockets in list(self._sockets.values()):
            for ws in list(sockets):
                await ws.close()
        self._sockets.clear()


def _new_session() -> str:
    return secrets.token_urlsafe(24)
