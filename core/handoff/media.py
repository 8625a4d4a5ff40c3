"""Media and other non-text messages: an honest answer instead of the NLU fallback.

`MediaInterceptor` runs after the handoff interceptor (so media sent while a person is
answering are relayed to the desk like any message) and before the engine. A message
with attachments and no text (a photo without caption, a voice note, a sticker, a
location, a contact card, WhatsApp's ``unsupported``) gets the localised answer for its
kind: what was received, that the bot cannot read it, how to reach a person. The turn's
user event has the intent ``media_<kind>`` (never ``nlu_fallback``, so two media in a
row do not hand over) and keeps the media reference (``attachments``: kind, file id or
URL, mime type, name, caption) for an agent to open; a location or contact card is also
stored as structured data (``location`` / ``contacts``). A photo with a caption is an
ordinary turn: the engine understands the caption. Sharing one's own phone number
(Telegram's request-contact; the identity is linked by the pipeline) is acknowledged.

Edits and revokes (WhatsApp; the adapter marks them ``edited`` with the id
``whatsapp:edit:<original>:<wamid>``) are kept as ``note`` events referencing the original
message (``kind: customer_edit | customer_revoke``) and not answered as new messages. A
WhatsApp "user changed number" system message is noted too and `NumberChange` (after
commit) moves the contact's WhatsApp identity to the new number: the same contact, so the
history is kept.

`ReadReceipts` (first interceptor, never answers): marks the inbound message read on
channels with read receipts (WhatsApp's blue ticks and typing indicator) when its turn
starts, in the background so the turn does not wait for the platform; a chat's messages
that follow within `RECEIPT_INTERVAL` (2 s, up to half as long again at random, so chats that
began together do not send their receipts together) are marked together, by one receipt for the latest.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import structlog

from core.engine import Reply, TurnOutput
from core.language.turn import catalogue, remember, turn_language, with_language_event
from core.model import Attachment, Event, Identity, Inbound
from core.pipeline.hooks import TurnContext

log = structlog.get_logger(__name__)

KINDS = frozenset({"image", "video", "audio", "voice", "document", "sticker", "location", "contact",
                   "unsupported", "order", "form_reply"})
CONTACT_SHARED_INTENT = "contact_shared"


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def location_data(item: Attachment) -> dict[str, Any]:
    """A location attachment (``geo:lat,lon``) as structured data."""
    latitude = longitude = None
    if item.url and item.url.startswith("geo:"):
        parts = item.url[len("geo:"):].split(";")[0].split(",")
        if len(parts) >= 2:
            latitude, longitude = _number(parts[0]), _number(parts[1])
    return {"latitude": latitude, "longitude": longitude, "name": item.name, "address": item.caption}


def contact_data(item: Attachment) -> dict[str, Any]:
    """A contact card attachment (``tel:+49...``) as structured data."""
    phone = item.url[len("tel:"):] if item.url and item.url.startswith("tel:") else None
    return {"name": item.name, "phone": phone}


def attachment_data(item: Attachment) -> dict[str, Any]:
    """The media reference an agent needs to open it later."""
    return {"kind": item.kind, "url": item.url, "file_id": item.file_id, "mime_type": item.mime_type,
            "name": item.name, "caption": item.caption, "size": item.size}


def media_kind(message: Inbound) -> str | None:
    """The kind this message is answered as, or None when it is an ordinary turn."""
    if message.button_payload or message.text.strip():
        return None  # a caption is understood like any text
    if not message.attachments:
        return CONTACT_SHARED_INTENT if message.shared_phone else None  # Telegram's own-contact share
    kind = message.attachments[0].kind
    return kind if kind in KINDS else "other"


def _person_word(ctx: TurnContext, language: str) -> str:
    texts = catalogue(ctx)
    words = [w.strip() for w in getattr(getattr(ctx.bot_config, "handoff", None), "request_words", []) if w.strip()]
    preferred = texts.raw("handoff_word", language)
    return preferred if not words or preferred.lower() in (w.lower() for w in words) else words[0]


def user_event(message: Inbound, intent: str) -> Event:
    """The transcript's user event for a media message (intent ``media_<kind>``, never a fallback)."""
    data: dict[str, Any] = {
        "text": message.text,
        "message_id": message.platform_message_id,
        "input_channel": message.channel,
        "parse_data": {"text": message.text, "intent": {"name": intent, "confidence": 1.0}, "entities": []},
    }
    if message.attachments:
        data["attachments"] = [attachment_data(a) for a in message.attachments]
    locations = [location_data(a) for a in message.attachments if a.kind == "location"]
    contacts = [contact_data(a) for a in message.attachments if a.kind == "contact"]
    if locations:
        data["location"] = locations[0]
    if contacts:
        data["contacts"] = contacts
    if intent == CONTACT_SHARED_INTENT:
        data["shared_phone"] = message.shared_phone
    return Event("user", data, channel=message.channel)


