"""The normalised message model every adapter produces and the core consumes.

Nothing in here knows a platform. Adapters turn platform payloads into `Inbound`
values and turn `Outbound` values into platform calls; the core only sees these
types. All timestamps are timezone-aware UTC.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from core.errors import BadRequest


def utcnow() -> datetime:
    """Current time, timezone-aware UTC (the only clock the core uses)."""
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """A new opaque id such as ``conv_3f2a...``; ids are never reused."""
    return f"{prefix}_{uuid.uuid4().hex}"


@dataclass(frozen=True, slots=True)
class Button:
    """A quick-reply button: ``title`` is shown, ``payload`` comes back when pressed."""

    title: str
    payload: str


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file or media item; ``url`` or the platform ``file_id`` locates it."""

    kind: str  # image, document, audio, video, voice, sticker, location, contact
    url: str | None = None
    file_id: str | None = None
    mime_type: str | None = None
    name: str | None = None
    caption: str | None = None
    size: int | None = None  # bytes, where the platform says


def _check_text(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string, not {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"{name} is not valid Unicode (lone surrogate)") from None


@dataclass(frozen=True, slots=True)
class Inbound:
    """One customer message, as normalised by an adapter.

    ``platform_message_id`` is the platform's id, namespaced by the adapter
    (``telegram:10000``) and is the de-duplication key together with ``channel``.
    """

    bot: str
    channel: str
    channel_user_id: str
    chat_id: str
    platform_message_id: str
    text: str = ""
    button_payload: str | None = None
    attachments: tuple[Attachment, ...] = ()
    shared_phone: str | None = None  # a phone number the user shared and verified as their own
    display_name: str | None = None
    language_hint: str | None = None
    timestamp: datetime = field(default_factory=utcnow)
    edited: bool = False
    raw: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Platform payloads are outside input: a wrong type or broken Unicode in any of
        # these fields is a malformed request (400), never an error deep in the store.
        for name in ("bot", "channel", "channel_user_id", "chat_id", "platform_message_id", "text"):
            _check_text(name, getattr(self, name))
        for name in ("button_payload", "shared_phone", "display_name", "language_hint"):
            value = getattr(self, name)
            if value is not None:
                _check_text(name, value)


class DeliveryStatus(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """A platform's report about one of our messages (WhatsApp statuses, ...)."""

    bot: str
    channel: str
    platform_message_id: str
    status: DeliveryStatus
    timestamp: datetime = field(default_factory=utcnow)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Author:
    """Who speaks in an outbound message: the bot, or a named human agent."""

    kind: str = "bot"  # bot | agent | system
    name: str | None = None
    agent_id: str | None = None

    @property
    def is_agent(self) -> bool:
        return self.kind == "agent"


BOT = Author()


@dataclass(frozen=True, slots=True)
class Outbound:
    """A message for the customer, addressed to one channel and chat."""

    conversation_id: str
    bot: str
    channel: str
    chat_id: str
    text: str = ""
    buttons: tuple[Button, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    author: Author = BOT
    template: str | None = None  # a pre-approved template name (WhatsApp outside 24 h)
    reply_to: str | None = None
    id: str = field(default_factory=lambda: new_id("out"))
    created_at: datetime = field(default_factory=utcnow)


class ConversationStatus(enum.StrEnum):
    BOT = "bot"
    WAITING = "waiting"  # handed off, no agent yet
    AGENT = "agent"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Identity:
    """One way to reach a contact: a channel and the user id on that channel."""

    channel: str
    channel_user_id: str
    chat_id: str


@dataclass(frozen=True, slots=True)
class Contact:
    """One person, across channels, as seen by one bot (tenant)."""

    id: str
    bot: str
    identities: tuple[Identity, ...] = ()
    display_name: str | None = None
    phone: str | None = None  # verified phone, E.164 digits without '+'
    last_agent: str | None = None
    last_channel: str | None = None
    consent: bool = True
    deleted: bool = False
    created_at: datetime = field(default_factory=utcnow)

    def identity(self, channel: str) -> Identity | None:
        return next((i for i in self.identities if i.channel == channel), None)

    def reply_identity(self) -> Identity | None:
        """The identity to answer on: the channel used last, else the first."""
        if self.last_channel:
            found = self.identity(self.last_channel)
            if found:
                return found
        return self.identities[0] if self.identities else None


@dataclass(frozen=True, slots=True)
class Conversation:
    """The state of a contact's conversation with one bot.

    ``version`` increases on every saved change; stores use it for optimistic
    concurrency so two processes can never both commit a turn.
    """

    id: str
    bot: str
    contact_id: str
    status: ConversationStatus = ConversationStatus.BOT
    assigned_agent: str | None = None
    desk_thread: str | None = None
    language: str | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    active_form: str | None = None
    handoff_reason: str | None = None
    version: int = 0
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)

    def evolve(self, **changes: Any) -> Conversation:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Event:
    """One transcript entry, in Rasa's event vocabulary plus our own.

    Rasa types: ``user``, ``bot``, ``slot``, ``action``, ``active_loop``,
    ``followup``, ``restart``, ``session_started``, ``user_featurization``...
    Ours: ``handoff``, ``agent``, ``note``, ``delivery``, ``status``, ``csat``.
    ``data`` carries the event's fields in Rasa's JSON shape; ``seq`` is assigned
    by the store and orders a conversation's transcript.
    """

    type: str
    data: dict[str, Any] = field(default_factory=dict)
    channel: str | None = None
    timestamp: datetime = field(default_factory=utcnow)
    seq: int = 0

    def as_rasa(self) -> dict[str, Any]:
        """The event as rasa-sdk's tracker expects it (``event`` + ``timestamp``)."""
        payload = {"event": self.type, "timestamp": self.timestamp.timestamp()}
        payload.update(self.data)
        return payload


@dataclass(frozen=True, slots=True)
class TurnResult:
    """What one conversation turn produced; committed to the store atomically."""

    events: tuple[Event, ...] = ()
    outbound: tuple[Outbound, ...] = ()
    conversation: Conversation | None = None
