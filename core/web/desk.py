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
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from importlib import resources
from typing import Any

import structlog
from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from core.config import CannedReply, WebAgent, WebDeskConfig
from core.desk import (
    NOTE_PREFIX,
    DeadLetterNotice,
    HandoffSummary,
    customer_name,
    is_note,
    priority,
    priority_label,
)
from core.errors import ChannelError, NotFound, SwitchboardError
from core.handoff.service import AgentNotAllowed, ConversationView, HandoffService, QueueEntry
from core.model import Contact, Conversation, ConversationStatus, Event, Identity
from core.pipeline.dead_letters import DeadLetters
from core.ports import Route
from core.store.base import AuditEntry, DeadLetter, Store
from core.web.desk_search import Hit, SearchQuery, search

log = structlog.get_logger(__name__)

AGENT_PREFIX = "web:"
COOKIE = "sb_desk"
CSRF_HEADER = "X-Desk-Request"
SESSION_SECONDS = 12 * 3600
KEEPALIVE_SECONDS = 15.0
MAX_TEXT = 4000
_ACTIONS = ("claim", "reply", "note", "back", "close", "transfer")
_PLAIN_TYPING_CHANNELS = frozenset({"telegram", "whatsapp"})  # their adapters' typing(chat_id), no agent name
_HIDDEN_SLOTS = frozenset({"language", "session_started_metadata"})  # shown elsewhere or internal
_SLOT_LABELS = {"requested_slot": "form was asking for"}
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class LoginLimiter:
    """At most ``attempts`` failed logins per ``window`` seconds per key (client address, agent id)."""

    def __init__(self, attempts: int = 5, window: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.attempts = attempts
        self.window = window
        self.clock = clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, key: str) -> deque[float]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        cutoff = self.clock() - self.window
        while failures and failures[0] < cutoff:
            failures.popleft()
        if not failures:
            del self._failures[key]  # unknown names sprayed at the form must not grow memory for ever
        return failures

    def retry_after(self, *keys: str) -> float:
        """Seconds until a login may be tried again (0 = now)."""
        wait = 0.0
        for key in keys:
            failures = self._recent(key)
            if len(failures) >= self.attempts:
                wait = max(wait, failures[0] + self.window - self.clock())
        return wait

    def failed(self, *keys: str) -> None:
        if len(self._failures) > 100_000:  # under a spray attack, forget the oldest keys
            for key in list(self._failures)[:50_000]:
                del self._failures[key]
        for key in keys:
            self._recent(key)
            self._failures[key].append(self.clock())

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)


