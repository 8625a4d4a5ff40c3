"""A local fake of the WhatsApp Cloud API (Graph), answering like the real one.

Usage::

    async with FakeWhatsAppAPI(access_token="EAAG...", phone_number_id="1065") as api:
        adapter config: api_base=api.url, api_version=api.version
        api.fail_next(1, code=130429)                    # scripted Graph error
        api.close_window("491701234567")                 # free-form → 131047
        assert api.messages()[0]["text"]["body"] == "..."

    # inbound side: sign and POST a webhook like Meta does
    status = await post_webhook(url, text_webhook("491701234567", "hi"), app_secret="s3cret")

``POST /{version}/{phone_number_id}/messages`` checks the Bearer token (Graph error
190 otherwise), validates the body the way the Cloud API does (reply buttons ≤ 3,
list rows ≤ 10, title lengths), answers ``{"messaging_product","contacts","messages":[{"id":wamid}]}``,
and read receipts (``status: read``) with ``{"success": true}``. Media: ``POST
/{version}/{phone_number_id}/media`` (multipart ``file``, ``type``, ``messaging_product``) answers
``{"id"}`` and keeps the bytes (`media`); a message may then send it by ``id`` (an unknown id is
refused); ``GET /{version}/{media_id}`` answers the media URL, mime type, sha256 and size, and
that URL serves the bytes with the access token only (customers' media: `add_media`). Every
request is recorded.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Self

import aiohttp
from aiohttp import web

from tests.fakes.scripting import FailureScript

__all__ = [
    "FakeWhatsAppAPI",
    "GraphCall",
    "post_webhook",
    "sign",
    "status_webhook",
    "text_webhook",
    "webhook",
]

_ids = itertools.count(1)

# code -> (HTTP status, message, type, is_transient)
GRAPH_ERRORS: dict[int, tuple[int, str, str, bool]] = {
    1: (500, "An unknown error occurred", "OAuthException", True),
    2: (503, "Service temporarily unavailable", "OAuthException", True),
    4: (400, "(#4) Application request limit reached", "OAuthException", False),
    100: (400, "(#100) Invalid parameter", "OAuthException", False),
    190: (401, "Invalid OAuth access token - Cannot parse access token", "OAuthException", False),
    80007: (400, "(#80007) Rate limit issues", "OAuthException", False),
    130429: (429, "(#130429) Rate limit hit", "OAuthException", False),
    131000: (500, "(#131000) Something went wrong", "OAuthException", True),
    131009: (400, "(#131009) Parameter value is not valid", "OAuthException", False),
    131026: (400, "(#131026) Message Undeliverable", "OAuthException", False),
    131047: (400, "(#131047) Re-engagement message", "OAuthException", False),
    131051: (400, "(#131051) Unsupported message type", "OAuthException", False),
    131056: (400, "(#131056) (Business Account, Consumer Account) pair rate limit hit", "OAuthException", False),
}
GRAPH_DETAILS = {
    130429: "Message failed to send because there were too many messages sent from this phone number "
            "in a short period of time",
    131047: "Message failed to send because more than 24 hours have passed since the customer last "
            "replied to this number.",
    131056: "Message failed to send because there were too many messages sent from this phone number "
            "to the same phone number in a short period of time.",
}


def graph_error_body(code: int, *, message: str | None = None, details: str | None = None,
                     subcode: int | None = None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of a Graph error exactly as the Cloud API shapes it."""
    status, default_message, kind, transient = GRAPH_ERRORS.get(code, (400, f"(#{code}) Error", "OAuthException", False))
    error: dict[str, Any] = {"message": message or default_message, "type": kind, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    if code not in (190, 1, 2):
        error["error_data"] = {"messaging_product": "whatsapp",
                               "details": details or GRAPH_DETAILS.get(code, message or default_message)}
    if transient:
        error["is_transient"] = True
    error["fbtrace_id"] = base64.urlsafe_b64encode(hashlib.sha1(str(next(_ids)).encode()).digest()[:12]).decode()
    return status, {"error": error}


@dataclass(frozen=True, slots=True)
class GraphCall:
    """One request the fake received."""

    method: str
    path: str
    body: dict[str, Any]
    authorization: str | None
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class _Failure:
    code: int | None  # Graph error code; None = hang (client times out)
    status: int | None


def sign(body: bytes, app_secret: str) -> dict[str, str]:
    """The ``X-Hub-Signature-256`` header Meta sends for ``body``."""
    digest = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


def webhook(value: dict[str, Any], *, phone_number_id: str = "106540352242922",
            display_phone_number: str = "15550783881") -> dict[str, Any]:
    """Wrap a ``value`` (messages/statuses/contacts) in Meta's webhook envelope."""
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": display_phone_number, "phone_number_id": phone_number_id},
             **value}
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "419561257915477", "changes": [{"value": value, "field": "messages"}]}]}


