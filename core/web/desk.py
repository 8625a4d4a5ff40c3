"""The built-in web desk at ``/desk``: agents log in, see the queue, take over, answer, close.

It is a `core.desk.Desk` (the handoff service tells it about handoffs, customer messages
and status changes; it pushes live updates to logged-in agents over server-sent events)
and it hands every agent action to `core.desk.DeskActions`.

Security: passwords are argon2 hashes from config (verified off the event loop, with the
same cost for unknown agents); login failures are rate-limited per client address and
per agent; the session cookie holds a random id signed with HMAC-SHA256 (secret from
``desk.web.session_secret``, else random per process), HttpOnly, SameSite=Strict, Path
/desk, Secure over HTTPS; sessions live in the store (logout ends them everywhere). The
API is JSON only and every state-changing request must carry ``X-Desk-Request: 1`` (a
custom header a cross-site form or image cannot send) and a same-origin ``Origin``.
Agents see and act on their own bots only (``WebAgent.bots``; empty = all).

API (JSON): ``POST /desk/api/login`` {agent, password}, ``POST /desk/api/logout``,
``GET /desk/api/me``, ``GET /desk/api/queue``, ``GET /desk/api/conversations/{id}``,
``GET /desk/api/history?text=&agent=&channel=&rating=&since=&until=`` (handed-off conversations,
closed ones included; see `core.web.desk_search`; every search is audited),
``POST /desk/api/conversations/{id}/transfer`` ({to: agent id or null for the queue, note}),
``POST /desk/api/conversations/{id}/{claim|reply|note|back|close}`` ({text} for reply
and note; a reply starting with ``core.desk.NOTE_PREFIX`` is stored as a note, never sent,
and the answer says ``"note": true``), ``POST /desk/api/conversations/{id}/typing`` (the assigned agent is typing a reply: the web chat
shows "<name> is typing…", Telegram/WhatsApp their own indicator; 403 for any other agent),
``GET /desk/api/dead-letters``, ``POST /desk/api/dead-letters/{id}/{replay|drop}``
(messages whose turn failed for good), ``GET /desk/api/stream`` (server-sent events:
``{"type", "conversation"}``; ``dead_letter`` when a message fails for good; ``typing`` to the agent
in charge while their web-chat customer types, see `WebDesk.customer_typing`).

Parts: `core.web.desk_auth` (logins, sessions), `core.web.desk_api` (the JSON API),
`core.web.desk_views` (the JSON shapes), `core.web.desk_live` (server-sent events and the
`core.desk.Desk` calls), `core.web.desk_http` (shared constants and helpers). Other modules
import `WebDesk` and `LoginLimiter` from here.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from aiohttp import web
from argon2 import PasswordHasher

from core.desk_config import CannedReply, WebAgent, WebDeskConfig
from core.handoff.service import HandoffService
from core.pipeline.dead_letters import DeadLetters
from core.ports import Route
from core.store.base import Store
from core.web.desk_api import DeskApi
from core.web.desk_auth import LoginLimiter
from core.web.desk_http import (
    AGENT_PREFIX,
    COOKIE,
    CSRF_HEADER,
    MAX_TEXT,
    SECURITY_HEADERS,
    SESSION_SECONDS,
    json_body,
    json_response,
    static_bytes,
    static_text,
)
from core.web.desk_live import DeskLive

__all__ = ["AGENT_PREFIX", "COOKIE", "CSRF_HEADER", "MAX_TEXT", "LoginLimiter", "WebDesk", "json_body",
           "json_response"]

log = structlog.get_logger(__name__)

_json = json_response  # the names these helpers had before the split, for modules written against them
_body = json_body
_static = static_text


class WebDesk(DeskApi, DeskLive):
    """`core.desk.Desk` in the browser; build with the config, the handoff service and the store."""

    name = "web"

    def __init__(
        self,
        config: WebDeskConfig,
        actions: HandoffService,
        store: Store,
        *,
        limiter: LoginLimiter | None = None,
        session_seconds: float = SESSION_SECONDS,
        dead_letters: DeadLetters | None = None,
        canned: Sequence[CannedReply] = (),
        channel_for: Callable[[str, str], Any | None] | None = None,
    ) -> None:
        self.config = config
        self.canned = tuple(canned)
        self.channel_for = channel_for  # (bot, channel name) -> the farm's adapter, for typing signals
        self.actions = actions
        self.store = store
        self.dead_letters = dead_letters or DeadLetters(store)
        self.agents: dict[str, WebAgent] = {a.id: a for a in config.agents}
        secret = config.session_secret or secrets.token_urlsafe(32)
        self._secret = secret.encode()
        self.limiter = limiter or LoginLimiter()
        self.session_seconds = session_seconds
        self._hasher = PasswordHasher()
        self._dummy_hash: str | None = None
        self._streams: dict[asyncio.Queue[dict[str, Any] | None], WebAgent] = {}
        self._closing = False

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        self._closing = False
        log.info("web_desk.started", agents=len(self.agents))

    async def stop(self) -> None:
        self.close_streams()

    async def on_app_shutdown(self, app: web.Application) -> None:
        self.close_streams()

    # -- routes ------------------------------------------------------------------------
    def routes(self) -> Sequence[Route]:
        return (
            Route("GET", "/desk", self._page, name="desk"),
            Route("GET", "/desk/desk.js", self._asset),
            Route("GET", "/desk/desk.css", self._asset),
            Route("GET", "/desk/notify.wav", self._sound),
            Route("POST", "/desk/api/login", self._login),
            Route("POST", "/desk/api/logout", self._logout),
            Route("GET", "/desk/api/me", self._me),
            Route("GET", "/desk/api/queue", self._queue),
            Route("GET", "/desk/api/history", self._history),
            Route("GET", "/desk/api/conversations/{id}", self._conversation),
            Route("POST", "/desk/api/conversations/{id}/typing", self._typing),
            Route("POST", "/desk/api/conversations/{id}/{action}", self._action),
            Route("GET", "/desk/api/dead-letters", self._dead_letters),
            Route("POST", "/desk/api/dead-letters/{id}/{action}", self._dead_letter_action),
            Route("GET", "/desk/api/stream", self._stream),
        )

    async def _page(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text=static_text("desk.html"), content_type="text/html", headers=SECURITY_HEADERS)

    async def _sound(self, request: web.Request) -> web.StreamResponse:
        """The new-handoff chime (a 0.4 s two-tone WAV made for this desk; no CDN)."""
        return web.Response(body=static_bytes("notify.wav"), content_type="audio/wav",
                            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "max-age=86400"})

    async def _asset(self, request: web.Request) -> web.StreamResponse:
        filename = request.path.rsplit("/", 1)[-1]
        content_type = "text/javascript" if filename.endswith(".js") else "text/css"
        return web.Response(text=static_text(filename), content_type=content_type,
                            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"})

