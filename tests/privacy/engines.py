"""A deterministic engine with the deletion dialogue the demo domain has (ask → confirm → system action)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from core.engine import Reply, TurnInput, TurnOutput, Understanding
from core.model import Attachment, Conversation, Event

ASK = ("lösch meine daten", "delete my data")
YES = ("ja", "yes")
IMAGE = "https://example.org/map.png"


class ForgetDialogueEngine:
    """Echoes; "lösch meine daten" asks for confirmation; "ja" then sets ``system_action=forget_contact``."""

    async def handle(self, turn: TurnInput) -> TurnOutput:
        text = turn.message.text.strip()
        lowered = text.lower()
        conversation = turn.conversation
        pending = bool(conversation.slots.get("forget_pending"))
        meta: dict[str, Any] = {}
        if lowered in ASK:
            intent, reply = "request_data_deletion", "Sollen wir wirklich alle Ihre Daten löschen? (ja/nein)"
            conversation = replace(conversation, slots={**conversation.slots, "forget_pending": True})
        elif pending and lowered in YES:
            intent, reply = "affirm", "Ihre Daten werden jetzt gelöscht."
            meta = {"system_action": "forget_contact"}
            conversation = replace(conversation, slots={**conversation.slots, "forget_pending": False})
        elif text == "attachment only":
            intent, reply = "echo", ""
        else:
            intent, reply = "echo", f"echo: {text}"
            if pending:
                conversation = replace(conversation, slots={**conversation.slots, "forget_pending": False})
        user = Event("user", {"text": text, "message_id": turn.message.platform_message_id,
                              "parse_data": {"intent": {"name": intent, "confidence": 1.0}, "entities": []}})
        replies = (Reply(text=reply),) if reply else (Reply(attachments=(Attachment("image", url=IMAGE),)),)
        return TurnOutput(events=(user, Event("action", {"name": "action_listen"})), replies=replies,
                          conversation=conversation, understanding=self.understand(text), meta=meta)

    def understand(self, text: str) -> Understanding:
        return Understanding(intent="echo", confidence=1.0)

    def render(self, response: str, conversation: Conversation, channel: str, **variables: Any) -> list[Reply]:
        return [Reply(text=response)]
