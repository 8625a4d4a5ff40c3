"""Reveal one masked e-mail address or phone number on the web desk: an audited click.

Desks show customer text with e-mail addresses and phone numbers masked
(`core.privacy.masking.Masker.for_agents`). When an agent needs one (to call back, to find the
customer's account), the web desk's reveal button asks
``POST /desk/api/reveal/{conversation}/{seq}/{index}``: the ``index``-th contact detail in the
transcript event ``seq``, answered only to an agent logged in to the web desk who may serve the
conversation's bot, with the desk's CSRF header; every reveal is written to the audit log
(``reveal``: agent, conversation, event, kind — never the value). Card numbers, IBANs and
sensitive slots are never revealed: they are not kept in clear.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import structlog
from aiohttp import web

from core.ports import Route
from core.store.base import AuditEntry, Store

log = structlog.get_logger(__name__)

CSRF_HEADER = "X-Desk-Request"
_SCRIPT = Path(__file__).parent / "static" / "desk_reveal.js"
_NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


class DeskAuth(Protocol):
    async def authorize(self, request: web.Request, bot: str) -> str | None: ...


class RevealRoutes:
    """The reveal endpoint and the small script that adds reveal buttons to the web desk."""

    def __init__(self, store: Store, desk: DeskAuth, details: Callable[[str], list[str]]) -> None:
        self.store = store
        self.desk = desk
        self.details = details  # the contact details of a text, in masking order (core.privacy.masking)

    def routes(self) -> tuple[Route, ...]:
        return (Route("POST", "/desk/api/reveal/{conversation}/{seq}/{index}", self.reveal),
                Route("GET", "/desk/desk_reveal.js", self.script))

    async def script(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text=_SCRIPT.read_text(encoding="utf-8"), content_type="text/javascript",
                            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"})

    async def reveal(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get(CSRF_HEADER) != "1":
            return _error(403, f"missing {CSRF_HEADER} header")
        origin = request.headers.get("Origin")
        if origin and origin.split("://", 1)[-1] != request.host:
            return _error(403, "cross-origin request")
        try:
            seq, index = int(request.match_info["seq"]), int(request.match_info["index"])
        except ValueError:
            return _error(400, "seq and index are numbers")
        conversation = await self.store.get_conversation(request.match_info["conversation"])
        if conversation is None:
            return _error(404, "no such conversation")
        agent = await self.desk.authorize(request, conversation.bot)
        if agent is None:
            return _error(401, "log in to the desk as an agent of this bot first")
        events = await self.store.transcript(conversation.id, after_seq=seq - 1, limit=1) if seq > 0 else []
        event = events[0] if events and events[0].seq == seq else None
        text = event.data.get("text") if event is not None else None
        details = self.details(text) if isinstance(text, str) else []
        if not 0 <= index < len(details):
            return _error(404, "nothing to reveal there")
        value = details[index]
        kind = "email" if "@" in value else "phone"
        await self.store.audit(AuditEntry(actor=agent, action="reveal", target=conversation.id, bot=conversation.bot,
                                          detail={"seq": seq, "index": index, "kind": kind}))
        log.info("desk.revealed", conversation=conversation.id, agent=agent, seq=seq, kind=kind)
        return web.json_response({"value": value, "kind": kind}, headers=_NO_STORE)


def _error(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=json.dumps({"error": message}), content_type="application/json",
                        headers=_NO_STORE)
