"""Telegram Bot API adapter (python-telegram-bot 22.8 as the client and parser).

Inbound: webhook (``POST /webhooks/{bot}/telegram``, secret-token header checked) or
long polling (the default when no ``webhook_url`` is set; one poller per bot across
the farm via the ``telegram-poll:<bot>`` lease, offset kept in the store's kv).
Outbound: PTB's `telegram.Bot` pointed at ``api_base``; every PTB exception is mapped
to ``core.errors`` in `map_telegram_error`. PTB never retries; the core's outbox does.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import warnings
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, timedelta
from typing import Any, ClassVar, TypeVar

import structlog
from pydantic import Field, model_validator
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Message, Update
from telegram import error as tg
from telegram.constants import ChatAction
from telegram.warnings import PTBDeprecationWarning, PTBUserWarning

from channels.base import (
    AdapterConfig,
    AdapterContext,
    Capabilities,
    ChannelAdapter,
    Parsed,
    RateLimits,
    Route,
)
from channels.telegram_request import AiohttpRequest
from core.errors import (
    BadRequest,
    ChannelError,
    RateLimited,
    RecipientUnavailable,
    StoreError,
    TransientError,
    Unauthorized,
)
from core.files import StoredFile, is_stored, sniff
from core.model import Attachment, Inbound, Outbound, utcnow

log = structlog.get_logger(__name__)

T = TypeVar("T")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
MAX_PHOTO_BYTES = 10_000_000  # sendPhoto's limit; larger images go as documents
PHOTO_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})

# We call getUpdates through do_api_request to get raw dicts (one parse path for
# webhook and polling); PTB warns that a typed method exists, which is intended here.
PARTS_TTL = 86400.0  # seconds a long message's per-part progress is kept for its retries

warnings.filterwarnings("ignore", message=r"Please use 'Bot\.getUpdates'", category=PTBUserWarning)


class TelegramConfig(AdapterConfig):
    """``bots.<bot>.channels.telegram`` in farm.yml."""

    token: str = Field(min_length=1, description="Bot token from @BotFather, e.g. ${TELEGRAM_TOKEN}")
    webhook_secret: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_-]{1,256}$", description="setWebhook secret_token"
    )
    webhook_url: str | None = Field(default=None, description="Public URL; unset = long polling")
    set_webhook: bool = Field(default=True, description="Call setWebhook at start in webhook mode")
    api_base: str = Field(default="https://api.telegram.org", description="Bot API server (local server, fakes)")
    allow_groups: bool = False
    poll_timeout: float = Field(default=25.0, ge=0, le=50, description="getUpdates long-poll seconds")
    lease_ttl: float = Field(default=60.0, gt=0)
    lease_retry: float = Field(default=5.0, gt=0, description="Seconds between lease attempts when not leader")
    timeout: float = Field(default=10.0, gt=0, description="HTTP timeout per API call")
    max_connections: int = Field(default=64, ge=1)

    @model_validator(mode="after")
    def _check(self) -> TelegramConfig:
        if self.webhook_url and not self.webhook_secret:
            raise ValueError("webhook_url needs webhook_secret (Telegram's secret_token header)")
        if self.lease_ttl <= self.poll_timeout + self.timeout:
            raise ValueError("lease_ttl must exceed poll_timeout + timeout")
        return self

    def base_urls(self) -> tuple[str, str]:
        """PTB's ``base_url`` and ``base_file_url`` for ``api_base``."""
        base = self.api_base.rstrip("/")
        base = base.removesuffix("/bot")
        return f"{base}/bot", f"{base}/file/bot"


class ReplyBot(Bot):
    """PTB's `Bot` with `send_text`: ``sendMessage`` answering only the new message's id.

    `Bot.send_message` builds a whole `Message` from Telegram's answer (chat, sender, date,
    entities): about 50 µs of CPU per reply, a twelfth of what a Telegram message costs the
    farm in all (``bench/``); the sender needs only the id. The request, its defaults and its
    errors stay PTB's own: ``_post`` is the step every `Bot` method (and PTB's `ExtBot`) sends with.
    """

    async def send_text(self, chat_id: int | str, text: str, reply_markup: InlineKeyboardMarkup | None = None) -> int:
        result = await self._post("sendMessage", {"chat_id": chat_id, "text": text, "reply_markup": reply_markup})
        return int(result["message_id"])


