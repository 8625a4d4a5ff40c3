"""The review page of the web desk: ``/desk/review`` for leads, and the flag route for every agent.

Agents sign in on ``/desk`` (the web desk's session cookie covers ``/desk/*``). Leads
(``role: lead``) and agents with ``review: true`` in ``desk.web.agents`` list and label the
review queue of the bots they serve and retrain; any agent who serves a bot may flag one of
its customer messages. State-changing requests need the desk's ``X-Desk-Request: 1`` header
and a same-origin ``Origin``, as every desk request.

API (JSON): ``GET /desk/api/review?bot=&status=open|labelled|out_of_scope|all`` (items, the
bot's intents, the last retrain's figures), ``POST /desk/api/review/items/{id}``
({intent, out_of_scope, holdout}), ``POST /desk/api/review/retrain`` ({bot}),
``POST /desk/api/review/flag`` ({conversation, seq}; seq null: the latest customer message).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from aiohttp import web

from core.errors import NotFound, SwitchboardError
from core.ports import Route
from core.review.service import ReviewError, ReviewService
from core.store.ports.conversations import ConversationStore
from core.store.ports.review import ReviewItem, ReviewStatus
from core.web.desk_http import (
    AGENT_PREFIX,
    CSRF_HEADER,
    SECURITY_HEADERS,
    json_body,
    json_response,
    static_text,
)

log = structlog.get_logger(__name__)


def _error(status: int, message: str) -> web.HTTPException:
    cls = {400: web.HTTPBadRequest, 401: web.HTTPUnauthorized, 403: web.HTTPForbidden, 404: web.HTTPNotFound,
           409: web.HTTPConflict}[status]
    return cls(text=json.dumps({"error": message}), content_type="application/json")


def item_json(item: ReviewItem) -> dict[str, Any]:
    return {"id": item.id, "bot": item.bot, "text": item.text, "reasons": list(item.reasons),
            "predicted_intent": item.predicted_intent, "confidence": item.confidence,
            "language": item.language, "status": item.status.value, "label": item.label,
            "holdout": item.holdout, "labelled_by": item.labelled_by, "created_at": item.created_at.isoformat(),
            "channel": item.detail.get("channel"), "handoff_reason": item.detail.get("handoff_reason"),
            "rating": item.detail.get("rating")}


class ReviewPage:
    """Routes of the review loop on the desk; ``login()`` is the web desk (None: no desk, 404s)."""

    def __init__(self, service: ReviewService, conversations: ConversationStore, login: Callable[[], Any],
                 agents: Sequence[Any]) -> None:
        self.service = service
        self.conversations = conversations
        self.login = login
        self.agents = {a.id: a for a in agents}

    def routes(self) -> Sequence[Route]:
        return (
            Route("GET", "/desk/review", self._page, name="review"),
            Route("GET", "/desk/review.js", self._asset),
            Route("GET", "/desk/review-flag.js", self._asset),
            Route("GET", "/desk/review.css", self._asset),
            Route("GET", "/desk/api/review", self._list),
            Route("POST", "/desk/api/review/flag", self._flag),
            Route("POST", "/desk/api/review/retrain", self._retrain),
            Route("POST", "/desk/api/review/items/{id}", self._label),
        )

    async def _page(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text=static_text("review.html"), content_type="text/html", headers=SECURITY_HEADERS)

    async def _asset(self, request: web.Request) -> web.StreamResponse:
        name = request.path.rsplit("/", 1)[-1]
        return web.Response(text=static_text(name), content_type="text/css" if name.endswith(".css") else "text/javascript",
                            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"})

    # -- who may do what -------------------------------------------------------------------
    def _desk(self) -> Any:
        desk = self.login()
        if desk is None:
            raise _error(404, "the web desk is not enabled")
        return desk

    @staticmethod
    def _writes(request: web.Request) -> None:
        if request.headers.get(CSRF_HEADER) != "1":
            raise _error(403, f"missing {CSRF_HEADER} header")
        origin = request.headers.get("Origin")
        if origin and origin.split("://", 1)[-1] != request.host:
            raise _error(403, "cross-origin request")

    async def _served(self, request: web.Request) -> tuple[str, list[str]]:
        """The signed-in agent (``web:<id>``) and the bots they serve; 401 when nobody is signed in."""
        desk = self._desk()
        agent, bots = None, []
        for bot in self.service.bots:
            found = await desk.authorize(request, bot)
            if found is not None:
                agent = found
                bots.append(bot)
        if agent is None:  # not signed in, or serving none of the bots
            raise _error(401, "log in on /desk first")
        return agent, bots

    def may_label(self, agent_id: str) -> bool:
        agent = self.agents.get(agent_id.removeprefix(AGENT_PREFIX))
        return agent is not None and (getattr(agent, "role", "agent") == "lead" or bool(getattr(agent, "review", False)))

    async def _lead(self, request: web.Request) -> tuple[str, list[str]]:
        self._writes(request)
        agent, bots = await self._served(request)
        if not self.may_label(agent):
            raise _error(403, "only leads (role: lead) or agents with review: true label the review queue")
        return agent, bots

    # -- handlers --------------------------------------------------------------------------
    async def _list(self, request: web.Request) -> web.StreamResponse:
        agent, bots = await self._served(request)
        bot = request.query.get("bot") or (bots[0] if bots else "")
        if bot not in bots:
            raise _error(404, "no such bot")
        raw = request.query.get("status", "open")
        try:
            status = None if raw == "all" else ReviewStatus(raw)
        except ValueError as exc:
            raise _error(400, "status is open, labelled, out_of_scope or all") from exc
        items = await self.service.queue(bot, status)
        return json_response({
            "bot": bot, "bots": bots, "status": raw, "can_label": self.may_label(agent),
            "intents": self.service.intents(bot), "items": [item_json(i) for i in items],
            "run": await self.service.last_run(bot),
        })

    async def _label(self, request: web.Request) -> web.StreamResponse:
        agent, bots = await self._lead(request)
        body = await json_body(request)
        intent = body.get("intent")
        if intent is not None and not isinstance(intent, str):
            raise _error(400, "'intent' must be an intent name or null")
        try:
            item = await self.service.label(request.match_info["id"], intent=intent or None,
                                            out_of_scope=bool(body.get("out_of_scope")),
                                            holdout=bool(body.get("holdout")), by=agent, bots=bots)
        except NotFound as exc:
            raise _error(404, str(exc)) from exc
        except ReviewError as exc:
            raise _error(400, str(exc)) from exc
        return json_response({"item": item_json(item)})

    async def _retrain(self, request: web.Request) -> web.StreamResponse:
        agent, bots = await self._lead(request)
        bot = (await json_body(request)).get("bot")
        if bot not in bots:
            raise _error(404, "no such bot")
        try:
            run = await self.service.retrain(str(bot), by=agent)
        except SwitchboardError as exc:
            log.warning("review.retrain_failed", bot=bot, error=str(exc))
            raise _error(409, str(exc)) from exc
        return json_response({"run": run})

    async def _flag(self, request: web.Request) -> web.StreamResponse:
        self._writes(request)
        agent, bots = await self._served(request)
        body = await json_body(request)
        conversation_id, seq = body.get("conversation"), body.get("seq")
        if not isinstance(conversation_id, str) or not (seq is None or isinstance(seq, int)):
            raise _error(400, "'conversation' (an id) and 'seq' (a number or null) are required")
        conversation = await self.conversations.get_conversation(conversation_id)
        if conversation is None or conversation.bot not in bots:
            raise _error(404, "no such conversation")
        try:
            item = await self.service.flag(conversation.bot, conversation.id, conversation.contact_id, seq=seq,
                                           by=agent)
        except ReviewError as exc:
            raise _error(400, str(exc)) from exc
        return json_response({"item": item_json(item)})
