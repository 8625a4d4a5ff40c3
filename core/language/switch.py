"""`LanguageSwitchInterceptor`: "English please" / "auf Deutsch bitte" / "Türkçe lütfen" is
answered by the farm ("Of course, I'll continue in English. How can I help?") instead of the
bot's fallback, and the language is remembered. A language *button* goes to the bot as usual
(its payload is an intent the bot may know); the engine's language choice honours it either way.
"""

from __future__ import annotations

import structlog

from core.engine import Reply, TurnOutput
from core.language.turn import catalogue, choose_for_turn, remember
from core.model import Event
from core.nlu.language_choice import EXPLICIT, explicit_choice
from core.pipeline.hooks import TurnContext

log = structlog.get_logger(__name__)

INTENT = "switchboard_language"


class LanguageSwitchInterceptor:
    async def intercept(self, ctx: TurnContext) -> TurnOutput | None:
        message = ctx.turn.message
        if message.button_payload or not message.text or message.text.startswith("/"):
            return None
        if explicit_choice(message.text) is None:  # the choice can be EXPLICIT only then: skip making it
            return None
        choice = choose_for_turn(ctx)
        if choice.source != EXPLICIT:
            return None
        conversation = remember(ctx, ctx.turn.conversation)
        log.info("language.switched", conversation=conversation.id, language=choice.language)
        user = Event("user", {
            "text": message.text, "message_id": message.platform_message_id, "input_channel": message.channel,
            "parse_data": {"text": message.text, "intent": {"name": INTENT, "confidence": 1.0}, "entities": []},
        }, channel=message.channel)
        return TurnOutput(
            events=(user, Event("slot", {"name": "language", "value": choice.language}),
                    Event("action", {"name": "action_listen"})),
            replies=(Reply(text=catalogue(ctx).text("language_switched", choice.language)),),
            conversation=conversation,
        )