def version_of(message: Inbound) -> tuple[str, str] | None:
    """``("edit" | "revoke", original platform message id)`` for an edit or revoke the adapter
    marked so (``<channel>:edit:<original>:<id>``), else None."""
    if not message.edited:
        return None
    parts = message.platform_message_id.split(":", 3)
    if len(parts) == 4 and parts[1] in ("edit", "revoke") and parts[2]:
        return parts[1], f"{parts[0]}:{parts[2]}"
    return None


def version_event(message: Inbound, kind: str, original: str) -> Event:
    """An edit or revoke as a transcript note that references the original message."""
    if kind == "edit":
        text = f"customer edited message {original}: {message.text}"
    else:
        text = f"customer deleted message {original}"
    return Event("note", {"kind": f"customer_{kind}", "text": text, "original_message_id": original,
                          "message_id": message.platform_message_id,
                          "new_text": message.text if kind == "edit" else None,
                          "agent_id": None, "agent_name": None}, channel=message.channel)


NUMBER_CHANGED = "number_changed"


def number_change_event(message: Inbound, item: Attachment) -> Event:
    return Event("note", {"kind": "customer_number_changed", "text": item.name or "customer changed number",
                          "old_id": message.channel_user_id, "new_id": item.file_id,
                          "message_id": message.platform_message_id, "agent_id": None, "agent_name": None},
                 channel=message.channel)


class MediaInterceptor:
    """Answers media and non-text messages honestly, without the engine; keeps edits and
    revokes as versions and records number changes (no answer to either)."""

    async def intercept(self, ctx: TurnContext) -> TurnOutput | None:
        message = ctx.turn.message
        version = version_of(message)
        if version is not None:
            log.info("media.version_kept", conversation=ctx.turn.conversation.id, kind=version[0])
            return TurnOutput(events=(version_event(message, *version),), replies=(),
                              conversation=ctx.turn.conversation)
        changed = next((a for a in message.attachments if a.kind == NUMBER_CHANGED), None)
        if changed is not None and changed.file_id:
            ctx.state[NUMBER_CHANGED] = changed.file_id
            return TurnOutput(events=(number_change_event(message, changed),), replies=(),
                              conversation=ctx.turn.conversation)
        kind = media_kind(message)
        if kind is None:
            return None
        language = turn_language(ctx)
        texts = catalogue(ctx)
        if kind == CONTACT_SHARED_INTENT:
            intent, text = CONTACT_SHARED_INTENT, texts.text("contact_shared_ack", language)
        else:
            intent = f"media_{kind}"
            text = texts.text(f"media_{kind}", language, word=_person_word(ctx, language))
        conversation = remember(ctx, ctx.turn.conversation)
        log.info("media.answered", conversation=conversation.id, kind=kind, channel=message.channel)
        return TurnOutput(
            events=with_language_event(ctx, (user_event(message, intent), Event("action", {"name": "action_listen"}))),
            replies=(Reply(text=text),),
            conversation=conversation,
        )


class NumberChange:
    """After the turn: a WhatsApp "user changed number" moves the contact's identity to the new
    number (same contact, so the history is kept); a contact already known under the new number
    is merged into it (`core.identity.IdentityService.link`, given by the handoff plugin)."""

    def __init__(self, store: Any, identity: Callable[[], Any | None]) -> None:
        self.store = store
        self.identity = identity

    def has_work(self, ctx: TurnContext, output: TurnOutput) -> bool:
        return NUMBER_CHANGED in ctx.state

    async def committed(self, ctx: TurnContext, output: TurnOutput, events: Sequence[Event]) -> None:
        if NUMBER_CHANGED not in ctx.state:
            return
        new_id = str(ctx.state[NUMBER_CHANGED])
        message = ctx.turn.message
        moved = Identity(message.channel, new_id, new_id)
        contact_id = ctx.turn.contact.id
        others = [c for c in await self.store.find_contacts(ctx.turn.contact.bot, identity=moved) if c.id != contact_id]
        service = self.identity()
        for other in others:  # the customer wrote from the new number already: one person, one history
            if service is not None:
                await service.link(contact_id, other.id, actor="platform", via="number_change")
        contact = await self.store.get_contact(contact_id) or ctx.turn.contact
        identities = tuple(i for i in contact.identities
                           if not (i.channel == message.channel and i.channel_user_id == message.channel_user_id))
        if moved not in identities:
            identities = (*identities, moved)
        await self.store.save_contact(replace(contact, identities=identities,
                                              phone=re.sub(r"\D", "", new_id) or contact.phone))  # a wa_id is E.164 digits
        log.info("identity.number_changed", contact=contact.id, merged=len(others))


