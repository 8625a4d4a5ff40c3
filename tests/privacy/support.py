"""Shared helpers for identity and privacy tests: real platform fixtures parsed by the real adapters."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from channels.telegram import TelegramAdapter
from channels.whatsapp import WhatsAppAdapter
from core.identity import IdentityService
from core.model import Contact, Event, Inbound
from core.store.base import Store

# Verbatim copies of the shared platform fixtures (tests/identity/fixtures/README.md).
FIXTURES = Path(__file__).resolve().parents[1] / "identity" / "fixtures"

PHONE_NUMBER_ID = "1122334455667"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def telegram(bot: str = "demo") -> TelegramAdapter:
    return TelegramAdapter.from_config(bot, {"token": "123456:TEST"}, None)  # type: ignore[arg-type]


def whatsapp(bot: str = "demo") -> WhatsAppAdapter:
    return WhatsAppAdapter.from_config(bot, {
        "access_token": "token", "app_secret": "secret", "verify_token": "verify", "phone_number_id": PHONE_NUMBER_ID,
    }, None)  # type: ignore[arg-type]


def parse_one(adapter: TelegramAdapter | WhatsAppAdapter, payload: dict[str, Any]) -> Inbound:
    parsed = adapter.parse(payload)
    assert len(parsed.messages) == 1, parsed.ignored
    return parsed.messages[0]


def telegram_update(name: str, *, text: str | None = None, date: int | None = None,
                    update_id: int | None = None) -> dict[str, Any]:
    payload = fixture(f"telegram/{name}")
    if text is not None:
        payload["message"]["text"] = text
    if date is not None:
        payload["message"]["date"] = date
    if update_id is not None:
        payload["update_id"] = update_id
    return payload


def whatsapp_text(wa_id: str, text: str, *, when: int, wamid: str, name: str = "Anna") -> dict[str, Any]:
    """The real ``message_text`` webhook, from another sender."""
    payload = copy.deepcopy(fixture("whatsapp/message_text.json"))
    value = payload["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = PHONE_NUMBER_ID
    value["contacts"][0]["wa_id"] = wa_id
    value["contacts"][0]["profile"]["name"] = name
    message = value["messages"][0]
    message.update({"from": wa_id, "id": wamid, "timestamp": str(when), "text": {"body": text}})
    return payload


def webchat(bot: str, session: str, text: str, *, when: datetime | None = None, mid: str = "1") -> Inbound:
    return Inbound(bot=bot, channel="webchat", channel_user_id=session, chat_id=session,
                   platform_message_id=f"webchat:{mid}:{uuid.uuid4().hex[:12]}", text=text,
                   timestamp=when or datetime.now(UTC))


async def receive(store: Store, identity: IdentityService, inbound: Inbound) -> Contact:
    """What ingest + a turn do with a message, minus the engine: resolve, then record the user event."""
    contact = await identity.resolve(inbound)
    conversation = await store.conversation_for(inbound.bot, contact.id)
    await store.append_events(conversation.id, [
        Event("user", {"text": inbound.text, "message_id": inbound.platform_message_id},
              channel=inbound.channel, timestamp=inbound.timestamp),
    ])
    return contact


def file_bytes(db_path: Path) -> bytes:
    """The SQLite main file and its -wal file (the places erased text could survive)."""
    data = db_path.read_bytes()
    wal = db_path.with_name(db_path.name + "-wal")
    if wal.exists():
        data += wal.read_bytes()
    return data
