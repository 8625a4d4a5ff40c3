"""The adapter contract test kit (importable by third-party adapters' own tests).

Subclass `AdapterContract` in a pytest module and provide four fixtures:

- ``adapter``: a started adapter built with the ``context`` fixture, pointed at a fake platform;
- ``platform``: a `PlatformProbe` over that fake (what was sent; script a failure);
- ``sign``: ``sign(body: bytes) -> headers`` that make a webhook request genuine;
- ``payload_cases``: ``[(payload, expected)]`` where ``expected`` is a tuple of `Inbound`
  (``raw`` is not compared; use ``unittest.mock.ANY`` for fields like a receipt time)
  or a `Parsed`, or ``None`` for "deliberately ignored, with a reason".

The kit then checks the same behaviour for every adapter: parse real payloads, reject
forged ones, webhook status codes, send text and buttons, degrade buttons to numbered
text, declare sane rate limits, surface 429s as `RateLimited` without retrying, and map
platform errors to ``core.errors``. Needs pytest, pytest-asyncio and aiohttp.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Protocol
from unittest.mock import ANY

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from channels.base import ChannelAdapter
from core.errors import (
    BadRequest,
    ChannelError,
    RateLimited,
    RecipientUnavailable,
    StoreUnavailable,
    TransientError,
    Unauthorized,
)
from core.files import StoredFile
from core.model import Button, Event, Inbound, Outbound
from core.ports import Parsed

__all__ = [
    "ERROR_KINDS",
    "AdapterContract",
    "LeaseBoard",
    "PlatformProbe",
    "RecordingContext",
    "SentMessage",
    "mounted",
]

#: The platform failures every adapter must map, by the probe's name for them.
ERROR_KINDS: dict[str, type[ChannelError]] = {
    "rate_limited": RateLimited,
    "unauthorized": Unauthorized,
    "recipient_unavailable": RecipientUnavailable,
    "bad_request": BadRequest,
    "transient": TransientError,
}


@dataclass(frozen=True, slots=True)
class SentMessage:
    """What the fake platform received, normalised: chat, visible text, button titles."""

    chat_id: str
    text: str
    buttons: tuple[str, ...] = ()


class PlatformProbe(Protocol):
    """An adapter test's view of its fake platform server."""

    def sent(self) -> list[SentMessage]:
        """Every message the platform received, oldest first."""

    def request_count(self) -> int:
        """Every request the platform received (any method)."""

    def fail_next(self, kind: str) -> float | None:
        """Make the next call fail as ``kind`` (a key of `ERROR_KINDS`).

        Returns the ``retry_after`` the adapter must report for ``rate_limited``.
        Raise ``NotImplementedError`` if the platform has no such failure.
        """


class LeaseBoard:
    """Leases shared by several `RecordingContext`s (several farm processes, one store)."""

    def __init__(self) -> None:
        self.holders: dict[str, tuple[str, float]] = {}

    def acquire(self, name: str, holder: str, ttl: float) -> bool:
        now = time.monotonic()
        current = self.holders.get(name)
        if current is None or current[0] == holder or current[1] <= now:
            self.holders[name] = (holder, now + ttl)
            return True
        return False

    def release(self, name: str, holder: str) -> None:
        if self.holders.get(name, ("", 0.0))[0] == holder:
            del self.holders[name]


@dataclass
class RecordingContext:
    """An in-memory `AdapterContext` that records what an adapter hands to the core.

    ``unavailable=True`` makes ``accept`` raise `StoreUnavailable` (the 503 path).
    """

    holder: str = "process-1"
    leases: LeaseBoard = field(default_factory=LeaseBoard)
    kv: dict[str, Any] = field(default_factory=dict)
    accepted: list[Parsed] = field(default_factory=list)
    unavailable: bool = False
    kv_writes: int = 0

    async def accept(self, parsed: Parsed) -> None:
        if self.unavailable:
            raise StoreUnavailable("store down (test)")
        self.accepted.append(parsed)

    @property
    def messages(self) -> list[Inbound]:
        return [m for p in self.accepted for m in p.messages]

    async def history(self, bot: str, channel: str, chat_id: str, after_seq: int = 0) -> list[Event]:
        return []

    async def kv_get(self, key: str) -> Any | None:
        return self.kv.get(key)

    async def kv_set(self, key: str, value: Any, ttl_seconds: float | None = None) -> None:
        self.kv_writes += 1
        self.kv[key] = value

    async def read_file(self, file_id: str) -> StoredFile | None:
        return StoredFile.from_value(file_id, self.kv.get(f"files:{file_id}"))

    async def acquire_lease(self, name: str, ttl_seconds: float) -> bool:
        return self.leases.acquire(name, self.holder, ttl_seconds)

    async def release_lease(self, name: str) -> None:
        self.leases.release(name, self.holder)


