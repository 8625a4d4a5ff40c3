"""A local fake of the Telegram Bot API, answering like the real one.

Usage::

    async with FakeTelegramAPI(token="123:ABC") as api:
        adapter config: api_base=api.url
        api.push_update(text_update(chat_id=42, text="hi"))   # for getUpdates
        api.fail_next(1, status=429, retry_after=3)           # scripted failure
        assert api.calls("sendMessage")[0]["text"] == "..."

Requests are form-encoded (what python-telegram-bot sends; non-string values are
JSON-encoded strings), JSON or multipart; every request is recorded as a `Call`.
Error bodies follow the Bot API: ``{"ok":false,"error_code":N,"description":...}``
plus ``parameters.retry_after`` on 429. Implemented methods: getMe, getWebhookInfo,
setWebhook, deleteWebhook, getUpdates (long poll, offset confirmation, 409 when a
webhook is set or another poller takes over), sendMessage, sendPhoto, sendDocument,
sendChatAction, answerCallbackQuery, getFile (files added with `add_file`, downloaded from
``/file/bot<token>/<file_path>`` like Telegram serves them). Files uploaded with sendPhoto /
sendDocument (multipart) are kept in `uploads`. Unknown methods answer 404 like Telegram.
"""

from __future__ import annotations

import asyncio
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
    "Call",
    "FakeTelegramAPI",
    "callback_update",
    "photo_update",
    "text_update",
]

# Parameters Telegram takes as plain strings (everything else PTB sends JSON-encoded).
STRING_PARAMS = {
    "text", "caption", "callback_query_id", "action", "url", "secret_token", "parse_mode", "photo",
    "document", "emoji", "ip_address", "message_effect_id", "business_connection_id",
}
METHODS_WITH_MESSAGES = {"sendMessage", "sendPhoto", "sendDocument"}


@dataclass(frozen=True, slots=True)
class Upload:
    """A file the bot uploaded (multipart part of sendPhoto / sendDocument)."""

    method: str
    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Call:
    """One request the fake received."""

    method: str  # Bot API method, e.g. "sendMessage"
    params: dict[str, Any]
    token: str
    at: float = field(default_factory=time.monotonic)


def _error(code: int, description: str, **parameters: Any) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=code)


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def text_update(
    chat_id: int, text: str, *, user_id: int | None = None, update_id: int | None = None,
    first_name: str = "Anna", date: int | None = None, chat_type: str = "private",
) -> dict[str, Any]:
    """A realistic ``message`` update (``update_id`` is filled by `push_update` when None)."""
    user = user_id if user_id is not None else chat_id
    update: dict[str, Any] = {
        "message": {
            "message_id": next(_message_ids),
            "from": {"id": user, "is_bot": False, "first_name": first_name, "language_code": "en"},
            "chat": {"id": chat_id, "type": chat_type, "first_name": first_name},
            "date": date if date is not None else int(time.time()),
            "text": text,
        }
    }
    if text.startswith("/"):
        update["message"]["entities"] = [{"offset": 0, "length": len(text.split()[0]), "type": "bot_command"}]
    if update_id is not None:
        update["update_id"] = update_id
    return update


def photo_update(chat_id: int, file_id: str, *, caption: str | None = None, first_name: str = "Anna",
                 update_id: int | None = None) -> dict[str, Any]:
    """A private chat photo message, sizes as Telegram sends them (the largest last)."""
    message: dict[str, Any] = {
        "message_id": int(time.time() * 1000) % 10**9,
        "from": {"id": chat_id, "is_bot": False, "first_name": first_name, "language_code": "de"},
        "chat": {"id": chat_id, "first_name": first_name, "type": "private"},
        "date": int(time.time()),
        "photo": [
            {"file_id": file_id + "s", "file_unique_id": "AQADs", "file_size": 1200, "width": 90, "height": 67},
            {"file_id": file_id, "file_unique_id": "AQADm", "file_size": 20000, "width": 800, "height": 600},
        ],
    }
    if caption:
        message["caption"] = caption
    update: dict[str, Any] = {"message": message}
    if update_id is not None:
        update["update_id"] = update_id
    return update


def callback_update(chat_id: int, data: str, *, title: str = "Button", update_id: int | None = None) -> dict[str, Any]:
    """A ``callback_query`` update for a button press under one of the bot's messages."""
    update: dict[str, Any] = {
        "callback_query": {
            "id": f"cq{next(_message_ids)}",
            "from": {"id": chat_id, "is_bot": False, "first_name": "Anna"},
            "chat_instance": "-5362816736583112",
            "data": data,
            "message": {
                "message_id": next(_message_ids),
                "from": {"id": 7000000001, "is_bot": True, "first_name": "Bot", "username": "fake_bot"},
                "chat": {"id": chat_id, "type": "private", "first_name": "Anna"},
                "date": int(time.time()),
                "text": "Choose",
                "reply_markup": {"inline_keyboard": [[{"text": title, "callback_data": data}]]},
            },
        }
    }
    if update_id is not None:
        update["update_id"] = update_id
    return update


