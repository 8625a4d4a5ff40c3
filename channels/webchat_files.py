"""Files customers upload in the web chat: type by content, kept in the store's key-value space.

Why the key-value store and not a directory: it is the one durable place every farm
process shares (SQLite file or MongoDB replica set), it needs no extra volume or path
configuration, and a backup of the store includes the files. The price is size: a file is
one value (base64), so uploads are capped well below MongoDB's 16 MB document limit.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, unquote

import structlog
from aiohttp import web

from channels.base import AdapterContext, read_body
from core import files
from core.errors import BadRequest, StoreUnavailable
from core.files import kind_of
from core.model import Attachment

log = structlog.get_logger(__name__)

# Magic bytes → (MIME type, kind as in `core.model.Attachment`). The name a browser sends is never trusted.
_SIGNATURES: tuple[tuple[bytes, int, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png", "image"),
    (b"\xff\xd8\xff", 0, "image/jpeg", "image"),
    (b"GIF87a", 0, "image/gif", "image"),
    (b"GIF89a", 0, "image/gif", "image"),
    (b"%PDF-", 0, "application/pdf", "document"),
)
SUPPORTED_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf")
MAX_UPLOAD_LIMIT = 10_000_000
MAX_ATTACHMENTS = 5
MAX_TRACKED_CLIENTS = 10_000
SESSION_HEADER = "X-Chat-Session"
SESSION_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")  # base64 of this stays below MongoDB's 16 MB document limit
FILE_ID_RE = re.compile(r"^f_[A-Za-z0-9_-]{22,64}$")


def sniff(data: bytes) -> str | None:
    """The MIME type the content proves (PNG, JPEG, GIF, WebP, PDF), or None."""
    for magic, offset, mime, _kind in _SIGNATURES:
        if data[offset:offset + len(magic)] == magic:
            return mime
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def safe_name(name: str | None, mime: str) -> str:
    """A display name without path parts or control characters; ``upload.<ext>`` when missing."""
    return files.safe_name(name, mime, stem="upload")


def _ascii(name: str) -> str:
    return name.encode("ascii", "replace").decode("ascii").replace('"', "_")


def new_file_id() -> str:
    return "f_" + secrets.token_urlsafe(18)


@dataclass(frozen=True, slots=True)
class StoredFile:
    """An upload as kept in the store: whose it is, what it is, and its bytes."""

    id: str
    session: str
    mime_type: str
    name: str
    size: int
    data: bytes

    @property
    def kind(self) -> str:
        return kind_of(self.mime_type)

    def to_value(self) -> dict[str, Any]:
        return {"session": self.session, "mime_type": self.mime_type, "name": self.name, "size": self.size,
                "data": base64.b64encode(self.data).decode("ascii")}

    @classmethod
    def from_value(cls, file_id: str, value: Any) -> StoredFile | None:
        if not isinstance(value, dict):
            return None
        try:
            return cls(file_id, str(value["session"]), str(value["mime_type"]), str(value["name"]),
                       int(value["size"]), base64.b64decode(value["data"]))
        except (KeyError, TypeError, ValueError):
            return None


def human_size(size: int) -> str:
    return f"{size / 1_000_000:g} MB" if size >= 1_000_000 else f"{size // 1000} kB"


class DeskAuth(Protocol):
    async def authorize(self, request: web.Request, bot: str) -> str | None: ...


class FileRoutes:
    """Upload (customer), thumbnail (the customer's own session) and download (desk agents only)."""

    def __init__(self, bot: str, context: AdapterContext, *, max_bytes: int, allowed_types: Sequence[str],
                 origin_allowed: Callable[[str, web.Request], bool], per_hour: int = 30) -> None:
        self.bot = bot
        self.per_hour = per_hour
        self._recent: OrderedDict[str, deque[float]] = OrderedDict()  # client address → upload times, newest last
        self.context = context
        self.max_bytes = max_bytes
        self.allowed_types = list(allowed_types)
        self.origin_allowed = origin_allowed
        self.desk: DeskAuth | None = None  # the web desk, once the handoff layer is installed

    def _allow(self, client: str) -> bool:
        """At most ``per_hour`` uploads per client address (the store is no free file host)."""
        now = time.monotonic()
        times = self._recent.pop(client, None) or deque()
        self._recent[client] = times
        while len(self._recent) > MAX_TRACKED_CLIENTS:
            self._recent.popitem(last=False)
        while times and times[0] <= now - 3600:
            times.popleft()
        if len(times) >= self.per_hour:
            return False
        times.append(now)
        return True

    def session_of(self, request: web.Request) -> str | None:
        session = request.headers.get(SESSION_HEADER, "")
        return session if SESSION_RE.match(session) else None

    async def upload(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin and not self.origin_allowed(origin, request):
            return web.json_response({"error": "origin not allowed"}, status=403)
        session = self.session_of(request)
        if session is None:
            return web.json_response({"error": f"missing or malformed {SESSION_HEADER} header"}, status=401)
        if not self._allow(request.remote or "unknown"):
            log.info("webchat.upload_rejected", bot=self.bot, reason="rate")
            return web.json_response({"error": "slow_down"}, status=429, headers={"Retry-After": "60"})
        try:
            data = await read_body(request, self.max_bytes)
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"error": "too_large", "max_bytes": self.max_bytes}, status=413)
        mime = sniff(data)
        if mime is None or mime not in self.allowed_types:
            log.info("webchat.upload_rejected", bot=self.bot, reason="type", size=len(data))
            return web.json_response({"error": "type", "allowed": self.allowed_types}, status=415)
        stored = StoredFile(new_file_id(), session, mime, safe_name(unquote(request.headers.get("X-File-Name", "")), mime),
                            len(data), data)
        try:
            await self.context.kv_set(f"file:{stored.id}", stored.to_value())
        except StoreUnavailable:
            return web.json_response({"error": "unavailable"}, status=503)
        log.info("webchat.uploaded", bot=self.bot, file=stored.id, mime=mime, size=stored.size)
        return web.json_response({"id": stored.id, "mime_type": mime, "name": stored.name, "size": stored.size,
                                  "kind": stored.kind}, status=201)

    async def stored(self, file_id: str) -> StoredFile | None:
        """An upload by id (None if unknown)."""
        return await self._file(file_id)

    async def copy_for(self, item: Attachment, session: str) -> Attachment:
        """An agent's file (kept by the core) as this customer's own upload, so the page shows it
        (thumbnail, download) with the session header like the customer's own files. Idempotent."""
        file_id = f"f_{item.file_id}"
        if await self._file(file_id) is None:
            kept = await self.context.read_file(str(item.file_id))
            if kept is None:
                raise BadRequest(f"file {item.file_id} is no longer kept")
            stored = StoredFile(file_id, session, kept.mime_type, kept.name, len(kept.data), kept.data)
            await self.context.kv_set(f"file:{file_id}", stored.to_value())
        return Attachment(kind=item.kind, file_id=file_id, mime_type=item.mime_type, name=item.name,
                          caption=item.caption, size=item.size)

    async def _file(self, file_id: str) -> StoredFile | None:
        if not FILE_ID_RE.match(file_id):
            return None
        return StoredFile.from_value(file_id, await self.context.kv_get(f"file:{file_id}"))

    @staticmethod
    def _file_response(stored: StoredFile) -> web.Response:
        disposition = "inline" if stored.kind == "image" else "attachment"
        return web.Response(body=stored.data, content_type=stored.mime_type, headers={
            "Content-Disposition": f"{disposition}; filename=\"{_ascii(stored.name)}\"; "
                                   f"filename*=UTF-8''{quote(stored.name)}", "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store", "Content-Security-Policy": "default-src 'none'; sandbox"})

    async def customer_file(self, request: web.Request) -> web.StreamResponse:
        """The customer's own upload (thumbnail); the session header proves whose it is."""
        session = self.session_of(request)
        stored = await self._file(request.match_info["file_id"])
        if stored is None or session is None or stored.session != session:
            return web.json_response({"error": "not found"}, status=404)
        return self._file_response(stored)

    async def agent_file(self, request: web.Request) -> web.StreamResponse:
        """An upload for an agent logged in to the web desk who may serve this bot."""
        agent = await self.desk.authorize(request, self.bot) if self.desk is not None else None
        if agent is None:
            return web.json_response({"error": "log in to the desk first"}, status=401)
        stored = await self._file(request.match_info["file_id"])
        if stored is None:
            return web.json_response({"error": "not found"}, status=404)
        log.info("webchat.file_opened", bot=self.bot, file=stored.id, agent=agent)
        return self._file_response(stored)

    async def attachments(self, frame: Mapping[str, Any], session: str) -> tuple[Attachment, ...]:
        ids = frame.get("attachments") or []
        if not isinstance(ids, list) or len(ids) > MAX_ATTACHMENTS:
            raise BadRequest(f"'attachments' must be a list of at most {MAX_ATTACHMENTS} upload ids")
        found: list[Attachment] = []
        for file_id in ids:
            stored = await self._file(file_id) if isinstance(file_id, str) else None
            if stored is None or stored.session != session:
                raise BadRequest("unknown attachment; upload it first")
            found.append(Attachment(kind=stored.kind, url=f"/desk/api/webchat/{self.bot}/files/{stored.id}",
                                    file_id=stored.id, mime_type=stored.mime_type, name=stored.name,
                                    size=stored.size))
        return tuple(found)
