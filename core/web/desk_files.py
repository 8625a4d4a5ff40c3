"""Attachments on the web desk: an agent's upload to the customer, and files in the transcript.

Routes (next to `core.web.desk`, same session cookie, same rules: JSON answers, every
state-changing request carries ``X-Desk-Request: 1`` and a same-origin ``Origin``; agents see
their own bots' conversations only):

- ``POST /desk/api/files/{conversation}``: the raw file as the body, ``X-File-Name`` and an
  optional ``X-Caption`` (both URI-encoded). Checked by `core.files.FileStore` (size, type by
  content: 413 / 415 with a message the desk shows), then sent like a reply
  (`HandoffService.agent_reply` with the file: through the outbox and the customer's platform's
  media API). A caption starting with ``!`` makes it an internal note: the file is kept on the
  transcript and never sent. 201 ``{"attachment", "note"}``.
- ``GET /desk/api/files/{conversation}/{seq}/{index}``: the ``index``-th file of the transcript
  event ``seq`` (a customer's photo from Telegram or WhatsApp, a web chat upload, an agent's
  file), fetched from its platform if need be; images inline, other types as a download.
- ``GET /desk/desk_files.js``: the desk's part that shows them and adds the upload button.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, Protocol
from urllib.parse import quote, unquote

import structlog
from aiohttp import web

from core.desk import is_note
from core.errors import SwitchboardError
from core.files import FileRefused, FileStore, StoredFile, attachment_of, human_size
from core.handoff.service import AgentNotAllowed, HandoffService
from core.ports import Route

log = structlog.get_logger(__name__)

CSRF_HEADER = "X-Desk-Request"
AGENT_PREFIX = "web:"


class Desk(Protocol):
    """What this module needs of `core.web.desk.WebDesk`."""

    agents: dict[str, Any]

    async def authorize(self, request: web.Request, bot: str) -> str | None: ...


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, headers={"Cache-Control": "no-store"})


def _ascii(name: str) -> str:
    return name.encode("ascii", "replace").decode("ascii").replace('"', "_")


def file_response(found: StoredFile) -> web.Response:
    """A file for the browser: images inline, everything else as a download; never run as a page."""
    inline = found.mime_type in ("image/png", "image/jpeg", "image/gif", "image/webp")
    disposition = "inline" if inline else "attachment"
    return web.Response(body=found.data, content_type=found.mime_type if inline else
                        (found.mime_type or "application/octet-stream"), headers={
        "Content-Disposition": f"{disposition}; filename=\"{_ascii(found.name)}\"; filename*=UTF-8''{quote(found.name)}",
        "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store",
        "Content-Security-Policy": "default-src 'none'; sandbox"})


class DeskFiles:
    """The web desk's attachment routes (mounted by `core.handoff.wiring` next to the desk's own)."""

    def __init__(self, desk: Desk, service: HandoffService, files: FileStore) -> None:
        self.desk = desk
        self.service = service
        self.files = files

    def routes(self) -> tuple[Route, ...]:
        return (
            Route("GET", "/desk/desk_files.js", self._script),
            Route("POST", "/desk/api/files/{id}", self.upload),
            Route("GET", "/desk/api/files/{id}/{seq}/{index}", self.open),
        )

    async def _script(self, request: web.Request) -> web.StreamResponse:
        text = resources.files("core").joinpath("web", "static", "desk_files.js").read_text("utf-8")
        return web.Response(text=text, content_type="text/javascript",
                            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"})

    async def _agent(self, request: web.Request, conversation_id: str) -> tuple[str, str, str]:
        """(agent id, agent name, bot) of a logged-in agent who may see this conversation."""
        conversation = await self.service.store.get_conversation(conversation_id)
        if conversation is None:
            raise web.HTTPNotFound(text=json.dumps({"error": "no such conversation"}), content_type="application/json")
        agent_id = await self.desk.authorize(request, conversation.bot)
        if agent_id is None:
            raise web.HTTPUnauthorized(text=json.dumps({"error": "log in first"}), content_type="application/json")
        agent = self.desk.agents.get(agent_id.removeprefix(AGENT_PREFIX))
        return agent_id, str(getattr(agent, "name", agent_id)), conversation.bot

    async def upload(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get(CSRF_HEADER) != "1":
            return _json({"error": f"missing {CSRF_HEADER} header"}, 403)
        origin = request.headers.get("Origin")
        if origin and origin.split("://", 1)[-1] != request.host:
            return _json({"error": "cross-origin request"}, 403)
        conversation_id = request.match_info["id"]
        agent_id, agent_name, _bot = await self._agent(request, conversation_id)
        limit = self.files.config.max_bytes
        name = unquote(request.headers.get("X-File-Name", ""))[:200] or None
        caption = unquote(request.headers.get("X-Caption", ""))[:1000]
        if request.content_length is not None and request.content_length > limit:
            return _json({"error": f"The file is {human_size(request.content_length)}; files up to "
                                   f"{human_size(limit)} can be sent to customers."}, 413)
        data = bytearray()
        async for chunk in request.content.iter_chunked(65536):
            data += chunk
            if len(data) > limit:
                return _json({"error": f"The file is over {human_size(limit)}; files up to that size can be "
                                       "sent to customers."}, 413)
        try:
            attachment = await self.files.put(bytes(data), name)
        except FileRefused as exc:
            log.info("web_desk.file_refused", conversation=conversation_id, agent=agent_id, size=len(data))
            return _json({"error": str(exc)}, 415)
        try:
            await self.service.agent_reply(conversation_id, agent_id, agent_name, caption, attachments=[attachment])
        except AgentNotAllowed as exc:
            return _json({"error": str(exc)}, 403)
        except SwitchboardError as exc:
            return _json({"error": str(exc)}, 409)
        note = is_note(caption)
        log.info("web_desk.file_sent", conversation=conversation_id, agent=agent_id, size=attachment.size,
                 mime=attachment.mime_type, note=note)
        return _json({"attachment": {"kind": attachment.kind, "name": attachment.name,
                                     "mime_type": attachment.mime_type, "size": attachment.size},
                      "note": note}, 201)

    async def open(self, request: web.Request) -> web.StreamResponse:
        conversation_id = request.match_info["id"]
        agent_id, _name, bot = await self._agent(request, conversation_id)
        try:
            seq, index = int(request.match_info["seq"]), int(request.match_info["index"])
        except ValueError:
            return _json({"error": "not found"}, 404)
        events = await self.service.store.transcript(conversation_id, after_seq=max(0, seq - 1), limit=1)
        event = events[0] if events and events[0].seq == seq else None
        items = event.data.get("attachments") if event is not None else None
        if not isinstance(items, list) or not 0 <= index < len(items) or not isinstance(items[index], dict):
            return _json({"error": "not found"}, 404)
        try:
            found = await self.files.customer_media(bot, event.channel or "", attachment_of(items[index])) \
                if event is not None else None
        except SwitchboardError as exc:
            log.warning("web_desk.file_unavailable", conversation=conversation_id, error=str(exc))
            return _json({"error": f"the file could not be fetched from the platform: {exc}"}, 502)
        if found is None:
            return _json({"error": "the file is not available (any more)"}, 404)
        log.info("web_desk.file_opened", conversation=conversation_id, agent=agent_id, seq=seq)
        return file_response(found)