_message_ids = itertools.count(1000)


@dataclass(frozen=True)
class _Failure:
    status: int  # HTTP status; 0 = hang (the client times out)
    retry_after: int | None
    description: str | None


class FakeTelegramAPI:
    """An aiohttp server on 127.0.0.1 (free port) speaking the Bot API for one or more tokens."""

    def __init__(self, token: str = "123456:TEST-token", *, tokens: tuple[str, ...] = (),
                 max_records: int = 100_000, hang_seconds: float = 60.0) -> None:
        self.tokens = {token, *tokens}
        self.token = token
        self.requests: deque[Call] = deque(maxlen=max_records)
        self.updates: list[dict[str, Any]] = []
        self.webhook: dict[str, Any] | None = None
        self.blocked_chats: set[int | str] = set()
        self.missing_chats: set[int | str] = set()
        self.hang_seconds = hang_seconds
        self._failures: FailureScript[_Failure] = FailureScript()
        self._next_update_id = 100_000
        self._chat_message_ids: dict[Any, int] = {}
        self._arrived = asyncio.Event()
        self._poll_generation = 0
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.files: dict[str, tuple[str, bytes]] = {}  # file_id -> (file_path, bytes), for getFile
        self.uploads: list[Upload] = []  # files the bot sent as multipart

    # -- lifecycle -----------------------------------------------------------------
    @property
    def url(self) -> str:
        """The ``api_base`` to configure (``{url}/bot<token>/<method>`` is served)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """PTB's ``base_url`` form."""
        return f"{self.url}/bot"

    async def start(self) -> Self:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            self._arrived.set()
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- scripting -----------------------------------------------------------------
    def push_update(self, update: dict[str, Any]) -> int:
        """Queue an update for getUpdates; assigns ``update_id`` if missing and returns it."""
        if "update_id" not in update:
            update = {"update_id": self._next_update_id, **update}
        self._next_update_id = max(self._next_update_id, int(update["update_id"])) + 1
        self.updates.append(update)
        self.updates.sort(key=lambda u: u["update_id"])
        self._arrived.set()
        return int(update["update_id"])

    def add_file(self, data: bytes, file_path: str | None = None) -> str:
        """A file a customer sent (for getFile); returns its file_id."""
        file_id = f"AgACAgIAAxkBAAI{len(self.files):06d}"
        self.files[file_id] = (file_path or f"photos/file_{len(self.files)}.jpg", data)
        return file_id

    def fail_next(self, n: int = 1, *, status: int = 429, retry_after: int | None = None,
                  description: str | None = None, method: str | None = None, after: int = 0) -> None:
        """The next ``n`` calls (of ``method``, or any) answer ``status`` (0 = hang until timeout),
        once ``after`` such calls have succeeded.

        429 without ``retry_after`` uses 5 s. Descriptions default to Telegram's wording.
        """
        if status == 429 and retry_after is None:
            retry_after = 5
        self._failures.next_calls(n, _Failure(status, retry_after, description), method, after=after)

    def fail_for(self, seconds: float, *, status: int = 500, retry_after: int | None = None,
                 method: str | None = None) -> None:
        """Every call (of ``method``, or any) fails with ``status`` for ``seconds`` (0 = hang)."""
        self._failures.for_seconds(seconds, _Failure(status, retry_after, None), method)

    def clear_failures(self) -> None:
        self._failures.clear()

    def calls(self, method: str | None = None) -> list[dict[str, Any]]:
        """Parameters of every recorded call of ``method`` (all methods when None), oldest first."""
        return [c.params for c in self.requests if method is None or c.method == method]

    def count(self, method: str | None = None) -> int:
        return sum(1 for c in self.requests if method is None or c.method == method)

    async def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wait until ``count`` calls of ``method`` arrived; returns their parameters."""
        deadline = time.monotonic() + timeout
        while self.count(method) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} {method} call(s), got {self.count(method)}")
            await asyncio.sleep(0.01)
        return self.calls(method)

    async def deliver_webhook(self, update: dict[str, Any], *, session: aiohttp.ClientSession | None = None,
                              secret: str | None = None) -> int:
        """POST an update to the registered webhook (as Telegram does); returns the HTTP status."""
        if self.webhook is None:
            raise AssertionError("no webhook set")
        if "update_id" not in update:
            update = {"update_id": self._next_update_id, **update}
            self._next_update_id += 1
        secret = secret if secret is not None else self.webhook.get("secret_token")
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
        own = session is None
        session = session or aiohttp.ClientSession()
        try:
            async with session.post(self.webhook["url"], json=update, headers=headers) as response:
                return response.status
        finally:
            if own:
                await session.close()

    # -- server ----------------------------------------------------------------------
    async def _params(self, request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            data = await request.json() if request.can_read_body else {}
            return dict(data) if isinstance(data, dict) else {}
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):  # a multipart file part
                    params[key] = value.filename
                    self.uploads.append(Upload(request.match_info["method"], key, value.filename,
                                               value.content_type, value.file.read()))
                else:
                    params[key] = value if isinstance(value, str) else bytes(value).decode()
        for key, value in list(params.items()):
            if key not in STRING_PARAMS and isinstance(value, str):
                try:
                    params[key] = json.loads(value)
                except ValueError:
                    pass
        return params

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        token, method = request.match_info["token"], request.match_info["method"]
        params = await self._params(request)
        self.requests.append(Call(method, params, token))
        if token not in self.tokens:
            return _error(401, "Unauthorized")
        failure = self._failures.take(method)
        if failure is not None:
            if failure.status == 0:
                await asyncio.sleep(self.hang_seconds)
                return _error(500, "Internal Server Error")
            if failure.status == 429:
                wait = failure.retry_after or 5
                return _error(429, failure.description or f"Too Many Requests: retry after {wait}", retry_after=wait)
            return _error(failure.status, failure.description or _DEFAULT_DESCRIPTIONS.get(failure.status, "Error"))
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return _error(404, "Not Found")
        result: web.StreamResponse = await handler(params, token)
        return result

    def _bot_user(self, token: str) -> dict[str, Any]:
        bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 7000000001
        return {"id": bot_id, "is_bot": True, "first_name": "Fake Bot", "username": "fake_bot",
                "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}

    async def _m_getMe(self, params: dict[str, Any], token: str) -> web.Response:
        return _ok(self._bot_user(token))

    async def _m_setWebhook(self, params: dict[str, Any], token: str) -> web.Response:
        url = params.get("url", "")
        if not url:
            self.webhook = None
            return web.json_response({"ok": True, "result": True, "description": "Webhook was deleted"})
        secret = params.get("secret_token")
        if secret is not None and not (1 <= len(str(secret)) <= 256):
            return _error(400, "Bad Request: secret token contains unallowed characters")
        self.webhook = {"url": url, "secret_token": secret, "allowed_updates": params.get("allowed_updates")}
        self._poll_generation += 1
        self._arrived.set()
        return web.json_response({"ok": True, "result": True, "description": "Webhook was set"})

    async def _m_deleteWebhook(self, params: dict[str, Any], token: str) -> web.Response:
        existed = self.webhook is not None
        self.webhook = None
        if params.get("drop_pending_updates") is True:
            self.updates.clear()
        return web.json_response({"ok": True, "result": True,
                                  "description": "Webhook was deleted" if existed else "Webhook is already deleted"})

    async def _m_getWebhookInfo(self, params: dict[str, Any], token: str) -> web.Response:
        info = {"url": self.webhook["url"] if self.webhook else "", "has_custom_certificate": False,
                "pending_update_count": len(self.updates)}
        return _ok(info)

    async def _m_getUpdates(self, params: dict[str, Any], token: str) -> web.Response:
        if self.webhook is not None:
            return _error(409, "Conflict: can't use getUpdates method while webhook is active; "
                               "use deleteWebhook to delete the webhook first")
        offset = int(params.get("offset") or 0)
        timeout = max(0.0, min(float(params.get("timeout") or 0), 50.0))
        limit = max(1, min(int(params.get("limit") or 100), 100))
        if offset > 0:  # confirms every update before offset
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        elif offset < 0:
            self.updates = self.updates[offset:]
        self._poll_generation += 1
        generation = self._poll_generation
        self._arrived.set()  # wakes an earlier long poll, which then answers 409
        deadline = time.monotonic() + timeout
        while not self.updates:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                break
            if self._poll_generation != generation or self._runner is None:
                if self.webhook is not None:
                    return _error(409, "Conflict: can't use getUpdates method while webhook is active; "
                                       "use deleteWebhook to delete the webhook first")
                return _error(409, "Conflict: terminated by other getUpdates request; "
                                   "make sure that only one bot instance is running")
        if self._poll_generation != generation:
            return _error(409, "Conflict: terminated by other getUpdates request; "
                               "make sure that only one bot instance is running")
        return _ok(self.updates[:limit])

    def _chat_error(self, chat_id: Any) -> web.Response | None:
        if chat_id in (None, ""):
            return _error(400, "Bad Request: chat_id is empty")
        if chat_id in self.missing_chats:
            return _error(400, "Bad Request: chat not found")
        if chat_id in self.blocked_chats:
            return _error(403, "Forbidden: bot was blocked by the user")
        return None

    def _message(self, params: dict[str, Any], token: str, **content: Any) -> dict[str, Any]:
        chat_id = params["chat_id"]
        self._chat_message_ids[chat_id] = self._chat_message_ids.get(chat_id, 0) + 1
        message: dict[str, Any] = {
            "message_id": self._chat_message_ids[chat_id],
            "from": self._bot_user(token),
            "chat": {"id": chat_id, "type": "private" if isinstance(chat_id, int) and chat_id > 0 else "supergroup"},
            "date": int(time.time()),
            **content,
        }
        markup = params.get("reply_markup")
        if markup is not None:
            message["reply_markup"] = markup
        return message

    def _markup_error(self, params: dict[str, Any]) -> web.Response | None:
        markup = params.get("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            return _error(400, "Bad Request: can't parse reply keyboard markup JSON object")
        for row in markup.get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not (1 <= len(str(data).encode()) <= 64):
                    return _error(400, "Bad Request: BUTTON_DATA_INVALID")
                if not button.get("text"):
                    return _error(400, "Bad Request: text buttons are unallowed in the inline keyboard")
        return None

    async def _m_sendMessage(self, params: dict[str, Any], token: str) -> web.Response:
        problem = self._chat_error(params.get("chat_id")) or self._markup_error(params)
        if problem is not None:
            return problem
        text = params.get("text", "")
        if not str(text).strip():
            return _error(400, "Bad Request: message text is empty")
        if len(str(text)) > 4096:
            return _error(400, "Bad Request: message is too long")
        return _ok(self._message(params, token, text=str(text)))

    async def _send_media(self, kind: str, params: dict[str, Any], token: str) -> web.Response:
        problem = self._chat_error(params.get("chat_id")) or self._markup_error(params)
        if problem is not None:
            return problem
        source = params.get(kind)
        if not source:
            return _error(400, f"Bad Request: there is no {kind} in the request")
        caption = params.get("caption")
        if caption is not None and len(str(caption)) > 1024:
            return _error(400, "Bad Request: message caption is too long")
        if kind == "photo":
            media: Any = [{"file_id": f"AgAC{abs(hash(source)) % 10**8}", "file_unique_id": "AQAD", "width": 1280,
                           "height": 720, "file_size": 1000}]
        else:
            media = {"file_id": f"BQAC{abs(hash(source)) % 10**8}", "file_unique_id": "AgAD", "file_name": "file"}
        content: dict[str, Any] = {kind: media}
        if caption:
            content["caption"] = caption
        return _ok(self._message(params, token, **content))

    async def _m_sendPhoto(self, params: dict[str, Any], token: str) -> web.Response:
        return await self._send_media("photo", params, token)

    async def _m_sendDocument(self, params: dict[str, Any], token: str) -> web.Response:
        return await self._send_media("document", params, token)

    async def _m_sendChatAction(self, params: dict[str, Any], token: str) -> web.Response:
        problem = self._chat_error(params.get("chat_id"))
        if problem is not None:
            return problem
        if params.get("action") not in {"typing", "upload_photo", "record_video", "upload_video", "record_voice",
                                         "upload_voice", "upload_document", "choose_sticker", "find_location",
                                         "record_video_note", "upload_video_note"}:
            return _error(400, "Bad Request: wrong parameter action in request")
        return _ok(True)

    async def _m_getFile(self, params: dict[str, Any], token: str) -> web.Response:
        found = self.files.get(str(params.get("file_id")))
        if found is None:
            return _error(400, "Bad Request: invalid file_id")
        path, data = found
        return _ok({"file_id": params["file_id"], "file_unique_id": "AQADfile", "file_size": len(data),
                    "file_path": path})

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] not in self.tokens:
            return web.Response(status=401, text="Unauthorized")
        found = next((data for path, data in self.files.values() if path == request.match_info["path"]), None)
        if found is None:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        return web.Response(body=found, content_type="application/octet-stream")

    async def _m_answerCallbackQuery(self, params: dict[str, Any], token: str) -> web.Response:
        if not params.get("callback_query_id"):
            return _error(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        return _ok(True)


_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request: chat not found",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
    500: "Internal Server Error",
    502: "Bad Gateway",
}
