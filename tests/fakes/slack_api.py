"""A local fake of the Slack Web API and Socket Mode, answering like the real ones.

Usage::

    async with FakeSlackAPI(users={"U0AGENTANNA": "Anna"}) as slack:
        SlackDeskConfig(api_base=slack.url, bot_token=slack.bot_token, ...)
        slack.rate_limit("chat.postMessage", times=1, retry_after=1)   # scripted 429
        envelope_id = await slack.push_event(message_event(...))      # Socket Mode
        await slack.wait_for_ack(envelope_id)
        assert slack.count("chat.postMessage") == 1

What slack-sdk 3.47 / slack-bolt 1.30 call: ``auth.test`` (form), ``chat.postMessage``,
``chat.update``, ``chat.postEphemeral`` (JSON), ``users.info``, ``usergroups.users.list``,
``conversations.replies``, ``conversations.info`` (GET query or form) and
``files.getUploadURLExternal`` / the upload URL / ``files.completeUploadExternal`` (slack-sdk's
``files_upload_v2``: the file then shows in the thread, see `uploaded`), ``files.info``, files
shared by agents (`share_file`: served at ``url_private`` / ``url_private_download`` only with
the bot token, else Slack's HTML login page), slash-command ``response_url`` posts (recorded
in `responses`), and ``apps.connections.open`` (with the ``xapp-`` token) which hands out
``ws://127.0.0.1:PORT/link``: a Socket Mode web socket that says ``hello``, carries the
envelopes pushed with `push_envelope` and records the client's acks. Every request is
recorded as a `Call`. Errors are Slack's: HTTP 200 with ``{"ok": false, "error": ...}``
(``invalid_auth``, ``not_authed``, ``channel_not_found``, ``user_not_found``,
``message_not_found``), HTTP 429 with ``Retry-After`` and ``{"ok":false,"error":"ratelimited"}``.

Messages are kept per channel (`messages`): ``chat.delete`` removes one (a thread parent with
replies left becomes a tombstone, as on Slack), ``chat.update`` edits one; with the bot token
both work only on the app's own messages (``cant_delete_message`` / ``cant_update_message``
otherwise), with ``admin_token`` (a workspace admin's user token) on any. `agent_says` keeps an
agent's thread reply as Slack would. ``down = True`` answers every call with HTTP 503.

Helpers build what Slack sends us: `message_event`, `file_share_event`, `event_callback`,
`FakeSlackAPI.command_payload` with `signed_command_request` (a slash command, form-encoded and
signed) or `FakeSlackAPI.push_command` (Socket Mode),
`block_actions_payload`, `signed_headers`, `signed_event_request`,
`signed_action_request` (X-Slack-Signature v0, X-Slack-Request-Timestamp), following
the fixtures in ``/work/shared/fixtures/platforms/slack/``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import WSMsgType, web

from tests.support.wait import eventually

__all__ = [
    "AGENT",
    "AGENTS_CHANNEL",
    "SIGNING_SECRET",
    "Call",
    "FakeSlackAPI",
    "block_actions_payload",
    "event_callback",
    "file_share_event",
    "message_event",
    "signed_action_request",
    "signed_command_request",
    "signed_event_request",
    "signed_headers",
]

TEAM_ID = "T0001AGENT"
# The fake's own identities, shared by every Slack test: the agents' channel, its first agent, the
# signing secret the tests configure the desk with (and sign their requests with).
AGENTS_CHANNEL = "C0AGENTS01"
AGENT = "U0AGENTANNA"
SIGNING_SECRET = "slack-signing-secret"
APP_ID = "A0SWITCHB"


@dataclass(frozen=True, slots=True)
class Call:
    """One Web API request the fake received."""

    method: str  # Web API method, e.g. "chat.postMessage"
    http_method: str  # GET / POST
    params: dict[str, Any]
    token: str | None
    headers: dict[str, str]
    status: int = 200
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Socket:
    ws: web.WebSocketResponse
    opened_at: float = field(default_factory=time.monotonic)


class FakeSlackAPI:
    """The fake server. Start with ``async with`` or `start`/`stop`; ``url`` is the api_base."""

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test-token",
        app_token: str = "xapp-1-test-token",
        team_id: str = TEAM_ID,
        bot_user_id: str = "U0BOTUSER",
        bot_id: str = "B0SWITCHB",
        channels: dict[str, str] | None = None,
        users: dict[str, str] | None = None,
        usergroups: dict[str, list[str]] | None = None,
        admin_token: str = "xoxp-admin-token",
    ) -> None:
        self.bot_token = bot_token
        # A workspace admin's user token: may delete and edit any message, as on Slack.
        self.admin_token = admin_token
        self.down = False  # True: every Web API call answers HTTP 503 (an outage)
        self.app_token = app_token
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.channels = channels if channels is not None else {AGENTS_CHANNEL: "support-agents", "C0RANDOM99": "random"}
        # user id -> display name (empty string: only real_name is set)
        self.users = users if users is not None else {AGENT: "Anna", "U0AGENTBEN": "Ben", "U0MARKETING": "Mia"}
        self.usergroups = usergroups if usergroups is not None else {}
        self.calls_log: list[Call] = []
        # channel -> ts -> message (top-level and replies; replies carry thread_ts)
        self.messages: dict[str, dict[str, dict[str, Any]]] = {}
        self.ephemerals: list[dict[str, Any]] = []
        self.views: list[dict[str, Any]] = []  # modals opened with views.open
        self.deleted: list[tuple[str, str]] = []  # (channel, ts) of chat.delete calls that succeeded
        self.acks: list[dict[str, Any]] = []
        self._rate_limits: dict[str, list[int]] = {}  # method -> [remaining, retry_after]
        self._errors: dict[str, list[str]] = {}  # method -> queued error codes
        self._sockets: list[_Socket] = []
        self._socket_connected = asyncio.Event()
        self._ack_waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ts = itertools.count(1)
        self._file_ids = itertools.count(1)
        self.files: dict[str, dict[str, Any]] = {}  # file id -> file object (agents' and uploaded)
        self.file_data: dict[str, bytes] = {}
        self._pending_uploads: dict[str, dict[str, Any]] = {}  # upload key -> {file_id, filename, length}
        self.responses: list[dict[str, Any]] = []  # what the app posted to slash commands' response_url
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/link", self._socket_mode)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/upload/v1/{key}", self._upload)
        app.router.add_get("/files-pri/{file}/{name}", self._file_download)
        app.router.add_get("/files-pri/{file}/download/{name}", self._file_download)
        app.router.add_post("/commands/{team}/{id}/{key}", self._command_response)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for sock in list(self._sockets):
            await sock.ws.close()
        self._sockets.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        """The ``api_base`` to configure (``http://127.0.0.1:PORT/api/``)."""
        return f"http://127.0.0.1:{self.port}/api/"

    # -- scripting and assertions ----------------------------------------------------
    def rate_limit(self, method: str, *, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with 429 and ``Retry-After``."""
        self._rate_limits[method] = [times, retry_after]

    def fail_next(self, method: str, error: str) -> None:
        """Answer the next call of ``method`` with ``{"ok": false, "error": error}``."""
        self._errors.setdefault(method, []).append(error)

    def calls(self, method: str | None = None) -> list[Call]:
        """Recorded calls (answered 200 or not), optionally of one method."""
        return [c for c in self.calls_log if method is None or c.method == method]

    def count(self, method: str) -> int:
        return len(self.calls(method))

    def counts(self) -> Counter[str]:
        """Number of requests per method, like slack-bolt's mock server's per-path counts."""
        return Counter(c.method for c in self.calls_log)

    def posted(self, channel: str | None = None, thread_ts: str | None = None) -> list[dict[str, Any]]:
        """Messages posted by the app, in order; ``thread_ts`` filters a thread's replies."""
        found = []
        for ch, msgs in self.messages.items():
            if channel is not None and ch != channel:
                continue
            for msg in msgs.values():
                if thread_ts is None or msg.get("thread_ts") == thread_ts:
                    found.append(msg)
        return sorted(found, key=lambda m: float(m["ts"]))

    def message(self, channel: str, ts: str) -> dict[str, Any]:
        return self.messages[channel][ts]

    async def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Wait until ``method`` was called (and answered) at least ``count`` times."""
        def done() -> list[Call]:
            answered = [c for c in self.calls(method) if c.status == 200]
            return answered if len(answered) >= count else []

        return await eventually(done, timeout=timeout,
                                message=lambda: f"{method} called {self.count(method)} times, expected {count}")

    # -- files -----------------------------------------------------------------------
    def _file_object(self, file_id: str, name: str, mimetype: str, size: int, user: str) -> dict[str, Any]:
        base = f"http://127.0.0.1:{self.port}/files-pri/{self.team_id}-{file_id}"
        pretty = {"image/png": "PNG", "image/jpeg": "JPEG", "application/pdf": "PDF"}.get(mimetype, "Binary")
        return {
            "id": file_id, "created": int(time.time()), "timestamp": int(time.time()), "name": name, "title": name,
            "mimetype": mimetype, "filetype": name.rsplit(".", 1)[-1].lower() if "." in name else "binary",
            "pretty_type": pretty, "user": user, "user_team": self.team_id, "editable": False, "size": size,
            "mode": "hosted", "is_external": False, "external_type": "", "is_public": False,
            "public_url_shared": False, "display_as_bot": False, "username": "",
            "url_private": f"{base}/{name}", "url_private_download": f"{base}/download/{name}",
            "permalink": f"https://nordhost-support.slack.com/files/{user}/{file_id}/{name}",
        }

    def share_file(self, data: bytes, name: str, mimetype: str, *, user: str = AGENT) -> dict[str, Any]:
        """A file an agent uploaded in Slack: its file object (as in a ``file_share`` event)."""
        file_id = f"F0{next(self._file_ids):09d}"
        self.files[file_id] = self._file_object(file_id, name, mimetype, len(data), user)
        self.file_data[file_id] = data
        return dict(self.files[file_id])

    def uploaded(self, channel: str | None = None, thread_ts: str | None = None) -> list[dict[str, Any]]:
        """Files the app uploaded (files_upload_v2) and shared, with their ``data``, oldest first."""
        found = []
        for file in self.files.values():
            for share in file.get("_shares", []):
                if (channel is None or share["channel"] == channel) and \
                        (thread_ts is None or share.get("thread_ts") == thread_ts):
                    found.append({**file, "data": self.file_data[file["id"]], **share})
        return found

    async def _upload(self, request: web.Request) -> web.Response:
        pending = self._pending_uploads.get(request.match_info["key"])
        if pending is None:
            return web.Response(status=404, text="upload URL unknown or expired")
        data = await request.read()
        if len(data) != pending["length"]:
            return web.Response(status=400, text="length mismatch")
        pending["data"] = data
        return web.Response(text=f"OK - {len(data)}")

    async def _file_download(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file"].rsplit("-", 1)[-1]
        if request.headers.get("Authorization") != f"Bearer {self.bot_token}" or file_id not in self.file_data:
            # Slack answers an unauthenticated file URL with its sign-in page, not an error status
            return web.Response(text="<!DOCTYPE html><html><body>Sign in to Slack</body></html>",
                                content_type="text/html")
        return web.Response(body=self.file_data[file_id], content_type=self.files[file_id]["mimetype"])

    # -- slash commands --------------------------------------------------------------
    def command_payload(self, text: str, *, user: str = AGENT, channel: str = AGENTS_CHANNEL,
                        command: str = "/switchboard") -> dict[str, str]:
        """The fields Slack posts for a slash command (as in slash_command.form.txt); its
        ``response_url`` points at this fake, which records what the app answers there."""
        return {
            "token": "XXYYZZ", "team_id": self.team_id, "team_domain": "nordhost-support", "channel_id": channel,
            "channel_name": self.channels.get(channel, "directmessage"), "user_id": user,
            "user_name": user.lower(), "command": command, "text": text, "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": f"http://127.0.0.1:{self.port}/commands/{self.team_id}/{next(self._ts)}/{uuid.uuid4().hex}",
            "trigger_id": f"{int(time.time())}.738474920.{uuid.uuid4().hex[:12]}",
        }

    async def push_command(self, payload: dict[str, str]) -> str:
        """A slash command over Socket Mode (a ``slash_commands`` envelope)."""
        return await self.push_envelope("slash_commands", dict(payload))

    async def _command_response(self, request: web.Request) -> web.Response:
        body = await request.json() if request.content_type == "application/json" else dict(await request.post())
        self.responses.append(dict(body))
        return web.Response(text="ok")

    async def wait_for_responses(self, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        await eventually(lambda: len(self.responses) >= count, timeout=timeout,
                         message=lambda: f"{len(self.responses)} slash-command responses, expected {count}")
        return self.responses

    # -- Socket Mode -----------------------------------------------------------------
    async def wait_for_socket(self, timeout: float = 5.0) -> None:
        await asyncio.wait_for(self._socket_connected.wait(), timeout)

    async def push_envelope(
        self, type_: str, payload: dict[str, Any], *, envelope_id: str | None = None,
        retry_attempt: int = 0, retry_reason: str = "",
    ) -> str:
        """Send one envelope (``events_api``, ``interactive``, ``slash_commands``) to the app."""
        await self.wait_for_socket()
        envelope_id = envelope_id or str(uuid.uuid4())
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": type_,
            "accepts_response_payload": type_ != "events_api",
        }
        if type_ == "events_api":
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = retry_reason
        self._ack_waiters.setdefault(envelope_id, asyncio.get_running_loop().create_future())
        for sock in list(self._sockets):
            await sock.ws.send_str(json.dumps(envelope))
        return envelope_id

    async def push_event(self, body: dict[str, Any], **kwargs: Any) -> str:
        """Push an ``event_callback`` body as an ``events_api`` envelope."""
        return await self.push_envelope("events_api", body, **kwargs)

    async def push_action(self, payload: dict[str, Any]) -> str:
        """Push a ``block_actions`` payload as an ``interactive`` envelope."""
        return await self.push_envelope("interactive", payload)

    async def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any]:
        future = self._ack_waiters.setdefault(envelope_id, asyncio.get_running_loop().create_future())
        return await asyncio.wait_for(asyncio.shield(future), timeout)

    async def disconnect_sockets(self) -> None:
        """Ask connected clients to reconnect, as Slack does before a host change."""
        for sock in list(self._sockets):
            await sock.ws.send_str(json.dumps({"type": "disconnect", "reason": "refresh_requested"}))

    async def _socket_mode(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        sock = _Socket(ws)
        self._sockets.append(sock)
        await ws.send_str(json.dumps({
            "type": "hello", "num_connections": len(self._sockets),
            "debug_info": {"host": "applink-fake", "approximate_connection_time": 18060},
            "connection_info": {"app_id": APP_ID},
        }))
        self._socket_connected.set()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                envelope_id = data.get("envelope_id")
                if envelope_id:
                    self.acks.append(data)
                    future = self._ack_waiters.setdefault(envelope_id, asyncio.get_running_loop().create_future())
                    if not future.done():
                        future.set_result(data)
        finally:
            if sock in self._sockets:
                self._sockets.remove(sock)
            if not self._sockets:
                self._socket_connected.clear()
        return ws

    # -- Web API ---------------------------------------------------------------------
    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    params.update(body)
            else:
                params.update(await request.post())
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else params.get("token")
        response = self._answer(method, request.method, params, token)
        self.calls_log.append(Call(
            method=method, http_method=request.method, params=params, token=token,
            headers=dict(request.headers), status=response.status,
        ))
        return response

    def _answer(self, method: str, http_method: str, params: dict[str, Any], token: str | None) -> web.Response:
        limit = self._rate_limits.get(method)
        if limit and limit[0] > 0:
            limit[0] -= 1
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": str(limit[1])},
            )
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"}, status=404)
        if not token:
            return _error("not_authed")
        if self.down:
            return web.json_response({"ok": False, "error": "service_unavailable"}, status=503)
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        admin = method in _ADMIN_METHODS and token == self.admin_token
        if token != expected and not admin:
            return _error("invalid_auth")
        queued = self._errors.get(method)
        if queued:
            return _error(queued.pop(0))
        result: web.Response = handler(params, admin) if method in _ADMIN_METHODS else handler(params)
        return result

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def _m_auth_test(self, params: dict[str, Any]) -> web.Response:
        return _ok({
            "url": "https://nordhost-support.slack.com/", "team": "Nordhost Support", "user": "switchboard",
            "team_id": self.team_id, "user_id": self.bot_user_id, "bot_id": self.bot_id,
            "is_enterprise_install": False,
        })

    def _bot_message(self, params: dict[str, Any], ts: str) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "message", "subtype": "bot_message", "text": params.get("text", ""), "ts": ts,
            "bot_id": self.bot_id, "user": self.bot_user_id, "app_id": APP_ID,
        }
        blocks = params.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        if blocks:
            message["blocks"] = blocks
        if params.get("thread_ts"):
            message["thread_ts"] = params["thread_ts"]
        return message

    def _m_chat_postMessage(self, params: dict[str, Any]) -> web.Response:
        channel = params.get("channel")
        if channel not in self.channels:
            return _error("channel_not_found")
        if not params.get("text") and not params.get("blocks"):
            return _error("no_text")
        if params.get("blocks") is not None and _blocks_error(params["blocks"]):
            return _error("invalid_blocks")
        ts = self._next_ts()
        message = self._bot_message(params, ts)
        self.messages.setdefault(channel, {})[ts] = message
        return _ok({"channel": channel, "ts": ts, "message": message})

    def _m_chat_update(self, params: dict[str, Any], admin: bool = False) -> web.Response:
        channel, ts = params.get("channel"), params.get("ts")
        if channel not in self.channels:
            return _error("channel_not_found")
        existing = self.messages.get(channel, {}).get(str(ts))
        if existing is None or existing.get("subtype") == "tombstone":
            return _error("message_not_found")
        if not admin and existing.get("user") != self.bot_user_id:
            return _error("cant_update_message")  # a bot token edits only the app's own messages
        if params.get("blocks") is not None and _blocks_error(params["blocks"]):
            return _error("invalid_blocks")
        if "text" in params:
            existing["text"] = params["text"]
        blocks = params.get("blocks")
        if blocks is not None:  # like Slack: without ``blocks`` the old ones stay
            existing["blocks"] = json.loads(blocks) if isinstance(blocks, str) else blocks
        existing["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return _ok({"channel": channel, "ts": ts, "text": existing["text"], "message": existing})

    def _m_chat_delete(self, params: dict[str, Any], admin: bool = False) -> web.Response:
        """Like Slack: a bot token deletes only the app's own messages (``cant_delete_message``
        otherwise); a thread parent that still has replies stays as a content-free tombstone."""
        channel, ts = params.get("channel"), str(params.get("ts"))
        if channel not in self.channels:
            return _error("channel_not_found")
        existing = self.messages.get(channel, {}).get(ts)
        if existing is None or existing.get("subtype") == "tombstone":
            return _error("message_not_found")
        if not admin and existing.get("user") != self.bot_user_id:
            return _error("cant_delete_message")
        replies = [m for m in self.messages[channel].values() if m.get("thread_ts") == ts and m["ts"] != ts]
        if replies:
            self.messages[channel][ts] = {"type": "message", "subtype": "tombstone", "ts": ts, "thread_ts": ts,
                                          "text": "This message was deleted.", "user": "USLACKBOT"}
        else:
            del self.messages[channel][ts]
        self.deleted.append((channel, ts))
        return _ok({"channel": channel, "ts": ts})

    def agent_says(self, text: str, *, thread_ts: str, user: str = AGENT,
                   channel: str = AGENTS_CHANNEL) -> dict[str, Any]:
        """An agent's reply typed in Slack: kept in the channel like Slack does; returns the
        ``message`` event Slack then sends the app (push it with `signed_event_request` or a socket)."""
        event = message_event(text, user=user, channel=channel, thread_ts=thread_ts, ts=self._next_ts())
        self.messages.setdefault(channel, {})[event["ts"]] = {
            "type": "message", "text": text, "ts": event["ts"], "user": user, "thread_ts": thread_ts}
        return event

    def _m_chat_postEphemeral(self, params: dict[str, Any]) -> web.Response:
        if params.get("channel") not in self.channels:
            return _error("channel_not_found")
        if params.get("user") not in self.users:
            return _error("user_not_in_channel")
        self.ephemerals.append(dict(params))
        return _ok({"message_ts": self._next_ts()})

    def _m_users_info(self, params: dict[str, Any]) -> web.Response:
        user_id = params.get("user")
        if user_id not in self.users:
            return _error("user_not_found")
        display = self.users[user_id]
        real = f"{display or user_id} Example"
        return _ok({"user": {
            "id": user_id, "team_id": self.team_id, "name": (display or user_id).lower(),
            "real_name": real, "tz": "Europe/Berlin", "is_bot": False,
            "profile": {"display_name": display, "real_name": real},
        }})

    def _m_usergroups_users_list(self, params: dict[str, Any]) -> web.Response:
        group = params.get("usergroup")
        if group not in self.usergroups:
            return _error("no_such_subteam")
        return _ok({"users": list(self.usergroups[group])})

    def _m_conversations_info(self, params: dict[str, Any]) -> web.Response:
        channel = params.get("channel")
        if channel not in self.channels:
            return _error("channel_not_found")
        return _ok({"channel": {"id": channel, "name": self.channels[channel], "is_channel": True, "is_member": True}})

    def _m_conversations_replies(self, params: dict[str, Any], admin: bool = False) -> web.Response:
        channel, ts = params.get("channel"), str(params.get("ts"))
        if channel not in self.channels:
            return _error("channel_not_found")
        parent = self.messages.get(channel, {}).get(ts)
        if parent is None:
            return _error("thread_not_found")
        replies = [m for m in self.posted(channel, thread_ts=ts) if m["ts"] != ts]
        limit = int(params.get("limit") or 1000)
        return _ok({"messages": ([parent] + replies)[:limit], "has_more": False})

    def _m_views_open(self, params: dict[str, Any]) -> web.Response:
        """A modal for the user whose click gave the trigger_id (Slack: expired after 3 s)."""
        view = params.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        if not params.get("trigger_id"):
            return _error("invalid_arguments")
        if not isinstance(view, dict) or view.get("type") != "modal":
            return _error("invalid_arguments")
        title = (view.get("title") or {}).get("text", "")
        if not title or len(title) > 24 or len(view.get("private_metadata") or "") > 3000:
            return _error("invalid_arguments")
        for block in view.get("blocks") or []:
            element = block.get("element") or {}
            if element.get("type") == "plain_text_input" and len(element.get("initial_value") or "") > \
                    int(element.get("max_length") or 3000):
                return _error("invalid_arguments")
        view_id = f"V{len(self.views) + 1:08d}"
        self.views.append({**view, "id": view_id, "trigger_id": params["trigger_id"]})
        return _ok({"view": {**view, "id": view_id}})

    def _m_files_getUploadURLExternal(self, params: dict[str, Any]) -> web.Response:
        filename, length = params.get("filename"), str(params.get("length", ""))
        if not filename or not length.isdigit():
            return _error("invalid_arguments")
        key = uuid.uuid4().hex
        file_id = f"F0{next(self._file_ids):09d}"
        self._pending_uploads[key] = {"file_id": file_id, "filename": filename, "length": int(length)}
        return _ok({"upload_url": f"http://127.0.0.1:{self.port}/upload/v1/{key}", "file_id": file_id})

    def _m_files_completeUploadExternal(self, params: dict[str, Any]) -> web.Response:
        raw = params.get("files")
        files = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(files, list) or not files:
            return _error("invalid_arguments")
        channel = params.get("channel_id")
        if channel is not None and channel not in self.channels:
            return _error("channel_not_found")
        thread_ts = params.get("thread_ts")
        done = []
        for item in files:
            pending = next((p for p in self._pending_uploads.values() if p["file_id"] == item.get("id")), None)
            if pending is None or "data" not in pending:
                return _error("file_not_found")
            data = pending["data"]
            mimetype = "image/png" if data.startswith(b"\x89PNG") else \
                "image/jpeg" if data.startswith(b"\xff\xd8") else "application/pdf" if data.startswith(b"%PDF") \
                else "application/octet-stream"
            obj = self._file_object(pending["file_id"], pending["filename"], mimetype, len(data), self.bot_user_id)
            obj["title"] = item.get("title") or pending["filename"]
            if channel:
                obj["_shares"] = [{"channel": channel, "thread_ts": thread_ts,
                                   "initial_comment": params.get("initial_comment")}]
            self.files[obj["id"]] = obj
            self.file_data[obj["id"]] = data
            done.append({k: v for k, v in obj.items() if not k.startswith("_")})
        return _ok({"files": done})

    def _m_files_info(self, params: dict[str, Any]) -> web.Response:
        found = self.files.get(str(params.get("file")))
        if found is None:
            return _error("file_not_found")
        return _ok({"file": {k: v for k, v in found.items() if not k.startswith("_")}})

    def _m_apps_connections_open(self, params: dict[str, Any]) -> web.Response:
        return _ok({"url": f"ws://127.0.0.1:{self.port}/link"})


_ADMIN_METHODS = frozenset({"chat.delete", "chat.update", "conversations.replies"})


def _blocks_error(blocks: Any) -> str | None:
    """Slack's ``invalid_blocks`` for the Block Kit limits a card can run into."""
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    if not isinstance(blocks, list) or len(blocks) > 50:
        return "invalid_blocks"
    for block in blocks:
        kind = block.get("type")
        text = (block.get("text") or {}).get("text", "")
        if kind == "header" and (len(text) > 150 or block["text"].get("type") != "plain_text"):
            return "invalid_blocks"
        if kind == "section":
            fields = block.get("fields") or []
            if len(text) > 3000 or len(fields) > 10 or any(len(f.get("text", "")) > 2000 for f in fields):
                return "invalid_blocks"
            if not text and not fields:
                return "invalid_blocks"
        if kind == "actions":
            elements = block.get("elements") or []
            if not elements or len(elements) > 25:
                return "invalid_blocks"
            for element in elements:
                if len(element.get("action_id", "")) > 255 or len(str(element.get("value", ""))) > 2000:
                    return "invalid_blocks"
    return None


def _ok(body: dict[str, Any]) -> web.Response:
    return web.json_response({"ok": True, **body})


def _error(code: str) -> web.Response:
    return web.json_response({"ok": False, "error": code})


# -- what Slack sends us ---------------------------------------------------------------
_event_ids = itertools.count(1)


def message_event(
    text: str, *, user: str = AGENT, channel: str = AGENTS_CHANNEL, thread_ts: str | None = None,
    ts: str | None = None, subtype: str | None = None, bot_id: str | None = None,
) -> dict[str, Any]:
    """A ``message`` event (as in message_thread_reply_by_agent.json)."""
    ts = ts or f"{time.time():.6f}"
    event: dict[str, Any] = {
        "type": "message", "channel": channel, "text": text, "ts": ts, "event_ts": ts,
        "channel_type": "channel", "team": TEAM_ID,
    }
    if bot_id:
        event.update(bot_id=bot_id, subtype=subtype or "bot_message", username="Switchboard")
    else:
        event.update(user=user, client_msg_id=str(uuid.uuid4()))
    if subtype and not bot_id:
        event["subtype"] = subtype
    if thread_ts:
        event.update(thread_ts=thread_ts, parent_user_id="U0BOTUSER")
    return event


def file_share_event(files: list[dict[str, Any]], *, text: str = "", user: str = AGENT,
                     channel: str = AGENTS_CHANNEL, thread_ts: str | None = None) -> dict[str, Any]:
    """A ``message`` event with subtype ``file_share``: an agent shared ``files`` (objects from
    `FakeSlackAPI.share_file`), as Slack sends it (``upload: true``, ``display_as_bot: false``)."""
    event = message_event(text, user=user, channel=channel, thread_ts=thread_ts, subtype="file_share")
    event.update(files=files, upload=True, display_as_bot=False)
    return event


def signed_command_request(payload: dict[str, str], signing_secret: str, *,
                           timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    """Body and headers of a slash command POST: flat form fields, signed like every request."""
    raw = urllib.parse.urlencode(payload).encode()
    return raw, signed_headers(raw, signing_secret, timestamp=timestamp,
                               content_type="application/x-www-form-urlencoded")


def event_callback(event: dict[str, Any], *, event_id: str | None = None, bot_user_id: str = "U0BOTUSER") -> dict[str, Any]:
    """Wrap an event in the ``event_callback`` envelope of the Events API."""
    return {
        "token": "XXYYZZ", "team_id": TEAM_ID, "api_app_id": APP_ID, "event": event,
        "type": "event_callback", "event_id": event_id or f"Ev{next(_event_ids):09d}",
        "event_time": int(time.time()),
        "authorizations": [{
            "enterprise_id": None, "team_id": TEAM_ID, "user_id": bot_user_id,
            "is_bot": True, "is_enterprise_install": False,
        }],
        "is_ext_shared_channel": False, "event_context": "4-eyJldCI6Im1lc3NhZ2UifQ",
    }


def block_actions_payload(
    action_id: str, value: str, *, user: str = AGENT, channel: str = AGENTS_CHANNEL,
    message_ts: str = "1763820100.000100",
) -> dict[str, Any]:
    """A ``block_actions`` payload for a button click (as in block_actions_claim.json)."""
    titles = {"claim": "Claim", "back_to_bot": "Back to bot", "close": "Close"}
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM_ID},
        "api_app_id": APP_ID, "token": "XXYYZZ",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
        "trigger_id": f"{int(time.time())}.1234567890.{uuid.uuid4().hex[:16]}",
        "team": {"id": TEAM_ID, "domain": "nordhost-support"}, "enterprise": None,
        "is_enterprise_install": False, "channel": {"id": channel, "name": "support-agents"},
        "message": {
            "type": "message", "subtype": "bot_message", "text": "Handoff", "ts": message_ts,
            "bot_id": "B0SWITCHB", "blocks": [],
        },
        "state": {"values": {}},
        "response_url": "https://hooks.slack.com/actions/T0001AGENT/1234567890/abcdefABCDEF",
        "actions": [{
            "action_id": action_id, "block_id": "handoff_actions",
            "text": {"type": "plain_text", "text": titles.get(action_id, action_id), "emoji": True},
            "value": value, "type": "button", "action_ts": f"{time.time():.6f}",
        }],
    }


