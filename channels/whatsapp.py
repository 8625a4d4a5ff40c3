"""WhatsApp Cloud API adapter (Graph API through our own aiohttp client).

Inbound: ``GET /webhooks/{bot}/whatsapp`` answers Meta's verification handshake;
``POST`` carries messages and delivery statuses, signed with ``X-Hub-Signature-256``
(HMAC-SHA256 of the raw body with the app secret, checked in constant time).
Outbound: ``POST {api_base}/{api_version}/{phone_number_id}/messages``; Graph error
codes map to ``core.errors`` in `map_graph_error`. No retries here: the outbox retries.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, ClassVar

import aiohttp
import structlog
from aiohttp import web
from pydantic import Field, field_validator

from channels.base import (
    AdapterConfig,
    AdapterContext,
    Capabilities,
    ChannelAdapter,
    Parsed,
    RateLimits,
    Route,
)
from core.errors import (
    BadRequest,
    ChannelError,
    OutsideServiceWindow,
    RateLimited,
    RecipientUnavailable,
    TransientError,
    Unauthorized,
)
from core.files import StoredFile, is_stored, sniff
from core.model import Attachment, DeliveryReceipt, DeliveryStatus, Inbound, Outbound

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
SERVICE_WINDOW_SECONDS = 24 * 3600
MAX_REPLY_BUTTONS = 3
MAX_LIST_ROWS = 10
MAX_BUTTON_TITLE = 20
MAX_ROW_TITLE = 24
MAX_ROW_DESCRIPTION = 72
MAX_INTERACTIVE_BODY = 1024
MAX_TEXT = 4096

# Seconds to wait when Graph says "slow down" without a Retry-After header.
RATE_LIMIT_WAIT = {130429: 1.0, 131056: 6.0, 4: 60.0, 80007: 60.0}
TRANSIENT_CODES = {1, 2, 131000, 131016, 133004}
UNAVAILABLE_CODES = {131026, 131030}

STATUS_MAP = {
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "played": DeliveryStatus.READ,
    "failed": DeliveryStatus.FAILED,
}
MEDIA_TYPES = ("image", "document", "video", "audio", "sticker")
IMAGE_TYPES = frozenset({"image/jpeg", "image/png"})  # what WhatsApp shows as an image
MAX_IMAGE_BYTES = 5_000_000
MEDIA_ID_TTL = 25 * 86400.0


class WhatsAppConfig(AdapterConfig):
    """``bots.<bot>.channels.whatsapp`` in farm.yml."""

    access_token: str = Field(min_length=1, description="System-user token, e.g. ${WHATSAPP_TOKEN}")
    app_secret: str = Field(min_length=1, description="App secret for X-Hub-Signature-256")
    verify_token: str = Field(min_length=1, description="Your token for the GET verification handshake")
    phone_number_id: str = Field(min_length=1)
    api_base: str = "https://graph.facebook.com"
    api_version: str = "v21.0"
    template_name: str | None = Field(default=None, description="Template the core uses outside 24 h")
    template_language: str = "en_US"
    list_button: str = Field(default="Options", max_length=20, description="Label that opens a list message")
    buttons_prompt: str = Field(default="Please choose:", description="Body when buttons come without text")
    read_receipts: bool = Field(default=True, description="Mark each customer message read when its turn starts")
    typing_indicator: bool = Field(
        default=True, description="Show WhatsApp's typing indicator with the read receipt (cleared by the reply or 25 s)")
    timeout: float = Field(default=10.0, gt=0)
    max_connections: int = Field(default=64, ge=1)

    @field_validator("api_version")
    @classmethod
    def _version(cls, value: str) -> str:
        value = value.strip()
        if not re.fullmatch(r"v?\d+\.\d+", value):
            raise ValueError("expected a Graph API version such as v21.0")
        return value if value.startswith("v") else f"v{value}"


def map_graph_error(status: int, body: Any, retry_after_header: str | None = None) -> ChannelError:
    """The one place where a Graph API failure becomes a ``core.errors`` exception."""
    error = body.get("error") if isinstance(body, Mapping) else None
    error = error if isinstance(error, Mapping) else {}
    code = error.get("code")
    code = code if isinstance(code, int) else None
    text = f"{status} {error.get('message') or 'Graph API error'}" + (f" (code {code})" if code is not None else "")
    details = error.get("error_data", {}).get("details") if isinstance(error.get("error_data"), Mapping) else None
    if details:
        text += f": {details}"
    if code in RATE_LIMIT_WAIT or status == 429:
        wait = RATE_LIMIT_WAIT.get(code or 0, 1.0)
        if retry_after_header:
            try:
                wait = float(retry_after_header)
            except ValueError:
                pass
        return RateLimited(text, retry_after=wait)
    if code == 131047:
        return OutsideServiceWindow(text)
    if code in UNAVAILABLE_CODES:
        return RecipientUnavailable(text)
    if code == 190 or status == 401:
        return Unauthorized(text)
    if status >= 500 or error.get("is_transient") is True or code in TRANSIENT_CODES:
        return TransientError(text)
    return BadRequest(text)


def _timestamp(value: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError) as exc:
        raise BadRequest(f"bad timestamp {value!r}") from exc


def _str(mapping: Mapping[str, Any], key: str) -> str | None:
    value = mapping.get(key)
    return value if isinstance(value, str) else None


def _obj(mapping: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = mapping.get(key)
    return value if isinstance(value, Mapping) else {}


def _list(mapping: Mapping[str, Any], key: str) -> list[Any]:
    value = mapping.get(key, [])
    if not isinstance(value, list):
        raise BadRequest(f"'{key}' is not a list")
    return value


class WhatsAppAdapter(ChannelAdapter):
    """WhatsApp Cloud API for one bot (one business phone number)."""

    name: ClassVar[str] = "whatsapp"
    capabilities: ClassVar[Capabilities] = Capabilities(
        buttons=True, max_buttons=MAX_REPLY_BUTTONS, lists=True, media=True, typing=True,
        edit=False, read_receipts=True,
    )
    # 80 msg/s per number by default; pair rate limit about one message per 6 s per user, bursts allowed.
    rate_limits: ClassVar[RateLimits] = RateLimits(per_bot=80.0, per_chat=1 / 6, per_chat_burst=10)
    Config: ClassVar[type[AdapterConfig]] = WhatsAppConfig
    forged_status: ClassVar[int] = 401

    config: WhatsAppConfig

    def __init__(self, bot: str, config: AdapterConfig, context: AdapterContext) -> None:
        assert isinstance(config, WhatsAppConfig)
        super().__init__(bot, config, context)
        self._session: aiohttp.ClientSession | None = None
        self._last_inbound: dict[str, str] = {}  # chat (wa_id) -> last wamid, for typing indicators
        self._typing_shown: dict[str, str] = {}  # chat (wa_id) -> the wamid whose typing indicator is on

    @property
    def messages_url(self) -> str:
        return f"{self.config.api_base.rstrip('/')}/{self.config.api_version}/{self.config.phone_number_id}/messages"

    # -- lifecycle -----------------------------------------------------------------
    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.config.max_connections),
                timeout=aiohttp.ClientTimeout(total=self.config.timeout),
                headers={"Authorization": f"Bearer {self.config.access_token}"},
            )
        return self._session

    async def start(self) -> None:
        self._client()

    async def stop(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    # -- inbound ---------------------------------------------------------------------
    def routes(self) -> Sequence[Route]:
        path = f"/webhooks/{self.bot}/whatsapp"
        return (
            Route("GET", path, self.handle_verification, name=f"whatsapp-verify-{self.bot}"),
            Route("POST", path, self.handle_webhook, name=f"whatsapp-{self.bot}"),
        )

    async def handle_verification(self, request: web.Request) -> web.Response:
        """Meta's subscription handshake: echo ``hub.challenge`` when the verify token matches."""
        query = request.rel_url.query
        token = query.get("hub.verify_token", "")
        if query.get("hub.mode") == "subscribe" and hmac.compare_digest(
            token.encode(), self.config.verify_token.encode()
        ):
            log.info("whatsapp.webhook.verified", bot=self.bot)
            return web.Response(text=query.get("hub.challenge", ""))
        log.warning("channel.webhook.rejected", channel=self.name, bot=self.bot, reason="bad verify token")
        return web.Response(status=403, text="forbidden")

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        given = headers.get(SIGNATURE_HEADER, "")
        if not given.startswith("sha256="):
            raise Unauthorized("missing or malformed X-Hub-Signature-256")
        expected = hmac.new(self.config.app_secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(given[len("sha256="):].encode(), expected.encode()):
            raise Unauthorized("signature mismatch")

    def parse(self, payload: Mapping[str, Any]) -> Parsed:
        if not isinstance(payload, Mapping):
            raise BadRequest("webhook body is not an object")
        if payload.get("object") != "whatsapp_business_account":
            return Parsed(ignored=(f"object {str(payload.get('object'))[:40]!r} is not whatsapp_business_account",))
        messages: list[Inbound] = []
        receipts: list[DeliveryReceipt] = []
        ignored: list[str] = []
        for entry in _list(payload, "entry"):
            if not isinstance(entry, Mapping):
                raise BadRequest("entry is not an object")
            for change in _list(entry, "changes"):
                if not isinstance(change, Mapping):
                    raise BadRequest("change is not an object")
                if change.get("field") != "messages":
                    ignored.append(f"field {str(change.get('field'))[:40]!r} not handled")
                    continue
                value = change.get("value")
                if not isinstance(value, Mapping):
                    raise BadRequest("change without a value object")
                self._parse_value(value, messages, receipts, ignored)
        return Parsed(messages=tuple(messages), receipts=tuple(receipts), ignored=tuple(ignored))

    def _parse_value(
        self, value: Mapping[str, Any], messages: list[Inbound], receipts: list[DeliveryReceipt], ignored: list[str]
    ) -> None:
        number = _str(_obj(value, "metadata"), "phone_number_id")
        if number is not None and number != self.config.phone_number_id:
            ignored.append("addressed to another phone number")
            return
        names: dict[str, str] = {}
        for contact in _list(value, "contacts"):
            if isinstance(contact, Mapping) and isinstance(contact.get("wa_id"), str):
                name = _str(_obj(contact, "profile"), "name")
                if name:
                    names[contact["wa_id"]] = name
        for message in _list(value, "messages"):
            if not isinstance(message, Mapping):
                raise BadRequest("message is not an object")
            inbound, reason = self._message(message, names, value)
            if inbound is not None:
                messages.append(inbound)
            else:
                ignored.append(reason)
        for status in _list(value, "statuses"):
            if not isinstance(status, Mapping):
                raise BadRequest("status is not an object")
            receipt, reason = self._receipt(status)
            if receipt is not None:
                receipts.append(receipt)
            else:
                ignored.append(reason)
        if not value.get("messages"):
            for error in _list(value, "errors"):
                if isinstance(error, Mapping):
                    ignored.append(f"platform error {error.get('code')}: {str(error.get('title'))[:80]}")

    def _message(
        self, message: Mapping[str, Any], names: Mapping[str, str], value: Mapping[str, Any]
    ) -> tuple[Inbound | None, str]:
        wamid, sender, kind = _str(message, "id"), _str(message, "from"), _str(message, "type")
        if not wamid or not sender:
            raise BadRequest("message without id or from")
        timestamp = _timestamp(message.get("timestamp"))
        text = ""
        payload: str | None = None
        attachments: tuple[Attachment, ...] = ()
        if kind == "text":
            text = _str(_obj(message, "text"), "body") or ""
        elif kind == "interactive":
            interactive = _obj(message, "interactive")
            reply = _obj(interactive, str(interactive.get("type")))
            if interactive.get("type") == "nfm_reply":  # a WhatsApp Flow was completed: kept, answered
                attachments = (Attachment(kind="form_reply", name=_str(reply, "name"),
                                          caption=_str(reply, "response_json")),)
            elif interactive.get("type") not in ("button_reply", "list_reply") or not _str(reply, "id"):
                return None, "interactive message without a button or list reply"
            else:
                payload, text = _str(reply, "id"), _str(reply, "title") or ""
        elif kind == "order":  # a cart from the catalogue: kept for the team, answered
            order = _obj(message, "order")
            items = [i for i in order.get("product_items") or [] if isinstance(i, Mapping)]
            summary = ", ".join(f"{i.get('quantity')}× {i.get('product_retailer_id')}" for i in items)
            attachments = (Attachment(kind="order", file_id=_str(order, "catalog_id"), name=summary or None,
                                      caption=_str(order, "text") or None),)
        elif kind == "button":
            button = _obj(message, "button")
            payload, text = _str(button, "payload"), _str(button, "text") or ""
            if payload is None:
                return None, "template button without payload"
        elif kind in MEDIA_TYPES:
            media = _obj(message, kind)
            attachments = (Attachment(
                kind="voice" if kind == "audio" and media.get("voice") is True else kind,
                url=_str(media, "url"), file_id=_str(media, "id"), mime_type=_str(media, "mime_type"),
                name=_str(media, "filename"), caption=_str(media, "caption"),
            ),)
            text = _str(media, "caption") or ""
        elif kind == "location":
            loc = _obj(message, "location")
            attachments = (Attachment(
                kind="location", url=f"geo:{loc.get('latitude')},{loc.get('longitude')}",
                name=_str(loc, "name"), caption=_str(loc, "address"),
            ),)
        elif kind == "contacts":
            cards = []
            for card in message.get("contacts") or []:
                if not isinstance(card, Mapping):
                    continue
                phones = [p for p in card.get("phones") or [] if isinstance(p, Mapping)]
                phone = re.sub(r"\D", "", _str(phones[0], "phone") or "") if phones else ""
                cards.append(Attachment(
                    kind="contact", name=_str(_obj(card, "name"), "formatted_name"),
                    url=f"tel:+{phone}" if phone else None,
                ))
            attachments = tuple(cards)
        elif kind in ("edit", "revoke"):  # a version of an earlier message, not a new one
            change = _obj(message, kind)
            original = _str(change, "original_message_id")
            if not original:
                return None, f"{kind} without original_message_id"
            edited = _obj(change, "message")
            text = _str(_obj(edited, "text"), "body") or ""
            if not text:
                text = next((c for m in ("image", "video", "document") if (c := _str(_obj(edited, m), "caption"))), "")
            return self._inbound(message, sender, names, value, timestamp, text=text, edited=True,
                                 wamid=f"{kind}:{original}:{wamid}"), ""
        elif kind == "system":  # "user changed number": the contact's WhatsApp identity moves
            system = _obj(message, "system")
            new_id = _str(system, "new_wa_id") or _str(system, "wa_id")
            if _str(system, "type") not in ("user_changed_number", "customer_changed_number") or not new_id:
                return None, f"system message {str(system.get('type'))[:40]!r} not handled"
            attachments = (Attachment(kind="number_changed", url=f"tel:+{re.sub(r'[^0-9]', '', new_id)}",
                                      file_id=new_id, name=_str(system, "body")),)
        elif kind == "unsupported":  # answered "couldn't read that message type", never silence
            errors = [e for e in message.get("errors") or [] if isinstance(e, Mapping)]
            title = _str(errors[0], "title") if errors else None
            attachments = (Attachment(kind="unsupported", name=title or _str(_obj(message, "unsupported"), "type")),)
        else:
            return None, f"message type {str(kind)[:40]!r} not handled"
        if not text and not attachments and payload is None:
            return None, f"empty {kind} message"
        return self._inbound(message, sender, names, value, timestamp, text=text, payload=payload,
                             attachments=attachments, wamid=wamid), ""

    def _inbound(
        self, message: Mapping[str, Any], sender: str, names: Mapping[str, str], value: Mapping[str, Any],
        timestamp: datetime, *, wamid: str, text: str = "", payload: str | None = None,
        attachments: tuple[Attachment, ...] = (), edited: bool = False,
    ) -> Inbound:
        """An edit or revoke has the id ``whatsapp:edit:<original wamid>:<wamid>`` (``revoke:``) and
        ``edited``: the core keeps it as a version of the original, not as a new message."""
        digits = re.sub(r"\D", "", sender)
        return Inbound(
            bot=self.bot,
            channel=self.name,
            channel_user_id=sender,
            chat_id=sender,
            platform_message_id=self.namespaced(wamid),
            text=text,
            button_payload=payload,
            attachments=attachments,
            shared_phone=digits or None,  # WhatsApp verified the number itself
            display_name=names.get(sender),
            timestamp=timestamp,
            edited=edited,
            raw=dict(value),
        )

    def _receipt(self, status: Mapping[str, Any]) -> tuple[DeliveryReceipt | None, str]:
        wamid, state = _str(status, "id"), _str(status, "status")
        if not wamid:
            raise BadRequest("status without id")
        mapped = STATUS_MAP.get(state or "")
        if mapped is None:
            return None, f"status {str(state)[:40]!r} not handled"
        error = None
        errors = [e for e in status.get("errors") or [] if isinstance(e, Mapping)]
        if errors:
            error = f"{errors[0].get('code')}: {errors[0].get('title') or errors[0].get('message')}"
        return DeliveryReceipt(
            bot=self.bot, channel=self.name, platform_message_id=self.namespaced(wamid),
            status=mapped, timestamp=_timestamp(status.get("timestamp")), error=error,
        ), ""

    async def after_accept(self, payload: Mapping[str, Any], parsed: Parsed) -> None:
        for message in parsed.messages:
            if not message.edited:  # an edit's id is ours, not a wamid to show typing on
                self._last_inbound[message.chat_id] = message.platform_message_id.removeprefix("whatsapp:")

    # -- outbound --------------------------------------------------------------------
    async def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._graph("POST", f"{self.config.phone_number_id}/messages", json=body)

    def _base(self, message: Outbound, kind: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "messaging_product": "whatsapp", "recipient_type": "individual", "to": message.chat_id, "type": kind,
        }
        if message.reply_to and message.reply_to.startswith("whatsapp:"):
            body["context"] = {"message_id": message.reply_to.removeprefix("whatsapp:")}
        return body

    def build_bodies(self, message: Outbound) -> list[dict[str, Any]]:
        """The Graph request bodies for one outbound message (pure; the first is the main one)."""
        if message.template:
            body = self._base(message, "template")
            body["template"] = {"name": message.template, "language": {"code": self.config.template_language}}
            return [body]
        bodies: list[dict[str, Any]] = []
        text = self.signed_text(message)
        buttons = message.buttons
        if buttons:
            interactive = self._interactive(text or self.config.buttons_prompt, message)
            if interactive is not None:
                body = self._base(message, "interactive")
                body["interactive"] = interactive
                bodies.append(body)
                text = ""
            else:
                text = self.buttons_as_text(text, buttons)
        for chunk in self.split_text(text, MAX_TEXT) if text.strip() else []:
            body = self._base(message, "text")
            body["text"] = {"body": chunk, "preview_url": False}
            bodies.append(body)
        for item in message.attachments:
            kind = item.kind if item.kind in ("image", "document", "video", "audio", "sticker") else "document"
            media: dict[str, Any] = {"link": item.url} if item.url else {"id": item.file_id}
            if not (item.url or item.file_id):
                raise BadRequest(f"{item.kind} attachment without url or file_id")
            if item.caption and kind in ("image", "document", "video"):
                media["caption"] = item.caption
            if item.name and kind == "document":
                media["filename"] = item.name
            body = self._base(message, kind)
            body[kind] = media
            bodies.append(body)
        if not bodies:
            raise BadRequest("empty message")
        return bodies

    def _interactive(self, text: str, message: Outbound) -> dict[str, Any] | None:
        buttons = message.buttons
        if len(text) > MAX_INTERACTIVE_BODY or any(not b.payload or len(b.payload) > 200 for b in buttons):
            return None
        if len(buttons) <= MAX_REPLY_BUTTONS and all(len(b.title) <= MAX_BUTTON_TITLE for b in buttons):
            return {
                "type": "button",
                "body": {"text": text},
                "action": {"buttons": [{"type": "reply", "reply": {"id": b.payload, "title": b.title}} for b in buttons]},
            }
        if len(buttons) <= MAX_LIST_ROWS and all(len(b.title) <= MAX_ROW_DESCRIPTION for b in buttons):
            rows = []
            for b in buttons:
                row: dict[str, Any] = {"id": b.payload, "title": b.title}
                if len(b.title) > MAX_ROW_TITLE:
                    row = {"id": b.payload, "title": b.title[: MAX_ROW_TITLE - 1] + "…", "description": b.title}
                rows.append(row)
            return {
                "type": "list",
                "body": {"text": text},
                "action": {"button": self.config.list_button, "sections": [{"title": self.config.list_button, "rows": rows}]},
            }
        return None

    async def _graph(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """A Graph call other than a message send (media upload and look-up), errors mapped."""
        url = f"{self.config.api_base.rstrip('/')}/{self.config.api_version}/{path}"
        try:
            async with self._client().request(method, url, **kwargs) as response:
                try:
                    data = await response.json(content_type=None)
                except ValueError:
                    data = None
                if response.status >= 400 or not isinstance(data, dict) or "error" in data:
                    raise map_graph_error(response.status, data, response.headers.get("Retry-After"))
                return data
        except ChannelError:
            raise
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise TransientError(f"Graph API unreachable: {type(exc).__name__}: {exc}") from exc

    async def _uploaded(self, item: Attachment) -> Attachment:
        """An agent's file (kept by the core) uploaded to ``/media``: sent by its media id.

        The id is remembered (adapter kv, 25 days; WhatsApp keeps uploads 30) so a retried
        message does not upload twice. Only JPEG and PNG up to 5 MB go as images.
        """
        assert item.file_id is not None
        stored = await self.context.read_file(item.file_id)
        if stored is None:
            raise BadRequest(f"file {item.file_id} is no longer kept")
        kind = "image" if stored.mime_type in IMAGE_TYPES and stored.size <= MAX_IMAGE_BYTES else "document"
        key = f"media:{item.file_id}"
        media_id = await self.context.kv_get(key)
        if not isinstance(media_id, str):
            form = aiohttp.FormData(quote_fields=False)  # the file name as it is (not percent-encoded)
            form.add_field("messaging_product", "whatsapp")
            form.add_field("type", stored.mime_type)
            form.add_field("file", stored.data, filename=stored.name, content_type=stored.mime_type)
            answer = await self._graph("POST", f"{self.config.phone_number_id}/media", data=form)
            if not isinstance(answer.get("id"), str):
                raise TransientError("Graph API answered a media upload without an id")
            media_id = str(answer["id"])
            await self.context.kv_set(key, media_id, ttl_seconds=MEDIA_ID_TTL)
        return replace(item, kind=kind, file_id=media_id, url=None, name=stored.name)

    async def fetch_media(self, attachment: Attachment, max_bytes: int) -> StoredFile:
        """A customer's media: its URL from ``GET /{media-id}`` (unless the webhook gave one),
        then the bytes with the access token."""
        url = attachment.url
        mime = attachment.mime_type
        if not url:
            if not attachment.file_id:
                raise BadRequest("no WhatsApp media id")
            info = await self._graph("GET", attachment.file_id)
            url, mime = _str(info, "url"), _str(info, "mime_type") or mime
            size = info.get("file_size")
            if size is not None and str(size).isdigit() and int(size) > max_bytes:
                raise BadRequest(f"media is {size} bytes (limit {max_bytes})")
            if not url:
                raise TransientError("Graph API answered a media look-up without a url")
        try:
            async with self._client().get(url) as response:
                if response.status >= 400:
                    raise map_graph_error(response.status, None, response.headers.get("Retry-After"))
                data = await response.content.read(max_bytes + 1)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise TransientError(f"media download failed: {type(exc).__name__}") from exc
        if len(data) > max_bytes:
            raise BadRequest(f"media is over {max_bytes} bytes")
        name = attachment.name or f"whatsapp-{attachment.kind}"
        return StoredFile(attachment.file_id or name, mime or sniff(data) or "application/octet-stream", name, data)

    async def send(self, message: Outbound) -> str:
        if any(is_stored(a) for a in message.attachments):
            message = replace(message, attachments=tuple(
                [await self._uploaded(a) if is_stored(a) else a for a in message.attachments]))
        first: str | None = None
        for body in self.build_bodies(message):
            data = await self._post(body)
            sent = data.get("messages")
            wamid = sent[0].get("id") if isinstance(sent, list) and sent and isinstance(sent[0], dict) else None
            if not isinstance(wamid, str):
                raise TransientError("Graph API answered without a message id")
            first = first or wamid
        assert first is not None
        return self.namespaced(first)

    def _read_body(self, wamid: str, *, typing: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
        if typing:
            body["typing_indicator"] = {"type": "text"}
        return body

    async def mark_read(self, message: Inbound, *, typing: bool = True) -> None:
        """Blue ticks (``read_receipts``) plus, with ``typing_indicator`` and ``typing``, the typing
        indicator (cleared by our reply or after 25 s); called as the message's turn starts."""
        if not self.config.read_receipts:
            return
        wamid = message.platform_message_id.removeprefix("whatsapp:")
        typing = typing and self.config.typing_indicator
        await self._post(self._read_body(wamid, typing=typing))
        if typing:
            self._typing_shown[message.chat_id] = wamid

    async def typing(self, chat_id: str) -> None:
        """WhatsApp ties typing to a received message (and marks it read); without one known here,
        or when the read receipt already showed it, nothing to do."""
        wamid = self._last_inbound.get(chat_id)
        if wamid is None or not self.config.typing_indicator or self._typing_shown.get(chat_id) == wamid:
            return
        await self._post(self._read_body(wamid, typing=True))
        self._typing_shown[chat_id] = wamid

    def in_service_window(self, last_customer_message_age_seconds: float) -> bool:
        return last_customer_message_age_seconds < SERVICE_WINDOW_SECONDS


__all__ = ["WhatsAppAdapter", "WhatsAppConfig", "map_graph_error"]