@asynccontextmanager
async def mounted(adapter: ChannelAdapter) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """A test client for an aiohttp app with the adapter's routes mounted (as the farm does)."""
    app = web.Application()
    for route in adapter.routes():
        app.router.add_route(route.method, route.path, route.handler, name=route.name)
    client: TestClient[web.Request, web.Application] = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


def _expected_parsed(expected: Parsed | Sequence[Inbound] | None) -> Parsed | None:
    if expected is None or isinstance(expected, Parsed):
        return expected
    return Parsed(messages=tuple(expected))


class AdapterContract:
    """Every adapter's test module subclasses this and provides the four fixtures."""

    #: How many choices the adapter can show as buttons/list; one more must become numbered text.
    max_choices: ClassVar[int | None] = None
    #: The chat the send tests write to.
    chat_id: ClassVar[str] = "42"

    @pytest.fixture
    def context(self) -> RecordingContext:
        return RecordingContext()

    @pytest.fixture
    def webhook_payload(self, payload_cases: list[tuple[dict[str, Any], Any]]) -> dict[str, Any]:
        """A genuine payload that yields at least one message (first such payload case)."""
        for payload, expected in payload_cases:
            parsed = _expected_parsed(expected)
            if parsed is not None and parsed.messages:
                return payload
        pytest.skip("no payload case yields a message")

    def outbound(self, adapter: ChannelAdapter, text: str = "Hello", buttons: Sequence[Button] = ()) -> Outbound:
        return Outbound(conversation_id="conv_test", bot=adapter.bot, channel=adapter.name,
                        chat_id=self.chat_id, text=text, buttons=tuple(buttons))

    # -- parsing ---------------------------------------------------------------------
    def test_parses_real_payloads(self, adapter: ChannelAdapter, payload_cases: list[tuple[dict[str, Any], Any]]) -> None:
        assert payload_cases, "provide at least one payload case"
        for payload, expected in payload_cases:
            parsed = adapter.parse(payload)
            want = _expected_parsed(expected)
            if want is None:
                assert not parsed.messages and not parsed.receipts and parsed.ignored, payload
                continue
            assert parsed.messages == want.messages, payload
            assert parsed.receipts == want.receipts, payload
            for message in parsed.messages:
                assert message.platform_message_id.startswith(f"{adapter.name}:")
                assert message.timestamp.tzinfo is not None and message.timestamp.utcoffset().total_seconds() == 0  # type: ignore[union-attr]

    async def test_parse_is_pure_and_calls_no_platform(
        self, adapter: ChannelAdapter, platform: PlatformProbe, payload_cases: list[tuple[dict[str, Any], Any]]
    ) -> None:
        before = platform.request_count()
        for payload, _ in payload_cases:
            first, second = adapter.parse(payload), adapter.parse(payload)
            assert [replace(m, timestamp=ANY) for m in first.messages] == list(second.messages)
            assert first.receipts == second.receipts and first.ignored == second.ignored
        assert platform.request_count() == before

    @pytest.mark.parametrize("garbage", [{}, {"x": 1}, {"entry": "x"}, {"update_id": "1"}, {"update_id": 1, "message": 5}])
    def test_malformed_payload_raises_only_bad_request(self, adapter: ChannelAdapter, garbage: dict[str, Any]) -> None:
        try:
            parsed = adapter.parse(garbage)
        except BadRequest:
            return
        assert not parsed.messages

    # -- verification and webhook status codes ------------------------------------------
    def test_signed_request_verifies(self, adapter: ChannelAdapter, sign: Callable[[bytes], Mapping[str, str]],
                                     webhook_payload: dict[str, Any]) -> None:
        body = json.dumps(webhook_payload).encode()
        adapter.verify(sign(body), body)

    def test_forged_request_is_rejected(self, adapter: ChannelAdapter, sign: Callable[[bytes], Mapping[str, str]],
                                        webhook_payload: dict[str, Any]) -> None:
        body = json.dumps(webhook_payload).encode()
        headers = sign(body)
        with pytest.raises(Unauthorized):
            adapter.verify({}, body)
        forged = {k: (v[:-2] + ("00" if not v.endswith("00") else "11")) for k, v in headers.items()
                  if k.lower() != "content-type"}
        with pytest.raises(Unauthorized):
            adapter.verify(forged, body)

    async def _post(self, adapter: ChannelAdapter, body: bytes, headers: Mapping[str, str]) -> int:
        posts = [r for r in adapter.routes() if r.method == "POST"]
        if not posts:
            pytest.skip("adapter has no webhook route")
        async with mounted(adapter) as client:
            response = await client.post(posts[0].path, data=body, headers=dict(headers))
            return response.status

    async def test_webhook_accepts_genuine_request_after_storing_it(
        self, adapter: ChannelAdapter, context: RecordingContext, sign: Callable[[bytes], Mapping[str, str]],
        webhook_payload: dict[str, Any],
    ) -> None:
        body = json.dumps(webhook_payload).encode()
        assert await self._post(adapter, body, sign(body)) == 200
        assert context.messages == list(adapter.parse(webhook_payload).messages)

    async def test_webhook_rejects_forged_request_and_stores_nothing(
        self, adapter: ChannelAdapter, context: RecordingContext, webhook_payload: dict[str, Any]
    ) -> None:
        body = json.dumps(webhook_payload).encode()
        assert await self._post(adapter, body, {}) in (401, 403)
        assert context.accepted == []

    async def test_webhook_malformed_json_is_400(
        self, adapter: ChannelAdapter, context: RecordingContext, sign: Callable[[bytes], Mapping[str, str]]
    ) -> None:
        for body in (b"{not json", b"[1, 2]", b"\xff\xfe"):
            assert await self._post(adapter, body, sign(body)) == 400
        assert context.accepted == []

    async def test_webhook_store_unavailable_is_503(
        self, adapter: ChannelAdapter, context: RecordingContext, sign: Callable[[bytes], Mapping[str, str]],
        webhook_payload: dict[str, Any],
    ) -> None:
        context.unavailable = True
        body = json.dumps(webhook_payload).encode()
        assert await self._post(adapter, body, sign(body)) == 503

    async def test_webhook_oversized_body_is_413(
        self, adapter: ChannelAdapter, sign: Callable[[bytes], Mapping[str, str]]
    ) -> None:
        body = b'{"pad": "' + b"x" * (1024 * 1024 + 10) + b'"}'
        assert await self._post(adapter, body, sign(body)) == 413

    # -- sending -----------------------------------------------------------------------
    async def test_sends_text_and_returns_namespaced_id(self, adapter: ChannelAdapter, platform: PlatformProbe) -> None:
        message_id = await adapter.send(self.outbound(adapter, "Hello there"))
        assert message_id.startswith(f"{adapter.name}:") and len(message_id) > len(adapter.name) + 1
        assert platform.sent() == [SentMessage(self.chat_id, "Hello there")]

    async def test_sends_buttons(self, adapter: ChannelAdapter, platform: PlatformProbe) -> None:
        buttons = (Button("Yes", "/affirm"), Button("No", "/deny"))
        await adapter.send(self.outbound(adapter, "Continue?", buttons))
        [sent] = platform.sent()
        if adapter.capabilities.buttons:
            assert sent.buttons == ("Yes", "No") and "Continue?" in sent.text
        else:
            assert sent.text == ChannelAdapter.buttons_as_text("Continue?", buttons)

    async def test_too_many_buttons_degrade_to_numbered_text(self, adapter: ChannelAdapter, platform: PlatformProbe) -> None:
        limit = self.max_choices if self.max_choices is not None else adapter.capabilities.max_buttons
        buttons = tuple(Button(f"Choice {i}", f"/choice_{i}") for i in range(1, limit + 2))
        await adapter.send(self.outbound(adapter, "Pick one", buttons))
        [sent] = platform.sent()
        assert sent.buttons == ()
        assert sent.text == ChannelAdapter.buttons_as_text("Pick one", buttons)

    def test_declared_rate_limits_are_sane(self, adapter: ChannelAdapter) -> None:
        limits = adapter.rate_limits
        assert limits.per_bot > 0 and 0 < limits.per_chat <= limits.per_bot and limits.per_chat_burst >= 1

    async def test_rate_limit_raises_rate_limited_with_retry_after_and_no_retry(
        self, adapter: ChannelAdapter, platform: PlatformProbe
    ) -> None:
        expected = platform.fail_next("rate_limited")
        before = platform.request_count()
        with pytest.raises(RateLimited) as caught:
            await adapter.send(self.outbound(adapter))
        assert caught.value.retry_after == expected
        assert platform.request_count() == before + 1, "the adapter must not retry on its own"

    @pytest.mark.parametrize("kind", sorted(ERROR_KINDS))
    async def test_platform_errors_map_to_core_errors(self, adapter: ChannelAdapter, platform: PlatformProbe,
                                                      kind: str) -> None:
        try:
            platform.fail_next(kind)
        except NotImplementedError:
            pytest.skip(f"platform has no {kind} failure")
        with pytest.raises(ERROR_KINDS[kind]):
            await adapter.send(self.outbound(adapter))

    async def test_stop_is_safe_twice(self, adapter: ChannelAdapter) -> None:
        await adapter.stop()
        await adapter.stop()