RECEIPT_INTERVAL = 2.0  # seconds: at most one read receipt per chat this often (the latest message's)
# Each window lasts up to this share longer, at random: chats that began together (a busy
# moment, a reply to a broadcast) would otherwise end their windows together, and every
# window's receipt would go out in one burst, again every interval (bench: the slowest 1 %
# of replies came in clusters every 2 s).
RECEIPT_SPREAD = 0.5


class _ChatReceipts:
    """One chat's receipt window: the newest message held back until the window ends."""

    __slots__ = ("channel", "held", "timer")

    def __init__(self) -> None:
        self.held: Inbound | None = None
        self.channel: Any = None
        self.timer: asyncio.TimerHandle | None = None


class ReadReceipts:
    """Marks each inbound message read when its turn starts (channels with read receipts only).

    Coalesced per chat: the first message of a quiet chat is marked at once (with the typing
    indicator); messages that follow within the chat's window (``interval`` seconds, up to
    ``spread`` of it longer at random) wait for its end, where only the latest is marked,
    without the typing indicator, which its reply may already have cleared. A platform marks every earlier message of the chat read with it (WhatsApp
    does), so a customer sending fast costs one platform call per window, not one per message.
    """

    def __init__(self, channel_for: Callable[[Inbound], Any | None], interval: float = RECEIPT_INTERVAL,
                 spread: float = RECEIPT_SPREAD, rng: random.Random | None = None) -> None:
        self.channel_for = channel_for
        self.interval = interval
        self.spread = spread
        self._random = rng or random.Random()
        self._tasks: set[asyncio.Task[None]] = set()
        self._chats: dict[tuple[str, str, str], _ChatReceipts] = {}

    @property
    def open_windows(self) -> int:
        """Chats inside a receipt window (a receipt went out less than ``interval`` seconds ago)."""
        return len(self._chats)

    async def intercept(self, ctx: TurnContext) -> TurnOutput | None:
        message = ctx.turn.message
        channel = self.channel_for(message)
        capabilities = getattr(channel, "capabilities", None)
        if channel is None or not getattr(capabilities, "read_receipts", False) or message.edited:
            return None
        key = (message.bot, message.channel, message.chat_id)
        chat = self._chats.get(key)
        if chat is not None:  # inside the chat's window: the window's end marks the latest message
            chat.held, chat.channel = message, channel
            return None
        chat = self._chats[key] = _ChatReceipts()
        chat.timer = asyncio.get_running_loop().call_later(self._window(), self._window_end, key)
        self._send(channel, message, typing=True)
        return None

    def _window(self) -> float:
        """One window's length: ``interval``, plus up to ``spread`` of it so chats drift apart."""
        return self.interval * (1.0 + self.spread * self._random.random())

    def _window_end(self, key: tuple[str, str, str]) -> None:
        chat = self._chats.get(key)
        if chat is None:
            return
        if chat.held is None:
            del self._chats[key]  # quiet: the next message is marked at once
            return
        held, chat.held = chat.held, None
        chat.timer = asyncio.get_running_loop().call_later(self._window(), self._window_end, key)
        self._send(chat.channel, held, typing=False)

    def _send(self, channel: Any, message: Inbound, *, typing: bool) -> None:
        task = asyncio.get_running_loop().create_task(self._mark(channel, message, typing))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _mark(channel: Any, message: Inbound, typing: bool) -> None:
        try:
            await channel.mark_read(message, typing=typing)
        except Exception as exc:  # noqa: BLE001 - a missing blue tick never fails a turn
            log.warning("channel.mark_read_failed", channel=message.channel, error=str(exc))

    async def drain(self) -> None:
        """Mark the held messages now and wait for receipts in flight (tests, shutdown)."""
        for key, chat in list(self._chats.items()):
            if chat.timer is not None:
                chat.timer.cancel()
            del self._chats[key]
            if chat.held is not None:
                self._send(chat.channel, chat.held, typing=False)
        pending: Sequence[asyncio.Task[None]] = list(self._tasks)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