class WebDesk:
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

    def close_streams(self) -> None:
        """End every live-update stream (before the HTTP server waits for open requests)."""
        self._closing = True
        for queue in list(self._streams):
            queue.put_nowait(None)

    async def on_app_shutdown(self, app: web.Application) -> None:
        self.close_streams()

    # -- routes ------------------------------------------------------------------------
    def routes(self) -> Sequence[Route]:
        return (
            Route("GET", "/desk", self._page, name="desk"),
            Route("GET", "/desk/desk.js", self._asset),
            Route("GET", "/desk/desk.css", self._asset),
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
        return web.Response(text=_static("desk.html"), content_type="text/html", headers=_SECURITY_HEADERS)

    async def _asset(self, request: web.Request) -> web.StreamResponse:
        filename = request.path.rsplit("/", 1)[-1]
        content_type = "text/javascript" if filename.endswith(".js") else "text/css"
        return web.Response(text=_static(filename), content_type=content_type,
                            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"})

    # -- sessions ----------------------------------------------------------------------
    def _sign(self, sid: str) -> str:
        return hmac.new(self._secret, sid.encode(), hashlib.sha256).hexdigest()

    async def _agent(self, request: web.Request) -> WebAgent | None:
        cookie = request.cookies.get(COOKIE, "")
        sid, _, signature = cookie.partition(".")
        if not sid or not hmac.compare_digest(signature, self._sign(sid)):
            return None
        session = await self.store.kv_get(f"desk:session:{sid}")
        if not isinstance(session, dict) or session.get("expires", 0) < self.store.clock.time():
            return None
        return self.agents.get(str(session.get("agent")))

    async def _require(self, request: web.Request, *, writes: bool = False) -> WebAgent:
        if writes:
            if request.headers.get(CSRF_HEADER) != "1":
                raise web.HTTPForbidden(text=json.dumps({"error": f"missing {CSRF_HEADER} header"}),
                                        content_type="application/json")
            origin = request.headers.get("Origin")
            if origin and origin.split("://", 1)[-1] != request.host:
                raise web.HTTPForbidden(text=json.dumps({"error": "cross-origin request"}),
                                        content_type="application/json")
        agent = await self._agent(request)
        if agent is None:
            raise web.HTTPUnauthorized(text=json.dumps({"error": "log in first"}), content_type="application/json")
        return agent

    async def authorize(self, request: web.Request, bot: str) -> str | None:
        """The logged-in agent's id (``web:<id>``) if they may serve ``bot``, else None (for
        routes other modules mount under ``/desk``, e.g. the web chat's uploaded files)."""
        agent = await self._agent(request)
        return AGENT_PREFIX + agent.id if agent is not None and self._may_serve(agent, bot) else None

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return bool(self._hasher.verify(password_hash, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))
        return self._dummy_hash

    async def _login(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get(CSRF_HEADER) != "1":
            return _json({"error": f"missing {CSRF_HEADER} header"}, 403)
        body = await _body(request)
        agent_id, password = body.get("agent"), body.get("password")
        if not isinstance(agent_id, str) or not isinstance(password, str) or not agent_id or len(password) > 1024:
            return _json({"error": "agent and password are required"}, 400)
        client = f"ip:{request.remote or 'unknown'}"
        account = f"agent:{agent_id[:100]}"
        wait = self.limiter.retry_after(client, account)
        if wait > 0:
            log.warning("web_desk.login_limited", agent=agent_id[:100])
            return _json({"error": "too many failed logins; try again later"}, 429,
                         headers={"Retry-After": str(int(wait) + 1)})
        agent = self.agents.get(agent_id)
        ok = await asyncio.to_thread(self._verify, agent.password_hash if agent else self._dummy(), password)
        if agent is None or not ok:
            self.limiter.failed(client, account)
            log.info("web_desk.login_failed", agent=agent_id[:100])
            return _json({"error": "wrong agent or password"}, 401)
        self.limiter.succeeded(account)
        sid = secrets.token_urlsafe(24)
        await self.store.kv_set(f"desk:session:{sid}", {"agent": agent.id, "expires": self.store.clock.time()
                                                        + self.session_seconds}, ttl_seconds=self.session_seconds)
        response = _json({"agent": _agent_json(agent)})
        response.set_cookie(COOKIE, f"{sid}.{self._sign(sid)}", max_age=int(self.session_seconds), path="/desk",
                            httponly=True, samesite="Strict", secure=request.secure)
        log.info("web_desk.login", agent=agent.id)
        return response

    async def _logout(self, request: web.Request) -> web.StreamResponse:
        await self._require(request, writes=True)
        sid = request.cookies.get(COOKIE, "").partition(".")[0]
        await self.store.kv_delete(f"desk:session:{sid}")
        response = _json({"ok": True})
        response.del_cookie(COOKIE, path="/desk")
        return response

    async def _me(self, request: web.Request) -> web.StreamResponse:
        agent = await self._require(request)
        return _json({"agent": _agent_json(agent), "note_prefix": NOTE_PREFIX})

    # -- reading -----------------------------------------------------------------------
    def _bots(self, agent: WebAgent) -> list[str] | None:
        return list(agent.bots) if agent.bots else None

    def _may_serve(self, agent: WebAgent, bot: str) -> bool:
        return not agent.bots or bot in agent.bots

    async def _queue(self, request: web.Request) -> web.StreamResponse:
        agent = await self._require(request)
        entries = await self.actions.queue(self._bots(agent))
        now = self.actions.clock()
        # One summary per entry (a transcript read each): fine for a queue of hundreds; a store
        # query with the handoff facts denormalised would be the next step for more.
        items = [self._entry_json(e, await self.actions.summary(e.conversation), now) for e in entries]
        return _json({"conversations": items})

    async def _history(self, request: web.Request) -> web.StreamResponse:
        agent = await self._require(request)
        try:
            query = _search_query(request.query)
        except ValueError as exc:
            return _json({"error": str(exc)}, 400)
        bots = [b for b in self.actions.bots if self._may_serve(agent, b)]
        hits, scanned = await search(self.store, self.actions, bots, query)
        await self.store.audit(AuditEntry(actor=AGENT_PREFIX + agent.id, action="search", target="history",
                                          detail={**query.as_detail(), "results": len(hits)}))
        log.info("web_desk.search", agent=agent.id, results=len(hits), scanned=scanned)
        return _json({"results": [self._hit_json(h) for h in hits], "scanned": scanned})

    def _canned(self, conversation: Conversation) -> list[dict[str, str]]:
        """The canned replies for this conversation's bot and language (``de-AT`` uses ``de`` ones)."""
        language = (conversation.language or self.actions.language(conversation)).split("-")[0].lower()
        return [{"title": c.title, "text": c.text} for c in self.canned
                if (c.bot is None or c.bot == conversation.bot)
                and (c.language is None or c.language.split("-")[0].lower() == language)]

    def _hit_json(self, hit: Hit) -> dict[str, Any]:
        c = hit.conversation
        return {"id": c.id, "bot": c.bot, "status": c.status.value, "customer": hit.customer,
                "channels": list(hit.channels), "agents": list(hit.agents), "ratings": list(hit.ratings),
                "first_at": hit.first_at.isoformat() if hit.first_at else None,
                "last_at": hit.last_at.isoformat() if hit.last_at else None,
                "snippet": hit.snippet, "handoffs": hit.handoffs, "matched": list(hit.matched)}

    async def _visible(self, agent: WebAgent, conversation_id: str) -> ConversationView:
        try:
            view = await self.actions.view(conversation_id)
        except NotFound as exc:
            raise web.HTTPNotFound(text=json.dumps({"error": "no such conversation"}),
                                   content_type="application/json") from exc
        if not self._may_serve(agent, view.conversation.bot):
            log.warning("web_desk.forbidden", agent=agent.id, conversation=conversation_id)
            raise web.HTTPNotFound(text=json.dumps({"error": "no such conversation"}),
                                   content_type="application/json")
        return view

    async def _conversation(self, request: web.Request) -> web.StreamResponse:
        agent = await self._require(request)
        view = await self._visible(agent, request.match_info["id"])
        await self.actions.viewed(view.conversation, AGENT_PREFIX + agent.id)
        ratings = [e.data["score"] for e in view.transcript if e.type == "csat" and isinstance(e.data.get("score"), int)]
        colleagues = [{"id": a.id, "name": a.name} for a in self.agents.values()
                      if a.id != agent.id and self._may_serve(a, view.conversation.bot)]
        return _json({
            "colleagues": colleagues,
            "canned": self._canned(view.conversation),
            "conversation": {**self._conversation_json(view.conversation, view.contact), "ratings": ratings},
            "summary": self._summary_json(view.summary),
            "transcript": [m for m in (self._event_json(e) for e in view.transcript) if m],
        })

    # -- acting ------------------------------------------------------------------------
    async def _action(self, request: web.Request) -> web.StreamResponse:
        agent = await self._require(request, writes=True)
        action = request.match_info["action"]
        if action not in _ACTIONS:
            return _json({"error": f"unknown action; use one of {', '.join(_ACTIONS)}"}, 404)
        conversation_id = request.match_info["id"]
        await self._visible(agent, conversation_id)
        body = await _body(request) if action in ("reply", "note", "transfer") else {}
        text = body.get("text")
        if action in ("reply", "note") and (not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT):
            return _json({"error": f"'text' must be 1-{MAX_TEXT} characters"}, 400)
        agent_id = AGENT_PREFIX + agent.id
        to = body.get("to")
        if action == "transfer" and not (to is None or (isinstance(to, str) and to in self.agents)):
            return _json({"error": "'to' must be an agent id of this desk, or null for the queue"}, 400)
        note = body.get("note") or ""
        if action == "transfer" and (not isinstance(note, str) or len(note) > MAX_TEXT):
            return _json({"error": f"'note' must be at most {MAX_TEXT} characters"}, 400)
        try:
            if action == "transfer":
                target = self.agents[to] if isinstance(to, str) else None
                await self.actions.transfer(conversation_id, agent_id, agent.name,
                                            to_agent=AGENT_PREFIX + target.id if target else None,
                                            to_name=target.name if target else None, note=str(note))
            elif action == "claim":
                await self.actions.claim(conversation_id, agent_id, agent.name)
            elif action == "reply":
                await self.actions.agent_reply(conversation_id, agent_id, agent.name, str(text))
            elif action == "note":
                await self.actions.internal_note(conversation_id, agent_id, agent.name, str(text))
            elif action == "back":
                await self.actions.back_to_bot(conversation_id, agent_id, agent.name)
            else:
                await self.actions.close(conversation_id, agent_id, agent.name)
        except AgentNotAllowed as exc:
            return _json({"error": str(exc)}, 403)
        except SwitchboardError as exc:
            return _json({"error": str(exc)}, 409)
        stored_as_note = action == "note" or (action == "reply" and is_note(str(text)))
        log.info("web_desk.action", action=action, conversation=conversation_id, agent=agent_id,
                 note=stored_as_note)
        view = await self.actions.view(conversation_id)
        return _json({"conversation": self._conversation_json(view.conversation, view.contact),
                      "note": stored_as_note})

    async def _typing(self, request: web.Request) -> web.StreamResponse:
        """The assigned agent is typing a reply: show it where the customer is (best effort)."""
        agent = await self._require(request, writes=True)
        view = await self._visible(agent, request.match_info["id"])
        conversation = view.conversation
        if conversation.status is not ConversationStatus.AGENT or conversation.assigned_agent != AGENT_PREFIX + agent.id:
            return _json({"error": "only the agent in charge of the conversation can signal typing"}, 403)
        identity = view.contact.reply_identity() if view.contact else None
        adapter = self.channel_for(conversation.bot, identity.channel) if identity and self.channel_for else None
        sent = False
        if identity is not None and adapter is not None:
            agent_typing = getattr(adapter, "agent_typing", None)
            typing = getattr(adapter, "typing", None)
            try:
                if callable(agent_typing):
                    await agent_typing(identity.chat_id, agent.name)
                    sent = True
                elif identity.channel in _PLAIN_TYPING_CHANNELS and callable(typing):
                    await typing(identity.chat_id)  # the platform's own "typing…" (no name there)
                    sent = True
            except (ChannelError, ConnectionError) as exc:  # cosmetic: never an error for the agent
                log.info("web_desk.typing_failed", conversation=conversation.id, channel=identity.channel,
                         error=str(exc))
        return _json({"ok": True, "sent": sent})

    # -- dead letters ----------------------------------------------------------------------
    def _dead_letter_json(self, letter: DeadLetter) -> dict[str, Any]:
        message = letter.item.inbound
        return {"id": letter.item.id, "bot": letter.bot, "conversation": letter.item.conversation_id,
                "channel": message.channel, "attempts": letter.item.attempts, "error": letter.error,
                "text": self.actions.masker(letter.bot).mask(message.text or message.button_payload or "")[:500],
                "dead_at": letter.dead_at.isoformat()}

    async def _dead_letters(self, request: web.Request) -> web.StreamResponse:
        agent = await self._require(request)
        letters = await self.dead_letters.list(self._bots(agent))
        return _json({"dead_letters": [self._dead_letter_json(d) for d in letters]})

    async def _dead_letter_action(self, request: web.Request) -> web.StreamResponse:
        agent = await self._require(request, writes=True)
        action = request.match_info["action"]
        if action not in ("replay", "drop"):
            return _json({"error": "unknown action; use replay or drop"}, 404)
        try:
            item_id = int(request.match_info["id"])
        except ValueError:
            return _json({"error": "no such dead letter"}, 404)
        letters = {d.item.id: d for d in await self.dead_letters.list(self._bots(agent), limit=10_000)}
        if item_id not in letters:
            return _json({"error": "no such dead letter"}, 404)
        actor = AGENT_PREFIX + agent.id
        run = self.dead_letters.replay if action == "replay" else self.dead_letters.drop
        if await run(item_id, actor=actor) is None:
            return _json({"error": "no longer a dead letter"}, 409)
        log.info("web_desk.dead_letter", action=action, inbox=item_id, agent=actor)
        return _json({"ok": True, "id": item_id, "action": action})

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
            await response.write(b"retry: 2000\ndata: {\"type\": \"hello\"}\n\n")
            while not self._closing:
                try:
                    item = await asyncio.wait_for(queue.get(), timeout=KEEPALIVE_SECONDS)
                except TimeoutError:
                    await response.write(b": keepalive\n\n")
                    continue
                if item is None:
                    break
                await response.write(f"data: {json.dumps(item)}\n\n".encode())
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            self._streams.pop(queue, None)
        return response

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

    # -- JSON shapes -----------------------------------------------------------------------
    def _agent_name(self, agent_id: str | None) -> str | None:
        if not agent_id:
            return None
        if agent_id.startswith(AGENT_PREFIX) and agent_id[len(AGENT_PREFIX):] in self.agents:
            return self.agents[agent_id[len(AGENT_PREFIX):]].name
        return agent_id

    def _conversation_json(self, conversation: Conversation, contact: Contact | None) -> dict[str, Any]:
        identity = contact.reply_identity() if contact else None
        return {
            "id": conversation.id, "bot": conversation.bot, "status": conversation.status.value,
            "assigned_agent": conversation.assigned_agent,
            "assigned_name": self._agent_name(conversation.assigned_agent),
            "customer": customer_name(contact, conversation.language or self.actions.language(conversation)),
            "channel": identity.channel if identity else None,
            "channels": sorted({i.channel for i in contact.identities}) if contact else [],
            "language": self.actions.language(conversation), "reason": conversation.handoff_reason,
        }

    def _entry_json(self, entry: QueueEntry, summary: HandoffSummary, now: datetime) -> dict[str, Any]:
        data = self._conversation_json(entry.conversation, entry.contact)
        data["since"] = entry.since.isoformat() if entry.since else None
        data["last_text"] = entry.last_text
        facts = self._facts(summary, entry.since, now)
        data.update({k: facts[k] for k in ("intent", "trigger_text", "sentiment", "waited_seconds", "priority",
                                           "priority_label", "open_now", "back_at")})
        return data

    @staticmethod
    def _facts(summary: HandoffSummary, since: datetime | None, now: datetime) -> dict[str, Any]:
        """Wait and priority: the wait of a handoff queued out of hours counts from the opening."""
        start = since or summary.since
        if start is not None and summary.back_at is not None and summary.back_at > start:
            start = summary.back_at
        waited = max(0.0, (now - start).total_seconds()) if start is not None else 0.0
        if not summary.open_now and summary.back_at is None and summary.conversation.status is ConversationStatus.WAITING:
            waited = 0.0  # closed with no known opening: nobody could have answered yet
        score = priority(summary.sentiment, waited)
        return {"intent": summary.intent, "trigger_text": summary.trigger_text, "topic": summary.topic,
                "sentiment": summary.sentiment, "waited_seconds": round(waited), "priority": score,
                "priority_label": priority_label(score), "open_now": summary.open_now,
                "since": summary.since.isoformat() if summary.since else None,
                "back_at": summary.back_at.isoformat() if summary.back_at else None}

    def _summary_json(self, summary: HandoffSummary) -> dict[str, Any]:
        return {
            **self._facts(summary, None, self.actions.clock()),
            "customer": summary.customer,
            "channel": summary.channel,
            "language": summary.conversation.language or self.actions.language(summary.conversation),
            "reason": summary.reason,
            "slots": {_SLOT_LABELS.get(k, k): _short(v) for k, v in summary.slots.items()
                      if v not in (None, "", []) and k not in _HIDDEN_SLOTS},
            "sentiment": summary.sentiment,
            "previous_agent": self._agent_name(summary.previous_agent),
            "last_messages": [{"type": e.type, "text": e.data.get("text"), "channel": e.channel}
                              for e in summary.last_messages],
        }

    def _event_json(self, event: Event) -> dict[str, Any] | None:
        data = event.data
        base = {"seq": event.seq, "channel": event.channel, "ts": event.timestamp.isoformat()}
        if event.type == "user":
            return {**base, "role": "customer", "author": None, "text": data.get("text") or "",
                    "attachments": [a for a in data.get("attachments") or [] if isinstance(a, dict)]}
        if event.type == "bot":
            meta = data.get("metadata") or {}
            role = meta.get("author", "bot")
            buttons = [b.get("title") for b in (data.get("data") or {}).get("buttons") or []]
            return {**base, "role": role if role in ("agent", "system") else "bot",
                    "author": meta.get("author_name"), "text": data.get("text") or "", "buttons": buttons}
        if event.type == "note":
            return {**base, "role": "note", "author": data.get("agent_name"), "text": data.get("text") or ""}
        if event.type == "status" and str(data.get("action", "")).startswith("transfer"):
            text = (f"transferred to {data.get('to_name') or data.get('to_agent')} by {data.get('agent_name')}"
                    if data.get("to_agent") else f"put back in the queue by {data.get('agent_name')}")
            return {**base, "role": "event", "author": None, "text": text}
        if event.type == "status":
            who = data.get("agent_name") or ("customer" if "customer" in str(data.get("action")) else None)
            text = f"status: {data.get('status')}" + (f" ({data.get('action')}" + (f" by {who}" if who else "")
                                                       + ")")
            return {**base, "role": "event", "author": None, "text": text}
        if event.type == "handoff":
            if data.get("reason"):
                text = f"handed off: {data['reason']}" + (f" ({data['detail']})" if data.get("detail") else "")
                if not data.get("open", True):
                    text += " — queued outside business hours"
            elif data.get("action") == "reping":
                text = f"re-ping {data.get('count')}: still unclaimed"
            elif data.get("action") == "customer_wish":
                text = f"customer wish: {data.get('wish')}"
            else:
                return None
            return {**base, "role": "event", "author": None, "text": text}
        if event.type == "csat":
            return {**base, "role": "event", "author": None, "text": f"customer rating: {data.get('score')}/5"}
        if event.type == "delivery" and data.get("status") in ("failed", "template"):
            text = ("delivery failed: " + str(data.get("error") or "")) if data.get("status") == "failed" else \
                "WhatsApp window closed: a template was sent instead"
            return {**base, "role": "event", "author": None, "text": text}
        return None


def _search_query(params: Mapping[str, str]) -> SearchQuery:
    """The history filters from the query string; ValueError says which one is wrong."""
    def day(key: str) -> date | None:
        raw = params.get(key, "").strip()
        if not raw:
            return None
        try:
            return date.fromisoformat(raw)
        except ValueError as exc:
            raise ValueError(f"'{key}' must be a date like 2026-12-02") from exc

    rating_raw = params.get("rating", "").strip()
    if rating_raw and (not rating_raw.isdigit() or not 1 <= int(rating_raw) <= 5):
        raise ValueError("'rating' must be 1-5")
    return SearchQuery(text=params.get("text", "").strip()[:200], agent=params.get("agent", "").strip()[:100],
                       channel=params.get("channel", "").strip()[:40],
                       rating=int(rating_raw) if rating_raw else None, since=day("since"), until=day("until"))


def _agent_json(agent: WebAgent) -> dict[str, Any]:
    return {"id": agent.id, "name": agent.name, "bots": list(agent.bots)}


def _short(value: Any) -> str:
    text = ", ".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)
    return text if len(text) <= 200 else text[:199] + "…"


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers={"Cache-Control": "no-store", **(headers or {})})


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text=json.dumps({"error": "send application/json"}),
                                           content_type="application/json")
    try:
        body = await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(text=json.dumps({"error": "invalid JSON"}), content_type="application/json") from exc
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text=json.dumps({"error": "expected a JSON object"}), content_type="application/json")
    return body


_CACHE: dict[str, str] = {}


def _static(name: str) -> str:
    if name not in _CACHE:
        _CACHE[name] = resources.files("core").joinpath("web", "static", name).read_text("utf-8")
    return _CACHE[name]