def map_telegram_error(exc: tg.TelegramError) -> ChannelError:
    """The one place where PTB exceptions become ``core.errors`` (order matters: subclasses first)."""
    message = str(exc)
    if isinstance(exc, tg.RetryAfter):
        with warnings.catch_warnings():  # int vs timedelta deprecation: we accept both
            warnings.simplefilter("ignore", PTBDeprecationWarning)
            wait = exc.retry_after
        seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
        return RateLimited(message, retry_after=seconds)
    if isinstance(exc, tg.Forbidden):
        return RecipientUnavailable(message)
    if isinstance(exc, tg.InvalidToken):
        return Unauthorized(message)
    if isinstance(exc, tg.ChatMigrated):
        return BadRequest(f"{message} (new chat id {exc.new_chat_id})")
    if isinstance(exc, tg.BadRequest):  # a NetworkError subclass in PTB: check it first
        return BadRequest(message)
    if isinstance(exc, (tg.TimedOut, tg.NetworkError, tg.Conflict)):
        return TransientError(message)
    return TransientError(message)


def _digits(phone: str) -> str:
    return re.sub(r"\D", "", phone)


def _fill_legacy(data: Any, key: str = "") -> Any:
    """A copy of an old-style update with fields PTB 22 requires but old samples lack.

    Telegram's own documentation samples predate ``User.is_bot``,
    ``CallbackQuery.chat_instance`` and ``file_unique_id``; real updates carry them.
    """
    if isinstance(data, list):
        return [_fill_legacy(item, key) for item in data]
    if not isinstance(data, dict):
        return data
    out = {k: _fill_legacy(v, k) for k, v in data.items()}
    if key in ("from", "user", "forward_from", "via_bot"):
        out.setdefault("is_bot", False)
    if key == "callback_query":
        out.setdefault("chat_instance", "")
    if "file_id" in out and "file_unique_id" not in out:
        out["file_unique_id"] = out["file_id"]
    return out