def text_webhook(wa_id: str, text: str, *, name: str = "Anna", wamid: str | None = None,
                 phone_number_id: str = "106540352242922", timestamp: int | None = None) -> dict[str, Any]:
    """A text-message webhook from ``wa_id``."""
    wamid = wamid or f"wamid.IN{next(_ids):012d}"
    return webhook({
        "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
        "messages": [{"from": wa_id, "id": wamid, "timestamp": str(timestamp or int(time.time())),
                      "type": "text", "text": {"body": text}}],
    }, phone_number_id=phone_number_id)


def status_webhook(wamid: str, status: str, *, recipient: str = "491701234567",
                   phone_number_id: str = "106540352242922", error_code: int | None = None) -> dict[str, Any]:
    """A delivery-status webhook (sent / delivered / read / failed) for one of our messages."""
    item: dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(int(time.time())), "recipient_id": recipient}
    if error_code is not None:
        item["errors"] = [{"code": error_code, "title": GRAPH_ERRORS.get(error_code, (0, "Error"))[1]}]
    return webhook({"statuses": [item]}, phone_number_id=phone_number_id)


async def post_webhook(url: str, payload: dict[str, Any] | bytes, *, app_secret: str,
                       session: aiohttp.ClientSession | None = None) -> int:
    """Sign ``payload`` with ``app_secret`` and POST it like Meta does; returns the HTTP status."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    own = session is None
    session = session or aiohttp.ClientSession()
    try:
        async with session.post(url, data=body, headers=sign(body, app_secret)) as response:
            return response.status
    finally:
        if own:
            await session.close()


class FakeWhatsAppAPI:
    """An aiohttp server on 127.0.0.1 (free port) speaking the Cloud API messages endpoint."""

    def __init__(self, access_token: str = "EAAG-test-token", phone_number_id: str = "106540352242922", *,
                 version: str = "v21.0", max_records: int = 100_000, hang_seconds: float = 60.0) -> None:
        self.access_token = access_token
        self.phone_number_ids = {phone_number_id}
        self.phone_number_id = phone_number_id
        self.version = version
        self.requests: deque[GraphCall] = deque(maxlen=max_records)
        self.closed_windows: set[str] = set()
        self.undeliverable: set[str] = set()
        self.hang_seconds = hang_seconds
        self._failures: FailureScript[_Failure] = FailureScript()  # targets: "messages", "receipts"
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.media: dict[str, tuple[str, bytes, str | None]] = {}  # media id -> (mime type, bytes, filename)

    @property
    def url(self) -> str:
        """The ``api_base`` to configure."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Self:
        app = web.Application()
        app.router.add_post("/{version}/{phone_number_id}/messages", self._messages)
        app.router.add_post("/{version}/{phone_number_id}/media", self._upload)
        app.router.add_get("/{version}/{media_id}", self._media_info)
        app.router.add_get("/media-download/{media_id}", self._media_download)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- scripting -----------------------------------------------------------------
    def fail_next(self, n: int = 1, *, code: int | None = 130429, status: int | None = None,
                  target: str | None = None) -> None:
        """The next ``n`` calls answer Graph error ``code`` (None = hang until the client times out).

        ``target="messages"`` only counts message sends, ``"receipts"`` only read/typing calls.
        """
        self._failures.next_calls(n, _Failure(code, status), target)

    def fail_for(self, seconds: float, *, code: int | None = 131000, status: int | None = None,
                 target: str | None = None) -> None:
        """Every call (of ``target``) fails with ``code`` for ``seconds`` (None = hang)."""
        self._failures.for_seconds(seconds, _Failure(code, status), target)

    def clear_failures(self) -> None:
        self._failures.clear()

    def add_media(self, data: bytes, mime_type: str, filename: str | None = None) -> str:
        """A customer's media kept by WhatsApp (for a webhook's ``image.id``); returns its id."""
        media_id = str(1_000_000_000 + next(_ids))
        self.media[media_id] = (mime_type, data, filename)
        return media_id

    def uploaded(self) -> list[tuple[str, bytes, str | None]]:
        """(mime type, bytes, filename) of every media the business uploaded, oldest first."""
        return [self.media[c.body["id"]] for c in self.requests if c.path.endswith("/media") and "id" in c.body]

    def close_window(self, wa_id: str) -> None:
        """Free-form messages to ``wa_id`` now fail with 131047 (templates still go out)."""
        self.closed_windows.add(wa_id)

    def messages(self) -> list[dict[str, Any]]:
        """Bodies of every message send (read receipts excluded), oldest first."""
        return [c.body for c in self.requests if "to" in c.body]

    def receipts(self) -> list[dict[str, Any]]:
        """Bodies of every read-receipt / typing call."""
        return [c.body for c in self.requests if c.body.get("status") == "read"]

    def count(self) -> int:
        return len(self.requests)

    async def wait_for_messages(self, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.messages()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} message(s), got {len(self.messages())}")
            await asyncio.sleep(0.01)
        return self.messages()

    # -- server ----------------------------------------------------------------------
    @staticmethod
    def _error(code: int, status: int | None = None, **kwargs: Any) -> web.Response:
        default_status, body = graph_error_body(code, **kwargs)
        return web.json_response(body, status=status or default_status)

    async def _messages(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        auth = request.headers.get("Authorization")
        self.requests.append(GraphCall("POST", request.path, body if isinstance(body, dict) else {}, auth))
        if auth != f"Bearer {self.access_token}":
            return self._error(190)
        if request.match_info["phone_number_id"] not in self.phone_number_ids:
            pid = request.match_info["phone_number_id"]
            return web.json_response({"error": {
                "message": f"Unsupported post request. Object with ID '{pid}' does not exist, cannot be loaded "
                           "due to missing permissions, or does not support this operation.",
                "type": "GraphMethodException", "code": 100, "error_subcode": 33, "fbtrace_id": "AbCdEf"}},
                status=400)
        kind = "receipts" if isinstance(body, dict) and body.get("status") == "read" else "messages"
        failure = self._failures.take(kind)
        if failure is not None:
            if failure.code is None:
                await asyncio.sleep(self.hang_seconds)
                return self._error(2)
            return self._error(failure.code, failure.status)
        if not isinstance(body, dict):
            return self._error(100, message="(#100) The parameter messaging_product is required.")
        if body.get("messaging_product") != "whatsapp":
            return self._error(100, message="(#100) The parameter messaging_product is required.")
        if body.get("status") == "read":
            if not str(body.get("message_id", "")).startswith("wamid."):
                return self._error(100, message="(#100) Invalid parameter", details="message_id is invalid")
            return web.json_response({"success": True})
        to = body.get("to")
        if not isinstance(to, str) or not to:
            return self._error(100, message="(#100) The parameter to is required.")
        problem = self._validate(body)
        if problem is not None:
            return self._error(131009, details=problem)
        sent_media = body.get(str(body.get("type"))) if body.get("type") in ("image", "document") else None
        if isinstance(sent_media, dict) and sent_media.get("id") and str(sent_media["id"]) not in self.media:
            return self._error(131009, details=f"media id {sent_media['id']} is not a valid uploaded media")
        if to in self.undeliverable:
            return self._error(131026)
        if body.get("type") != "template" and to in self.closed_windows:
            return self._error(131047)
        wamid = "wamid." + base64.b64encode(f"HBgL{to}FQIAERgS{next(_ids):016X}".encode()).decode()
        message: dict[str, Any] = {"id": wamid}
        if body.get("type") == "template":
            message["message_status"] = "accepted"
        return web.json_response({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                                  "messages": [message]})

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.access_token}"

    async def _upload(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization")
        if not self._authorized(request):
            self.requests.append(GraphCall("POST", request.path, {}, auth))
            return self._error(190)
        if not request.content_type.startswith("multipart/"):
            self.requests.append(GraphCall("POST", request.path, {}, auth))
            return self._error(100, message="(#100) The parameter file is required.")
        form = await request.post()
        file = form.get("file")
        mime = form.get("type")
        if form.get("messaging_product") != "whatsapp" or not isinstance(file, web.FileField) \
                or not isinstance(mime, str):
            self.requests.append(GraphCall("POST", request.path, {}, auth))
            return self._error(100, message="(#100) The parameters messaging_product, file and type are required.")
        data = file.file.read()
        if mime not in ("image/jpeg", "image/png", "application/pdf", "image/webp", "image/gif", "text/plain",
                        "audio/ogg", "audio/mpeg", "video/mp4"):
            self.requests.append(GraphCall("POST", request.path, {"type": mime}, auth))
            return self._error(100, message="(#100) Param file must be a file with one of "
                               "the following types: audio/aac, audio/mp4, audio/mpeg, audio/amr, audio/ogg, "
                               "text/plain, application/pdf, image/jpeg, image/png, video/mp4, video/3gp")
        media_id = self.add_media(data, mime, file.filename)
        self.requests.append(GraphCall("POST", request.path, {"id": media_id, "type": mime}, auth))
        return web.json_response({"id": media_id})

    async def _media_info(self, request: web.Request) -> web.Response:
        self.requests.append(GraphCall("GET", request.path, {}, request.headers.get("Authorization")))
        if not self._authorized(request):
            return self._error(190)
        found = self.media.get(request.match_info["media_id"])
        if found is None:
            return self._error(100, message="(#100) Invalid parameter")
        mime, data, _name = found
        media_id = request.match_info["media_id"]
        return web.json_response({
            "messaging_product": "whatsapp", "url": f"{self.url}/media-download/{media_id}", "mime_type": mime,
            "sha256": hashlib.sha256(data).hexdigest(), "file_size": str(len(data)), "id": media_id})

    async def _media_download(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.Response(status=401, text="Unauthorized")
        found = self.media.get(request.match_info["media_id"])
        if found is None:
            return web.Response(status=404, text="Not found")
        return web.Response(body=found[1], content_type=found[0])

    @staticmethod
    def _validate(body: dict[str, Any]) -> str | None:
        kind = body.get("type", "text")
        if kind == "text":
            text = body.get("text", {}).get("body") if isinstance(body.get("text"), dict) else None
            if not isinstance(text, str) or not text.strip():
                return "text.body is required"
            if len(text) > 4096:
                return "text.body is too long (max 4096)"
            return None
        if kind == "interactive":
            inter = body.get("interactive") or {}
            text = (inter.get("body") or {}).get("text")
            if not isinstance(text, str) or not text or len(text) > 1024:
                return "interactive.body.text is required (max 1024 characters)"
            action = inter.get("action") or {}
            if inter.get("type") == "button":
                buttons = action.get("buttons") or []
                if not 1 <= len(buttons) <= 3:
                    return "interactive.action.buttons must have 1 to 3 buttons"
                for b in buttons:
                    reply = b.get("reply") or {}
                    if b.get("type") != "reply" or not reply.get("id") or not 1 <= len(reply.get("title", "")) <= 20:
                        return "button title must be 1 to 20 characters and id is required"
                return None
            if inter.get("type") == "list":
                sections = action.get("sections") or []
                rows = [r for s in sections for r in s.get("rows") or []]
                if not action.get("button") or len(action["button"]) > 20:
                    return "interactive.action.button is required (max 20 characters)"
                if not 1 <= len(rows) <= 10:
                    return "a list has 1 to 10 rows in total"
                if len(sections) > 1 and any(not s.get("title") for s in sections):
                    return "section title is required when there is more than one section"
                for r in rows:
                    if not r.get("id") or not 1 <= len(r.get("title", "")) <= 24 or len(r.get("description", "")) > 72:
                        return "row title must be 1 to 24 characters, description up to 72"
                return None
            return "interactive.type is not supported"
        if kind == "template":
            template = body.get("template") or {}
            if not template.get("name") or not (template.get("language") or {}).get("code"):
                return "template.name and template.language.code are required"
            return None
        if kind in ("image", "document", "video", "audio", "sticker"):
            media = body.get(kind) or {}
            if not (media.get("link") or media.get("id")):
                return f"{kind}.link or {kind}.id is required"
            return None
        return f"message type {kind} is not supported"
