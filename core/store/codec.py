"""JSON-shaped encoding of the model for the stores (shared by SQLite and MongoDB).

Datetimes are encoded as ISO-8601 strings here; a store that has a native date
type may convert the ``*_at``/``timestamp`` fields itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core.model import (
    Attachment,
    Author,
    Button,
    Contact,
    Conversation,
    ConversationStatus,
    DeliveryReceipt,
    DeliveryStatus,
    Event,
    Identity,
    Inbound,
    Outbound,
)


def dt_to_str(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def str_to_dt(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _attachment_to_dict(a: Attachment) -> dict[str, Any]:
    return {k: v for k, v in (
        ("kind", a.kind), ("url", a.url), ("file_id", a.file_id), ("mime_type", a.mime_type),
        ("name", a.name), ("caption", a.caption), ("size", a.size),
    ) if v is not None}


def _attachment_from_dict(d: dict[str, Any]) -> Attachment:
    return Attachment(
        kind=d["kind"], url=d.get("url"), file_id=d.get("file_id"), mime_type=d.get("mime_type"),
        name=d.get("name"), caption=d.get("caption"), size=d.get("size"),
    )


def inbound_to_dict(m: Inbound) -> dict[str, Any]:
    return {
        "bot": m.bot,
        "channel": m.channel,
        "channel_user_id": m.channel_user_id,
        "chat_id": m.chat_id,
        "platform_message_id": m.platform_message_id,
        "text": m.text,
        "button_payload": m.button_payload,
        "attachments": [_attachment_to_dict(a) for a in m.attachments],
        "shared_phone": m.shared_phone,
        "display_name": m.display_name,
        "language_hint": m.language_hint,
        "timestamp": dt_to_str(m.timestamp),
        "edited": m.edited,
    }


def inbound_from_dict(d: dict[str, Any]) -> Inbound:
    return Inbound(
        bot=d["bot"],
        channel=d["channel"],
        channel_user_id=d["channel_user_id"],
        chat_id=d["chat_id"],
        platform_message_id=d["platform_message_id"],
        text=d.get("text") or "",
        button_payload=d.get("button_payload"),
        attachments=tuple(_attachment_from_dict(a) for a in d.get("attachments", ())),
        shared_phone=d.get("shared_phone"),
        display_name=d.get("display_name"),
        language_hint=d.get("language_hint"),
        timestamp=str_to_dt(d["timestamp"]),
        edited=bool(d.get("edited", False)),
    )


def outbound_to_dict(m: Outbound) -> dict[str, Any]:
    return {
        "id": m.id,
        "conversation_id": m.conversation_id,
        "bot": m.bot,
        "channel": m.channel,
        "chat_id": m.chat_id,
        "text": m.text,
        "buttons": [{"title": b.title, "payload": b.payload} for b in m.buttons],
        "attachments": [_attachment_to_dict(a) for a in m.attachments],
        "author": {"kind": m.author.kind, "name": m.author.name, "agent_id": m.author.agent_id},
        "template": m.template,
        "reply_to": m.reply_to,
        "created_at": dt_to_str(m.created_at),
    }


def outbound_from_dict(d: dict[str, Any]) -> Outbound:
    author = d.get("author") or {}
    return Outbound(
        id=d["id"],
        conversation_id=d["conversation_id"],
        bot=d["bot"],
        channel=d["channel"],
        chat_id=d["chat_id"],
        text=d.get("text") or "",
        buttons=tuple(Button(b["title"], b["payload"]) for b in d.get("buttons", ())),
        attachments=tuple(_attachment_from_dict(a) for a in d.get("attachments", ())),
        author=Author(kind=author.get("kind", "bot"), name=author.get("name"), agent_id=author.get("agent_id")),
        template=d.get("template"),
        reply_to=d.get("reply_to"),
        created_at=str_to_dt(d["created_at"]),
    )


def receipt_to_dict(r: DeliveryReceipt) -> dict[str, Any]:
    return {"bot": r.bot, "channel": r.channel, "platform_message_id": r.platform_message_id,
            "status": r.status.value, "timestamp": dt_to_str(r.timestamp), "error": r.error}


def receipt_from_dict(d: dict[str, Any]) -> DeliveryReceipt:
    return DeliveryReceipt(d["bot"], d["channel"], d["platform_message_id"], DeliveryStatus(d["status"]),
                           str_to_dt(d["timestamp"]), d.get("error"))


def event_to_dict(e: Event) -> dict[str, Any]:
    return {"type": e.type, "data": e.data, "channel": e.channel, "timestamp": dt_to_str(e.timestamp), "seq": e.seq}


def event_from_dict(d: dict[str, Any]) -> Event:
    return Event(
        type=d["type"], data=d.get("data") or {}, channel=d.get("channel"),
        timestamp=str_to_dt(d["timestamp"]), seq=int(d.get("seq", 0)),
    )


def contact_to_dict(c: Contact) -> dict[str, Any]:
    return {
        "id": c.id,
        "bot": c.bot,
        "identities": [
            {"channel": i.channel, "channel_user_id": i.channel_user_id, "chat_id": i.chat_id} for i in c.identities
        ],
        "display_name": c.display_name,
        "phone": c.phone,
        "last_agent": c.last_agent,
        "last_channel": c.last_channel,
        "consent": c.consent,
        "deleted": c.deleted,
        "created_at": dt_to_str(c.created_at),
    }


def contact_from_dict(d: dict[str, Any]) -> Contact:
    return Contact(
        id=d["id"],
        bot=d["bot"],
        identities=tuple(Identity(i["channel"], i["channel_user_id"], i["chat_id"]) for i in d.get("identities", ())),
        display_name=d.get("display_name"),
        phone=d.get("phone"),
        last_agent=d.get("last_agent"),
        last_channel=d.get("last_channel"),
        consent=bool(d.get("consent", True)),
        deleted=bool(d.get("deleted", False)),
        created_at=str_to_dt(d["created_at"]),
    )


def conversation_to_dict(c: Conversation) -> dict[str, Any]:
    return {
        "id": c.id,
        "bot": c.bot,
        "contact_id": c.contact_id,
        "status": c.status.value,
        "assigned_agent": c.assigned_agent,
        "desk_thread": c.desk_thread,
        "language": c.language,
        "slots": c.slots,
        "active_form": c.active_form,
        "handoff_reason": c.handoff_reason,
        "version": c.version,
        "created_at": dt_to_str(c.created_at),
        "updated_at": dt_to_str(c.updated_at),
    }


def conversation_from_dict(d: dict[str, Any]) -> Conversation:
    return Conversation(
        id=d["id"],
        bot=d["bot"],
        contact_id=d["contact_id"],
        status=ConversationStatus(d.get("status", "bot")),
        assigned_agent=d.get("assigned_agent"),
        desk_thread=d.get("desk_thread"),
        language=d.get("language"),
        slots=dict(d.get("slots") or {}),
        active_form=d.get("active_form"),
        handoff_reason=d.get("handoff_reason"),
        version=int(d.get("version", 0)),
        created_at=str_to_dt(d["created_at"]),
        updated_at=str_to_dt(d["updated_at"]),
    )