def suggestion_click_payload(button: dict[str, Any], *, thread_ts: str, user: str = AGENT,
                             channel: str = AGENTS_CHANNEL, message_ts: str = "1763820100.000200") -> dict[str, Any]:
    """A ``block_actions`` payload for a button inside a thread reply (e.g. "Use 1")."""
    payload = block_actions_payload(str(button["action_id"]), str(button["value"]), user=user, channel=channel,
                                    message_ts=message_ts)
    payload["container"]["thread_ts"] = thread_ts
    payload["message"]["thread_ts"] = thread_ts
    payload["actions"][0]["block_id"] = "assist"
    payload["actions"][0]["text"] = button["text"]
    return payload


def view_submission_payload(view: dict[str, Any], values: dict[str, dict[str, str]], *,
                            user: str = AGENT) -> dict[str, Any]:
    """A ``view_submission`` payload: the modal ``view`` submitted with ``values`` typed in
    (block_id -> action_id -> text), as Slack posts it to the interactivity URL."""
    state = {block: {action: {"type": "plain_text_input", "value": text} for action, text in actions.items()}
             for block, actions in values.items()}
    return {
        "type": "view_submission", "team": {"id": TEAM_ID, "domain": "nordhost-support"},
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM_ID},
        "api_app_id": APP_ID, "token": "XXYYZZ", "trigger_id": f"{int(time.time())}.1234567890.{uuid.uuid4().hex[:16]}",
        "view": {**view, "team_id": TEAM_ID, "state": {"values": state}, "hash": "1763820200.abcdef",
                 "app_id": APP_ID, "bot_id": "B0SWITCHB"},
        "response_urls": [], "is_enterprise_install": False, "enterprise": None,
    }


def signed_headers(body: bytes | str, signing_secret: str, *, timestamp: int | None = None,
                   content_type: str = "application/json") -> dict[str, str]:
    """``X-Slack-Request-Timestamp`` and ``X-Slack-Signature`` (v0 HMAC-SHA256) for a body."""
    raw = body.encode() if isinstance(body, str) else body
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(signing_secret.encode(), b"v0:" + ts.encode() + b":" + raw, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": content_type,
    }


def signed_event_request(body: dict[str, Any], signing_secret: str, *, timestamp: int | None = None,
                         retry_num: int | None = None) -> tuple[bytes, dict[str, str]]:
    """Body and headers of an Events API POST, optionally a retry (``X-Slack-Retry-Num``)."""
    raw = json.dumps(body).encode()
    headers = signed_headers(raw, signing_secret, timestamp=timestamp)
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = "http_timeout"
    return raw, headers


def signed_action_request(payload: dict[str, Any], signing_secret: str, *,
                          timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    """Body and headers of an interactivity POST: form-encoded ``payload=<JSON>``."""
    raw = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    return raw, signed_headers(raw, signing_secret, timestamp=timestamp,
                               content_type="application/x-www-form-urlencoded")