class TelegramAdapter(ChannelAdapter):
    """Telegram for one bot: webhook or long polling in, PTB's Bot out."""

    name: ClassVar[str] = "telegram"
    capabilities: ClassVar[Capabilities] = Capabilities(
        buttons=True, max_buttons=100, lists=False, media=True, typing=True, edit=True, read_receipts=False
    )
    rate_limits: ClassVar[RateLimits] = RateLimits(per_bot=30.0, per_chat=1.0, per_chat_burst=3)
    Config: ClassVar[type[AdapterConfig]] = TelegramConfig
    forged_status: ClassVar[int] = 403

    config: TelegramConfig

    def __init__(self, bot: str, config: AdapterConfig, context: AdapterContext) -> None:
        assert isinstance(config, TelegramConfig)
        super().__init__(bot, config, context)
        self._client: ReplyBot | None = None
        self._requests: tuple[AiohttpRequest, AiohttpRequest] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._holding_lease = False
        self._prepared = False  # the poll leader's start-up steps (deleteWebhook, offset) succeeded
        self._offset: int | None = None

    # -- lifecycle -----------------------------------------------------------------
    @property
    def polling(self) -> bool:
        """Long polling unless a webhook URL is configured."""
        return not self.config.webhook_url

    @property
    def lease_name(self) -> str:
        return f"telegram-poll:{self.bot}"

    @property
    def offset_key(self) -> str:
        return f"telegram:offset:{self.bot}"

    async def _ensure_client(self) -> ReplyBot:
        if self._client is None:
            timeout = self.config.timeout
            send = AiohttpRequest(
                connection_pool_size=self.config.max_connections,
                read_timeout=timeout, write_timeout=timeout, connect_timeout=timeout, pool_timeout=timeout,
            )
            updates = AiohttpRequest(
                connection_pool_size=1, read_timeout=timeout, write_timeout=timeout, connect_timeout=timeout,
            )
            await asyncio.gather(send.initialize(), updates.initialize())
            base_url, base_file_url = self.config.base_urls()
            self._requests = (send, updates)
            self._client = ReplyBot(
                self.config.token, base_url=base_url, base_file_url=base_file_url,
                request=send, get_updates_request=updates,
            )
        return self._client

    async def start(self) -> None:
        client = await self._ensure_client()
        if self.polling:
            if self._poller is None or self._poller.done():
                self._poller = asyncio.create_task(self._poll_forever(), name=f"telegram-poll:{self.bot}")
            return
        if self.config.set_webhook and not await self._set_webhook(client):
            # Retried in the background until it succeeds (start-up does not wait for it).
            task = asyncio.create_task(self._set_webhook_until_done(), name=f"telegram-webhook:{self.bot}")
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _set_webhook(self, client: Bot) -> bool:
        assert self.config.webhook_url
        try:
            await self._call(client.set_webhook(
                self.config.webhook_url, secret_token=self.config.webhook_secret,
                allowed_updates=ALLOWED_UPDATES,
            ))
        except (TransientError, RateLimited) as exc:
            log.warning("telegram.webhook.set_failed", bot=self.bot, error=str(exc))
            return False
        log.info("telegram.webhook.set", bot=self.bot)
        return True

    async def _set_webhook_until_done(self) -> None:
        failures = 0
        while True:
            failures += 1
            await asyncio.sleep(min(30.0, 0.25 * 2 ** min(failures, 7)))
            try:
                if await self._set_webhook(await self._ensure_client()):
                    return
            except ChannelError as exc:  # permanent (bad URL, bad token): say so and stop trying
                log.error("telegram.webhook.set_rejected", bot=self.bot, error=str(exc))
                return

    async def stop(self) -> None:
        poller, self._poller = self._poller, None
        if poller is not None:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)
        self._prepared = False
        if self._holding_lease:
            self._holding_lease = False
            try:
                await self.context.release_lease(self.lease_name)
            except StoreError as exc:
                log.warning("telegram.poll.release_failed", bot=self.bot, error=str(exc))
        background = list(self._background)
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        requests, self._requests, self._client = self._requests, None, None
        if requests is not None:
            await asyncio.gather(*(r.shutdown() for r in requests), return_exceptions=True)

    # -- inbound ---------------------------------------------------------------------
    def routes(self) -> Sequence[Route]:
        return (Route("POST", f"/webhooks/{self.bot}/telegram", self.handle_webhook, name=f"telegram-{self.bot}"),)

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        secret = self.config.webhook_secret
        if not secret:
            raise Unauthorized("webhook not enabled: no webhook_secret configured")
        given = headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            raise Unauthorized("wrong or missing secret token")

    def parse(self, payload: Mapping[str, Any]) -> Parsed:
        if not isinstance(payload, Mapping):
            raise BadRequest("update is not an object")
        update_id = payload.get("update_id")
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            raise BadRequest("update without an integer update_id")
        data = dict(payload)
        try:
            try:
                update = Update.de_json(data, None)
            except (TypeError, KeyError):
                update = Update.de_json(_fill_legacy(data), None)
            return self._normalise(update, data)
        except BadRequest:
            raise
        except Exception as exc:  # PTB raises whatever a malformed field provokes
            raise BadRequest(f"malformed update {update_id}: {type(exc).__name__}") from exc

    def _normalise(self, update: Update, raw: dict[str, Any]) -> Parsed:
        uid = update.update_id
        if update.callback_query is not None:
            return self._from_callback(update, raw)
        message = update.message or update.edited_message
        if message is None:
            kinds = [k for k in raw if k != "update_id"]
            return Parsed(ignored=(f"update type {kinds[0] if kinds else 'empty'} not handled",))
        edited = update.edited_message is not None
        user = message.from_user
        if user is None:
            return Parsed(ignored=("message without a sender",))
        if user.is_bot:
            return Parsed(ignored=("message from a bot",))
        chat = message.chat
        if chat.type != "private" and not self.config.allow_groups:
            return Parsed(ignored=(f"{chat.type} chat (allow_groups is off)",))
        text = message.text or message.caption or ""
        attachments = self._attachments(message)
        shared_phone = None
        contact = message.contact
        if contact is not None:
            if contact.user_id is not None and contact.user_id == user.id:
                shared_phone = _digits(contact.phone_number) or None
            else:
                attachments = (*attachments, Attachment(
                    kind="contact", url=f"tel:+{_digits(contact.phone_number)}",
                    name=" ".join(p for p in (contact.first_name, contact.last_name) if p),
                ))
        if not text and not attachments and shared_phone is None:
            return Parsed(ignored=("message without text, media or contact",))
        when = (message.edit_date if edited else None) or message.date
        inbound = Inbound(
            bot=self.bot,
            channel=self.name,
            channel_user_id=str(user.id),
            chat_id=str(chat.id),
            platform_message_id=self.namespaced(f"edit:{uid}" if edited else uid),
            text=text,
            attachments=attachments,
            shared_phone=shared_phone,
            display_name=_display_name(user.full_name, user.username),
            language_hint=user.language_code,
            timestamp=when.astimezone(UTC),
            edited=edited,
            raw=raw,
        )
        return Parsed(messages=(inbound,))

    def _from_callback(self, update: Update, raw: dict[str, Any]) -> Parsed:
        query = update.callback_query
        assert query is not None
        if query.data is None:
            return Parsed(ignored=("callback query without data (game)",))
        user = query.from_user
        message = query.message
        chat_id = message.chat.id if message is not None else user.id
        if message is not None and message.chat.type != "private" and not self.config.allow_groups:
            return Parsed(ignored=(f"{message.chat.type} chat (allow_groups is off)",))
        title = query.data
        markup = getattr(message, "reply_markup", None)
        if isinstance(markup, InlineKeyboardMarkup):
            for row in markup.inline_keyboard:
                for button in row:
                    if button.callback_data == query.data:
                        title = button.text
        inbound = Inbound(
            bot=self.bot,
            channel=self.name,
            channel_user_id=str(user.id),
            chat_id=str(chat_id),
            platform_message_id=self.namespaced(update.update_id),
            text=title,
            button_payload=query.data,
            display_name=_display_name(user.full_name, user.username),
            language_hint=user.language_code,
            timestamp=utcnow(),  # a button press carries no date; the time we received it
            raw=raw,
        )
        return Parsed(messages=(inbound,))

    @staticmethod
    def _attachments(message: Message) -> tuple[Attachment, ...]:
        found: list[Attachment] = []
        caption = message.caption
        if message.photo:
            largest = message.photo[-1]
            found.append(Attachment(kind="image", file_id=largest.file_id, caption=caption, size=largest.file_size))
        if message.document is not None:
            doc = message.document
            found.append(Attachment(kind="document", file_id=doc.file_id, mime_type=doc.mime_type,
                                    name=doc.file_name, caption=caption, size=doc.file_size))
        for kind in ("voice", "audio", "video", "video_note", "sticker"):
            media = getattr(message, kind)
            if media is not None:
                found.append(Attachment(kind="video" if kind == "video_note" else kind, file_id=media.file_id,
                                        mime_type=getattr(media, "mime_type", None), caption=caption,
                                        size=media.file_size))
        if message.location is not None:
            loc = message.location
            venue = message.venue  # a shared place: its title and address come with the location
            found.append(Attachment(kind="location", url=f"geo:{loc.latitude},{loc.longitude}",
                                    name=venue.title if venue is not None else None,
                                    caption=venue.address if venue is not None else None))
        return tuple(found)

    async def after_accept(self, payload: Mapping[str, Any], parsed: Parsed) -> None:
        """Answer a button press at once so the client stops its spinner (in the background)."""
        query = payload.get("callback_query")
        if isinstance(query, Mapping) and isinstance(query.get("id"), str):
            task = asyncio.create_task(self._answer_callback(query["id"]))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _answer_callback(self, query_id: str) -> None:
        try:
            client = await self._ensure_client()
            await self._call(client.answer_callback_query(query_id))
        except ChannelError as exc:
            log.warning("telegram.callback.answer_failed", bot=self.bot, error=str(exc))

    # -- polling ---------------------------------------------------------------------
    async def _poll_forever(self) -> None:
        failures = 0
        while True:
            try:
                if not await self.context.acquire_lease(self.lease_name, self.config.lease_ttl):
                    if self._holding_lease:
                        log.info("telegram.poll.lease_lost", bot=self.bot)
                        self._holding_lease = self._prepared = False
                    await asyncio.sleep(self.config.lease_retry)
                    continue
                self._holding_lease = True  # held now: released on stop
                if not self._prepared:
                    # Until these start-up steps succeed they are tried again (with the
                    # backoff below) before every poll: polling while a webhook is still set
                    # only earns 409 Conflict.
                    await self._prepare_polling()
                    self._prepared = True
                await self.poll_once()
                failures = 0
            except asyncio.CancelledError:
                raise
            except RateLimited as exc:
                log.warning("telegram.poll.rate_limited", bot=self.bot, retry_after=exc.retry_after)
                await asyncio.sleep(exc.retry_after)
            except (ChannelError, StoreError) as exc:
                failures += 1
                log.warning("telegram.poll.failed", bot=self.bot, error=str(exc), kind=type(exc).__name__,
                            failures=failures)
                await asyncio.sleep(min(30.0, 0.25 * 2 ** min(failures, 7)))
            except Exception:
                failures += 1
                log.exception("telegram.poll.crashed", bot=self.bot, failures=failures)
                await asyncio.sleep(min(30.0, 0.25 * 2 ** min(failures, 7)))

    async def _prepare_polling(self) -> None:
        """Start-up steps of a new poll leader: no webhook, and the offset other leaders left."""
        client = await self._ensure_client()
        await self._call(client.delete_webhook(drop_pending_updates=False))
        stored = await self.context.kv_get(self.offset_key)
        self._offset = int(stored) if stored is not None else None
        log.info("telegram.poll.leader", bot=self.bot, offset=self._offset)

    async def poll_once(self) -> int:
        """One getUpdates round: accept each update, then persist the next offset; returns the count."""
        client = await self._ensure_client()
        kwargs: dict[str, Any] = {"timeout": int(self.config.poll_timeout), "allowed_updates": ALLOWED_UPDATES}
        if self._offset is not None:
            kwargs["offset"] = self._offset
        result = await self._call(client.do_api_request(
            "getUpdates", api_kwargs=kwargs, read_timeout=self.config.poll_timeout + self.config.timeout,
        ))
        if not isinstance(result, list):
            raise TransientError("getUpdates answered something that is not a list")
        start = self._offset
        try:
            for raw in result:
                uid = raw.get("update_id") if isinstance(raw, dict) else None
                if not isinstance(uid, int):
                    log.warning("telegram.poll.skipped", bot=self.bot, reason="update without update_id")
                    continue
                if self._offset is not None and uid < self._offset:
                    continue
                await self._ingest(raw)
                self._offset = uid + 1
        finally:
            if self._offset is not None and self._offset != start:
                await self.context.kv_set(self.offset_key, self._offset)
        return len(result)

    async def _ingest(self, raw: dict[str, Any]) -> None:
        try:
            parsed = self.parse(raw)
        except BadRequest as exc:
            log.warning("telegram.poll.rejected", bot=self.bot, reason=str(exc))
            return
        for reason in parsed.ignored:
            log.info("channel.webhook.ignored", channel=self.name, bot=self.bot, reason=reason)
        if parsed.messages or parsed.receipts:
            await self.context.accept(parsed)
        await self.after_accept(raw, parsed)

    # -- outbound --------------------------------------------------------------------
    async def _call(self, awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except tg.TelegramError as exc:
            raise map_telegram_error(exc) from exc

    @staticmethod
    def _chat(chat_id: str) -> int | str:
        return int(chat_id) if re.fullmatch(r"-?\d+", chat_id) else chat_id

    def _keyboard(self, message: Outbound) -> InlineKeyboardMarkup | None:
        buttons = message.buttons
        if not buttons or len(buttons) > self.capabilities.max_buttons:
            return None
        if any(len(b.payload.encode()) > MAX_CALLBACK_DATA or not b.payload for b in buttons):
            return None
        return InlineKeyboardMarkup([[InlineKeyboardButton(b.title, callback_data=b.payload)] for b in buttons])

    async def send(self, message: Outbound) -> str:
        client = await self._ensure_client()
        chat = self._chat(message.chat_id)
        keyboard = self._keyboard(message)
        signed = self.signed_text(message)
        text = signed if keyboard or not message.buttons else self.buttons_as_text(signed, message.buttons)
        media = [a for a in message.attachments if a.kind in ("image", "document", "video", "audio", "voice")]
        for item in media:
            if not (item.url or item.file_id):
                raise BadRequest(f"{item.kind} attachment without url or file_id")
        if not text.strip() and not media:
            raise BadRequest("empty message")
        if len(media) == 1 and len(text) <= MAX_CAPTION:
            sent = await self._send_media(client, chat, media[0], text, keyboard)
            return self.namespaced(f"{message.chat_id}:{sent.message_id}")
        chunks = self.split_text(text, MAX_TEXT) if text.strip() else []
        def text_part(chunk: str, markup: InlineKeyboardMarkup | None) -> Callable[[], Awaitable[int]]:
            return lambda: self._call(client.send_text(chat, chunk, reply_markup=markup))

        def media_part(item: Attachment) -> Callable[[], Awaitable[int]]:
            async def send() -> int:
                return (await self._send_media(client, chat, item, item.caption or "", None)).message_id
            return send

        parts = [text_part(chunk, keyboard if i == len(chunks) - 1 else None) for i, chunk in enumerate(chunks)]
        parts += [media_part(item) for item in media]
        first_id = await self._send_parts(message, parts)
        return self.namespaced(f"{message.chat_id}:{first_id}")

    async def _send_parts(self, message: Outbound, parts: Sequence[Callable[[], Awaitable[int]]]) -> int:
        """Send the parts in order; the first one's message id.

        A message sent in several parts records its progress after each part (adapter kv), so
        a retry of the whole message (a later part failed) sends only the parts not yet sent.
        A single part costs no store call.
        """
        key = f"parts:{message.id}"
        progress = await self.context.kv_get(key) if len(parts) > 1 else None
        done, first_id = (int(progress["sent"]), progress["first"]) if isinstance(progress, dict) else (0, None)
        for index, part in enumerate(parts):
            if index < done:
                continue
            sent = await part()
            first_id = first_id if first_id is not None else sent
            if index < len(parts) - 1:
                await self.context.kv_set(key, {"sent": index + 1, "first": first_id}, ttl_seconds=PARTS_TTL)
        assert first_id is not None
        return int(first_id)

    async def _send_media(
        self, client: Bot, chat: int | str, item: Attachment, caption: str, keyboard: InlineKeyboardMarkup | None
    ) -> Message:
        source: str | InputFile | None = item.url or item.file_id
        assert source is not None
        photo = item.kind == "image"
        if is_stored(item):  # an agent's file: uploaded as multipart (sendPhoto up to 10 MB, else sendDocument)
            stored = await self.context.read_file(str(item.file_id))
            if stored is None:
                raise BadRequest(f"file {item.file_id} is no longer kept")
            source = InputFile(stored.data, filename=stored.name)
            photo = stored.mime_type in PHOTO_TYPES and stored.size <= MAX_PHOTO_BYTES
        if photo:
            return await self._call(client.send_photo(chat, source, caption=caption or None, reply_markup=keyboard))
        return await self._call(client.send_document(chat, source, caption=caption or None, reply_markup=keyboard))

    async def fetch_media(self, attachment: Attachment, max_bytes: int) -> StoredFile:
        """A customer's photo or document (getFile, then the file URL; bots may download up to 20 MB)."""
        if not attachment.file_id:
            raise BadRequest("no Telegram file_id")
        client = await self._ensure_client()
        found = await self._call(client.get_file(attachment.file_id))
        if found.file_size is not None and found.file_size > max_bytes:
            raise BadRequest(f"file is {found.file_size} bytes (limit {max_bytes})")
        data = bytes(await self._call(found.download_as_bytearray()))
        mime = attachment.mime_type or sniff(data) or ("image/jpeg" if attachment.kind == "image"
                                                       else "application/octet-stream")
        name = attachment.name or (found.file_path or "").rsplit("/", 1)[-1] or f"telegram-{attachment.kind}"
        return StoredFile(attachment.file_id, mime, name, data)

    async def typing(self, chat_id: str) -> None:
        client = await self._ensure_client()
        await self._call(client.send_chat_action(self._chat(chat_id), ChatAction.TYPING))


__all__ = ["TelegramAdapter", "TelegramConfig", "map_telegram_error"]


def _display_name(full_name: str | None, username: str | None) -> str | None:
    """What agents see: the name with the @username that finds the person in Telegram
    (``Anna Schmidt (@anna_s)``); either alone if the other is missing."""
    if full_name and username:
        return f"{full_name} (@{username})"
    return full_name or (f"@{username}" if username else None)
