"""The docs/adapters.md example adapter passes the same contract kit as the built-ins."""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import itertools
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from channels.testing import AdapterContract, RecordingContext, SentMessage
from core.model import Inbound

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "echo_adapter.py"
spec = importlib.util.spec_from_file_location("echo_adapter", EXAMPLE)
assert spec is not None and spec.loader is not None
echo_adapter = importlib.util.module_from_spec(spec)
sys.modules["echo_adapter"] = echo_adapter
spec.loader.exec_module(echo_adapter)

SECRET = "echo-secret"


class FakeEcho:
    """Echo's API: POST /messages, Bearer token, scripted failures."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.requests = 0
        self.failures: list[tuple[int, dict[str, str]]] = []
        self.ids = itertools.count(1)

    async def messages(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.failures:
            status, headers = self.failures.pop(0)
            return web.json_response({"error": "scripted"}, status=status, headers=headers)
        if request.headers.get("Authorization") != "Bearer echo-token":
            return web.json_response({"error": "bad token"}, status=401)
        body = await request.json()
        self.sent.append(body)
        return web.json_response({"id": f"m{next(self.ids)}"})


class EchoProbe:
    def __init__(self, fake: FakeEcho) -> None:
        self.fake = fake

    def sent(self) -> list[SentMessage]:
        return [SentMessage(b["to"], b["text"]) for b in self.fake.sent]

    def request_count(self) -> int:
        return self.fake.requests

    def fail_next(self, kind: str) -> float | None:
        status = {"rate_limited": 429, "unauthorized": 401, "recipient_unavailable": 404,
                  "bad_request": 400, "transient": 503}[kind]
        self.fake.failures.append((status, {"Retry-After": "3"} if status == 429 else {}))
        return 3.0 if status == 429 else None


class TestEchoAdapterContract(AdapterContract):
    @pytest.fixture
    async def fake(self) -> AsyncIterator[FakeEcho]:
        fake = FakeEcho()
        app = web.Application()
        app.router.add_post("/messages", fake.messages)
        server = TestServer(app, host="127.0.0.1", port=0)
        await server.start_server()
        fake.url = str(server.make_url("")).rstrip("/")  # type: ignore[attr-defined]
        yield fake
        await server.close()

    @pytest.fixture
    async def adapter(self, fake: FakeEcho, context: RecordingContext) -> AsyncIterator[Any]:
        adapter = echo_adapter.EchoAdapter.from_config(
            "demo", {"token": "echo-token", "secret": SECRET, "api_base": fake.url}, context)  # type: ignore[attr-defined]
        await adapter.start()
        yield adapter
        await adapter.stop()

    @pytest.fixture
    def platform(self, fake: FakeEcho) -> EchoProbe:
        return EchoProbe(fake)

    @pytest.fixture
    def sign(self) -> Callable[[bytes], Mapping[str, str]]:
        return lambda body: {"X-Echo-Signature": hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}

    @pytest.fixture
    def payload_cases(self) -> list[tuple[dict[str, Any], Any]]:
        return [
            ({"id": "e1", "user": "u7", "text": "hello", "ts": 1700000000},
             (Inbound(bot="demo", channel="echo", channel_user_id="u7", chat_id="u7", platform_message_id="echo:e1",
                      text="hello", timestamp=datetime.fromtimestamp(1700000000, UTC)),)),
            ({"id": "e2", "user": "u7", "text": "  ", "ts": 1700000001}, None),
        ]
