"""A complete small channel adapter for "Echo", a toy chat platform (the docs/adapters.md example).

Echo's contract (invented, but shaped like real platforms):
- inbound: ``POST /webhooks/{bot}/echo`` with JSON ``{"id", "user", "text", "ts"}`` and the header
  ``X-Echo-Signature: <hex HMAC-SHA256(secret, raw body)>``;
- outbound: ``POST {api_base}/messages`` with ``Authorization: Bearer <token>`` and JSON
  ``{"to", "text"}``, answering ``{"id": "..."}``; errors are ``{"error": "..."}`` with HTTP
  401 (bad token), 404 (unknown user), 400, 429 (+ ``Retry-After``) or 5xx.
- Echo has no buttons, so buttons become numbered text.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import aiohttp

from channels.base import AdapterConfig, ChannelAdapter, Parsed, Route
from core.errors import (
    BadRequest,
    ChannelError,
    RateLimited,
    RecipientUnavailable,
    TransientError,
    Unauthorized,
)
from core.model import Inbound, Outbound
from core.ports import Capabilities, RateLimits


class EchoConfig(AdapterConfig):
    """``bots.<bot>.channels.echo`` in farm.yml."""

    token: str
    secret: str
    api_base: str = "https://api.echo.example"


def map_echo_error(status: int, body: Any, retry_after: str | None) -> ChannelError:
    """Echo's HTTP answers to core.errors, in one place."""
    message = f"{status} {body.get('error') if isinstance(body, dict) else body}"
    if status == 429:
        return RateLimited(message, retry_after=float(retry_after or 1))
    if status == 401:
        return Unauthorized(message)
    if status == 404:
        return RecipientUnavailable(message)
    if status >= 500:
        return TransientError(message)
    return BadRequest(message)


class EchoAdapter(ChannelAdapter):
    name: ClassVar[str] = "echo"
    capabilities: ClassVar[Capabilities] = Capabilities()  # text only
    rate_limits: ClassVar[RateLimits] = RateLimits(per_bot=10.0, per_chat=1.0, per_chat_burst=2)
    Config: ClassVar[type[AdapterConfig]] = EchoConfig

    config: EchoConfig
    _session: aiohttp.ClientSession | None = None

    def routes(self) -> Sequence[Route]:
        return (Route("POST", f"/webhooks/{self.bot}/echo", self.handle_webhook),)

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {self.config.token}"}, timeout=aiohttp.ClientTimeout(total=10)
        )

    async def stop(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        expected = hmac.new(self.config.secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(headers.get("X-Echo-Signature", "").encode(), expected.encode()):
            raise Unauthorized("bad Echo signature")

    def parse(self, payload: Mapping[str, Any]) -> Parsed:
        message_id, user, text, ts = (payload.get(k) for k in ("id", "user", "text", "ts"))
        if not isinstance(message_id, str) or not isinstance(user, str) or not isinstance(ts, int):
            raise BadRequest("Echo message needs string id and user and an integer ts")
        if not isinstance(text, str) or not text.strip():
            return Parsed(ignored=("empty message",))
        try:
            when = datetime.fromtimestamp(ts, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise BadRequest("ts out of range") from exc
        return Parsed(messages=(Inbound(
            bot=self.bot, channel=self.name, channel_user_id=user, chat_id=user,
            platform_message_id=self.namespaced(message_id), text=text, timestamp=when, raw=dict(payload),
        ),))

    async def send(self, message: Outbound) -> str:
        if self._session is None:
            raise TransientError("adapter not started")
        text = self.buttons_as_text(message.text, message.buttons)  # no buttons on Echo
        try:
            async with self._session.post(f"{self.config.api_base}/messages",
                                          json={"to": message.chat_id, "text": text}) as response:
                body = await response.json(content_type=None)
                if response.status != 200:
                    raise map_echo_error(response.status, body, response.headers.get("Retry-After"))
                return self.namespaced(body["id"])
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise TransientError(f"Echo unreachable: {exc}") from exc
