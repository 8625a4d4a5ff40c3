"""The seam between the core and an agents' desk (Slack, or the built-in web desk).

The handoff layer calls a `Desk` when a conversation needs a person and whenever
something happens in a handed-off conversation; the desk shows it to agents.
Agents' actions come back into the core through `DeskActions`, never by the
desk writing to the store itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from core.model import Attachment, Contact, Conversation, Event

NOTE_PREFIX = "!"
"""The one rule for notes in every desk: a text starting with this (after leading space) is an
internal note. The server enforces it (`core.handoff.service.HandoffService.agent_reply` stores such
a text as a note and never sends it), so no desk, button or shortcut can leak one to a customer."""


def is_note(text: str) -> bool:
    """Is this agent text an internal note by the prefix rule?"""
    return text.lstrip().startswith(NOTE_PREFIX)


def note_text(text: str) -> str:
    """The note without its prefix (a text that is not a note is returned stripped)."""
    stripped = text.strip()
    return stripped[len(NOTE_PREFIX):].strip() if stripped.startswith(NOTE_PREFIX) else stripped


@dataclass(frozen=True, slots=True)
class HandoffSummary:
    """Everything an agent needs to take over without asking the customer again.

    ``intent`` and ``trigger_text`` are those of the customer message that caused the handoff
    (text masked); ``topic`` is what the customer talked about with the bot before (the newest
    other intent). ``since`` is when the handoff began; ``open_now`` is False for a handoff
    queued outside business hours, with ``back_at`` the next opening if known.
    """

    conversation: Conversation
    contact: Contact
    channel: str
    reason: str
    intent: str | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    sentiment: float | None = None
    last_messages: Sequence[Event] = ()
    previous_agent: str | None = None
    trigger_text: str | None = None
    topic: str | None = None
    since: datetime | None = None
    open_now: bool = True
    back_at: datetime | None = None

    @property
    def customer(self) -> str:
        return customer_name(self.contact, self.conversation.language)


def handoff_trigger(history: Sequence[Event]) -> tuple[Event | None, Event | None]:
    """The newest handoff event (with a reason) and the customer message of that turn, if any."""
    for index in range(len(history) - 1, -1, -1):
        event = history[index]
        if event.type == "handoff" and event.data.get("reason"):
            user = next((e for e in reversed(history[:index]) if e.type == "user"), None)
            return event, user
    return None, None


def event_intent(event: Event) -> str | None:
    """The intent the NLU (or a handoff hook) recorded on a ``user`` event."""
    name = ((event.data.get("parse_data") or {}).get("intent") or {}).get("name")
    return str(name) if name else None


_GUEST = {"de": "Gast", "en": "Guest"}


def customer_name(contact: Contact | None, language: str | None = None) -> str:
    """What agents call a customer: the platform's display name, else a stable short alias
    (``Gast 4F2A``) derived from the contact id, so two anonymous web chat guests differ."""
    if contact is not None and contact.display_name:
        return contact.display_name
    seed = contact.id if contact is not None else ""
    alias = hashlib.sha256(seed.encode()).hexdigest()[:4].upper()
    return f"{_GUEST.get((language or 'en').split('-')[0], _GUEST['en'])} {alias}"


PRIORITY_URGENT = 60
PRIORITY_HIGH = 30


def priority(sentiment: float | None, waited_seconds: float) -> int:
    """0-100: frustration (negative sentiment) weighs up to 60, waiting up to 40 (full after 20 min)."""
    frustration = max(0.0, -(sentiment or 0.0))
    waiting = min(1.0, max(0.0, waited_seconds) / 1200)
    return round(60 * min(1.0, frustration) + 40 * waiting)


def priority_label(score: int) -> str:
    return "urgent" if score >= PRIORITY_URGENT else "high" if score >= PRIORITY_HIGH else "normal"


@dataclass(frozen=True, slots=True)
class DeadLetterNotice:
    """A customer message whose turn failed for good, as agents see it (text masked).

    Desks that define ``async def dead_letter(self, notice)`` are told (an optional method:
    older desks keep working). Agents replay or drop it on the web desk or with
    ``switchboard dead-letters``.
    """

    id: int
    bot: str
    conversation_id: str
    channel: str
    text: str
    error: str
    attempts: int
    customer_told: bool


class Desk(Protocol):
    """Where agents see and answer handed-off conversations."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def open_handoff(self, summary: HandoffSummary) -> str | None:
        """Announce a handoff; return the desk thread id (stored on the conversation)."""

    async def customer_message(self, conversation: Conversation, event: Event) -> None:
        """A customer's message (already masked) in a handed-off conversation."""

    async def status_changed(self, conversation: Conversation, detail: str | None = None) -> None:
        """Claimed, back to bot, closed, re-pinged, CSAT received..."""


class DeskActions(Protocol):
    """What a desk may ask of the core on behalf of an agent (implemented by core.handoff)."""

    async def claim(self, conversation_id: str, agent_id: str, agent_name: str) -> Conversation: ...

    async def agent_reply(self, conversation_id: str, agent_id: str, agent_name: str, text: str, *,
                          attachments: Sequence[Attachment] = ()) -> None:
        """Send ``text`` (and files) to the customer, unless `is_note` says it is a note: then it is
        stored as one, files included."""

    async def internal_note(self, conversation_id: str, agent_id: str, agent_name: str, text: str, *,
                            attachments: Sequence[Attachment] = ()) -> None: ...

    async def back_to_bot(self, conversation_id: str, agent_id: str, agent_name: str) -> Conversation: ...

    async def close(self, conversation_id: str, agent_id: str, agent_name: str) -> Conversation: ...

    async def transfer(self, conversation_id: str, agent_id: str, agent_name: str, *, to_agent: str | None,
                       to_name: str | None = None, note: str = "") -> Conversation:
        """To another agent (``to_agent`` such as ``web:ben``), or back to the queue (None), with a note."""
