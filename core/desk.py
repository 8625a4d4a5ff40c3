"""The seam between the core and an agents' desk (Slack, or the built-in web desk).

The handoff layer calls a `Desk` when a conversation needs a person and whenever
something happens in a handed-off conversation; the desk shows it to agents.
Agents' actions come back into the core through `DeskActions`, never by the
desk writing to the store itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.model import Contact, Conversation, Event

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
    """Everything an agent needs to take over without asking the customer again."""

    conversation: Conversation
    contact: Contact
    channel: str
    reason: str
    intent: str | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    sentiment: float | None = None
    last_messages: Sequence[Event] = ()
    previous_agent: str | None = None


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

    async def agent_reply(self, conversation_id: str, agent_id: str, agent_name: str, text: str) -> None:
        """Send ``text`` to the customer, unless `is_note` says it is a note: then it is stored as one."""

    async def internal_note(self, conversation_id: str, agent_id: str, agent_name: str, text: str) -> None: ...

    async def back_to_bot(self, conversation_id: str, agent_id: str, agent_name: str) -> Conversation: ...

    async def close(self, conversation_id: str, agent_id: str, agent_name: str) -> Conversation: ...
