"""The seam between the turn runner and a bot's brain (the Rasa-compatible engine).

The runner hands an engine one customer message with the conversation state
and transcript; the engine answers with Rasa-vocabulary events, replies and the
new conversation state. The engine never stores anything and never knows the
channel's platform; it may read ``message.channel`` to pick ``channel:``
response variations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.model import Attachment, Button, Contact, Conversation, Event, Inbound


@dataclass(frozen=True, slots=True)
class Reply:
    """A bot utterance, platform-neutral."""

    text: str = ""
    buttons: tuple[Button, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    response: str | None = None  # the domain response name (utter_...), if any
    custom: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class HandoffRequest:
    """The engine (or a custom action) asks for a person."""

    reason: str  # requested | fallback | frustration | intent | action
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Understanding:
    """NLU output for one message."""

    intent: str | None
    confidence: float = 0.0
    entities: tuple[dict[str, Any], ...] = ()
    language: str | None = None
    ranking: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class TurnInput:
    conversation: Conversation
    contact: Contact
    message: Inbound
    history: Sequence[Event]  # transcript before this message, oldest first


@dataclass(frozen=True, slots=True)
class TurnOutput:
    """``events`` start with the ``user`` event (with ``parse_data``) of the message."""

    events: tuple[Event, ...]
    replies: tuple[Reply, ...]
    conversation: Conversation
    understanding: Understanding | None = None
    handoff: HandoffRequest | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class Engine(Protocol):
    """A bot's dialogue engine."""

    async def handle(self, turn: TurnInput) -> TurnOutput: ...

    def understand(self, text: str) -> Understanding:
        """NLU only (used by the handoff layer for messages relayed to agents)."""
        ...

    def render(self, response: str, conversation: Conversation, channel: str, **variables: Any) -> list[Reply]:
        """A domain response (``utter_...``) in the conversation's language, for system messages."""
        ...
