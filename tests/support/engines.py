"""A tiny deterministic engine for pipeline tests that must not depend on NLU training.

It answers "echo: <text>" (with one button when the text contains "buttons"),
and logs Rasa events like the real engine does.
"""

from __future__ import annotations

from typing import Any

from core.engine import Reply, TurnInput, TurnOutput, Understanding
from core.model import Button, Conversation, Event


class EchoEngine:
    def __init__(self, prefix: str = "echo: ") -> None:
        self.prefix = prefix
        self.seen: list[str] = []

    async def handle(self, turn: TurnInput) -> TurnOutput:
        text = turn.message.text
        self.seen.append(text)
        user = Event("user", {
            "text": text,
            "message_id": turn.message.platform_message_id,
            "parse_data": {"intent": {"name": "echo", "confidence": 1.0}, "entities": []},
        })
        buttons = (Button("Yes", "/affirm"), Button("No", "/deny")) if "buttons" in text else ()
        return TurnOutput(
            events=(user, Event("action", {"name": "utter_echo"}), Event("action", {"name": "action_listen"})),
            replies=(Reply(text=f"{self.prefix}{text}", buttons=buttons),),
            conversation=turn.conversation,
            understanding=self.understand(text),
        )

    def understand(self, text: str) -> Understanding:
        return Understanding(intent="echo", confidence=1.0)

    def render(self, response: str, conversation: Conversation, channel: str, **variables: Any) -> list[Reply]:
        return [Reply(text=response)]
