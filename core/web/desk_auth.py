"""The web desk's sessions: argon2 logins rate-limited per address and agent, signed
session cookies kept in the store, the CSRF header and same-origin check on writes."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Callable

import structlog
from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from core.desk import NOTE_PREFIX
from core.desk_config import WebAgent
from core.store.base import Store
from core.web.desk_http import (
    AGENT_PREFIX,
    COOKIE,
    CSRF_HEADER,
    agent_json,
    json_body,
    json_response,
)

log = structlog.get_logger(__name__)


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



class DeskAuth:
    """Sessions and agent checks; `core.web.desk.WebDesk` sets the attributes declared here."""

    agents: dict[str, WebAgent]
    store: Store
    limiter: LoginLimiter
    session_seconds: float
    _secret: bytes
    _hasher: PasswordHasher
    _dummy_hash: str | None

    def _sign(self, sid: str) -> str:
        return hmac.new(self._secret, sid.encode(), hashlib.sha256).hexdigest()

    async def _agent(self, request: web.Request) -> WebAgent | None:
        cookie = request.cookies.get(COOKIE, "")
        sid, _, signature = cookie.partition(".")
        if not sid or not hmac.compare_digest(signature, self._sign(sid)):
            return None
        session = await self.store.kv_get(f"desk:session:{sid}")
        if not isinstance(session, dict) or session.get("expires", 0) < time.time():
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
            return json_response({"error": f"missing {CSRF_HEADER} header"}, 403)
        body = await json_body(request)
        agent_id, password = body.get("agent"), body.get("password")
        if not isinstance(agent_id, str) or not isinstance(password, str) or not agent_id or len(password) > 1024:
            return json_response({"error": "agent and password are required"}, 400)
        client = f"ip:{request.remote or 'unknown'}"
        account = f"agent:{agent_id[:100]}"
        wait = self.limiter.retry_after(client, account)
        if wait > 0:
            log.warning("web_desk.login_limited", agent=agent_id[:100])
            return json_response({"error": "too many failed logins; try again later"}, 429,
                         headers={"Retry-After": str(int(wait) + 1)})
        agent = self.agents.get(agent_id)
        ok = await asyncio.to_thread(self._verify, agent.password_hash if agent else self._dummy(), password)
        if agent is None or not ok:
            self.limiter.failed(client, account)
            log.info("web_desk.login_failed", agent=agent_id[:100])
            return json_response({"error": "wrong agent or password"}, 401)
        self.limiter.succeeded(account)
        sid = secrets.token_urlsafe(24)
        await self.store.kv_set(f"desk:session:{sid}", {"agent": agent.id, "expires": time.time()
                                                        + self.session_seconds}, ttl_seconds=self.session_seconds)
        response = json_response({"agent": agent_json(agent)})
        response.set_cookie(COOKIE, f"{sid}.{self._sign(sid)}", max_age=int(self.session_seconds), path="/desk",
                            httponly=True, samesite="Strict", secure=request.secure)
        log.info("web_desk.login", agent=agent.id)
        return response

    async def _logout(self, request: web.Request) -> web.StreamResponse:
        await self._require(request, writes=True)
        sid = request.cookies.get(COOKIE, "").partition(".")[0]
        await self.store.kv_delete(f"desk:session:{sid}")
        response = json_response({"ok": True})
        response.del_cookie(COOKIE, path="/desk")
        return response

    async def _me(self, request: web.Request) -> web.StreamResponse:
        agent = await self._require(request)
        return json_response({"agent": agent_json(agent), "note_prefix": NOTE_PREFIX})

    # -- reading -----------------------------------------------------------------------
    def _bots(self, agent: WebAgent) -> list[str] | None:
        return list(agent.bots) if agent.bots else None

    def _may_serve(self, agent: WebAgent, bot: str) -> bool:
        return not agent.bots or bot in agent.bots
