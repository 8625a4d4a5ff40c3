"""What the web chat page shows besides messages, read from the transcript.

The transcript is the one source: the conversation's handoff state (``status`` events),
the customer's message receipts (``user`` events, and bot/agent answers after them), the
detected language (the ``language`` slot). See `channels.webchat` for what each state means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from core.model import Attachment, Event


@dataclass(frozen=True, slots=True)
class ChatState:
    """What the page shows in its header and on the customer's messages."""

    state: str = "bot"  # bot | waiting | agent
    agent: str | None = None
    position: int | None = None
    minutes: int | None = None
    language: str | None = None
    receipts: tuple[tuple[str, str], ...] = ()
    open_now: bool = True  # the handoff began within business hours (else no wait in minutes is promised)

    def state_frame(self) -> dict[str, Any]:
        return {"type": "state", "state": self.state, "position": self.position, "minutes": self.minutes,
                "agent": self.agent}


def with_position(state: ChatState, position: int | None, minutes: int | None) -> ChatState:
    if state.state != "waiting":
        return state
    return replace(state, position=position, minutes=minutes if state.open_now else None)


def _client_id(message_id: object) -> str | None:
    return str(message_id).rsplit(":", 1)[-1] if message_id else None


def conversation_language(events: Sequence[Event]) -> str | None:
    for event in reversed(events):
        if event.type == "slot" and event.data.get("name") == "language" and isinstance(event.data.get("value"), str):
            return str(event.data["value"])
    return None


def relevant(events: Sequence[Event]) -> list[Event]:
    """The events `chat_state` reads (the rest of a transcript need not be kept)."""
    return [e for e in events if e.type in ("status", "user", "bot") or (e.type == "handoff" and e.data.get("reason"))
            or (e.type == "slot" and e.data.get("name") == "language")]


def chat_state(events: Sequence[Event]) -> ChatState:
    """Waiting/agent state, the customer's message receipts and the language, from the transcript.

    A customer message is *delivered* once its ``user`` event is in the transcript (the bot's
    turn took it, or it was relayed to the desk) and *read* once a bot or agent message follows.
    """
    state, agent, open_now = "bot", None, True
    receipts: dict[str, str] = {}
    unread: list[str] = []
    for event in events:
        if event.type == "handoff" and event.data.get("reason"):
            open_now = bool(event.data.get("open", True))
        elif event.type == "status":
            status = event.data.get("status")
            state = status if status in ("waiting", "agent") else "bot"
            agent = event.data.get("agent_name") if state == "agent" else None
        elif event.type == "user":
            client_id = _client_id(event.data.get("message_id"))
            if client_id:
                receipts[client_id] = "delivered"
                unread.append(client_id)
        elif event.type == "bot":
            author = (event.data.get("metadata") or {}).get("author", "bot")
            if author in ("bot", "agent") and event.data.get("text"):
                for client_id in unread:
                    receipts[client_id] = "read"
                unread.clear()
    recent = tuple(list(receipts.items())[-50:])
    return ChatState(state, agent if isinstance(agent, str) else None, None, None,
                     conversation_language(events), recent, open_now)


def attachment_json(a: Attachment) -> dict[str, Any]:
    """An outbound attachment for the page: a bot response's image or document by URL, or an
    agent's file by its id in the web chat's files store (``f_...``, fetched with the session)."""
    own = a.file_id if a.file_id and a.file_id.startswith("f_") else None
    return {"kind": a.kind, "id": own, "url": a.url, "mime_type": a.mime_type, "name": a.name or a.caption}


def _agent_files(data: dict[str, Any]) -> list[dict[str, Any]]:
    """An agent's files on a ``bot`` event (kept by the core as ``sbfile_...``), as the page shows them."""
    return [{"kind": a.get("kind"), "id": f"f_{a['file_id']}", "url": None, "mime_type": a.get("mime_type"),
             "name": a.get("name")} for a in data.get("attachments") or []
            if isinstance(a, dict) and str(a.get("file_id") or "").startswith("sbfile_")]


def event_to_message(event: Event) -> dict[str, Any] | None:
    """A transcript event as the page shows it, or None for events the customer does not see."""
    data = event.data
    if event.type == "user":
        text = data.get("text")
        attachments = [{"kind": a.get("kind"), "id": a.get("file_id"), "mime_type": a.get("mime_type"),
                        "name": a.get("name")} for a in data.get("attachments") or [] if isinstance(a, dict)]
        if not text and not attachments:
            return None
        message_id = str(data.get("message_id") or f"seq{event.seq}")
        return {"type": "message", "id": message_id.rsplit(":", 1)[-1], "role": "user", "author": None,
                "text": text or "", "buttons": [], "attachments": attachments, "ts": event.timestamp.isoformat()}
    if event.type == "bot":
        meta = data.get("metadata") or {}
        role = meta.get("author", "bot")
        buttons = (data.get("data") or {}).get("buttons") or []
        return {"type": "message", "id": meta.get("outbound_id") or f"seq{event.seq}",
                "role": role if role in ("bot", "agent", "system") else "bot",
                "author": meta.get("author_name"), "text": data.get("text") or "",
                "buttons": buttons, "attachments": _agent_files(data), "ts": event.timestamp.isoformat()}
    return None
