"""A small deterministic engine with a form, fallbacks and a handoff action, for handoff tests.

It speaks the engine seam like the Rasa engine: Rasa events (``user`` with parse_data,
``action``, ``active_loop``, ``slot``), ``active_form`` on the conversation, and
``TurnOutput.handoff`` for a custom action asking for a person. Intents by keyword:

- "bestellung" / "order"   → order_status: starts ``order_status_form`` asking for the order number;
  inside the form a number fills ``order_number`` and ends the form.
- "kündigen" / "cancel"    → cancel_contract
- "beschwerde" / "complaint" → complaint
- "special"                → a custom action that returns a handoff event (reason "action")
- "hallo" / "hello" / "hi" → greet;  anything else → nlu_fallback (action_default_fallback)
"""

from __future__ import annotations

import re
from typing import Any

from core.engine import HandoffRequest, Reply, TurnInput, TurnOutput, Understanding
from core.model import Conversation, Event

ORDER_QUESTION = {"de": "Wie lautet Ihre Bestellnummer?", "en": "What is your order number?"}
FALLBACK = {"de": "Das habe ich leider nicht verstanden.", "en": "Sorry, I did not understand that."}


class ScriptedEngine:
    def __init__(self) -> None:
        self.handled: list[str] = []

    def understand(self, text: str) -> Understanding:
        folded = text.lower()
        for intent, words in (
            ("order_status", ("bestellung", "order")),
            ("cancel_contract", ("kündigen", "kuendigen", "cancel")),
            ("complaint", ("beschwerde", "complaint")),
            ("special", ("special",)),
            ("greet", ("hallo", "hello", "hi")),
        ):
            if any(re.search(rf"\b{w}", folded) for w in words):
                return Understanding(intent=intent, confidence=0.95, language="de")
        if re.fullmatch(r"\s*\d{4,}\s*", text):
            return Understanding(intent="inform", confidence=0.9)
        return Understanding(intent="nlu_fallback", confidence=0.2)

    async def handle(self, turn: TurnInput) -> TurnOutput:
        text = turn.message.text
        self.handled.append(text)
        conversation = turn.conversation
        language = conversation.language or "de"
        understanding = self.understand(text)
        user = Event("user", {
            "text": text, "message_id": turn.message.platform_message_id,
            "parse_data": {"intent": {"name": understanding.intent, "confidence": understanding.confidence},
                           "entities": []},
        })
        events: list[Event] = [user]
        replies: list[Reply] = []
        handoff = None
        if conversation.active_form == "order_status_form" and understanding.intent == "inform":
            number = text.strip()
            events += [Event("slot", {"name": "order_number", "value": number}),
                       Event("active_loop", {"name": None})]
            conversation = conversation.evolve(active_form=None, slots={**conversation.slots, "order_number": number})
            replies.append(Reply(text=f"Order {number} is on its way."))
        elif understanding.intent == "order_status":
            events += [Event("action", {"name": "order_status_form"}),
                       Event("active_loop", {"name": "order_status_form"})]
            conversation = conversation.evolve(active_form="order_status_form", language=language)
            replies.append(Reply(text=ORDER_QUESTION[language], response="utter_ask_order_number"))
        elif understanding.intent == "nlu_fallback":
            events.append(Event("action", {"name": "action_default_fallback"}))
            replies.append(Reply(text=FALLBACK[language], response="utter_default"))
        elif understanding.intent == "special":
            events.append(Event("action", {"name": "action_special"}))
            handoff = HandoffRequest(reason="action", detail="special case")
        else:
            events.append(Event("action", {"name": f"utter_{understanding.intent}"}))
            replies.append(Reply(text=f"[{understanding.intent}]"))
        events.append(Event("action", {"name": "action_listen"}))
        return TurnOutput(events=tuple(events), replies=tuple(replies), conversation=conversation,
                          understanding=understanding, handoff=handoff)

    def render(self, response: str, conversation: Conversation, channel: str, **variables: Any) -> list[Reply]:
        return [Reply(text=response)]
