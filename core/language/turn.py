"""The reply language of one turn, for the turn hooks (handoff, privacy) that speak before or
after the engine: the same `core.nlu.language_choice.choose_language` the engine uses, made
once per turn and kept in ``ctx.state``, so the disclosure, the handoff message and the bot's
own replies are always in one language.
"""

from __future__ import annotations

import structlog

from core.engine import TurnOutput
from core.i18n import Catalogue, builtin, for_bot
from core.model import Conversation, Event
from core.nlu.language_choice import (
    LanguageChoice,
    LanguageSignals,
    choose_language,
    explicit_choice,
    phone_language,
)
from core.pipeline.hooks import TurnContext

log = structlog.get_logger(__name__)

_STATE_KEY = "language_choice"


def choose_for_turn(ctx: TurnContext) -> LanguageChoice:
    """This turn's language choice (the engine's ``choose_language`` when it has one)."""
    cached = ctx.state.get(_STATE_KEY)
    if isinstance(cached, LanguageChoice):
        return cached
    turn = ctx.turn
    chooser = getattr(ctx.engine, "choose_language", None)
    if callable(chooser):
        choice = chooser(turn.message, turn.conversation, turn.contact)
        assert isinstance(choice, LanguageChoice)
    else:  # an engine without one: its NLU's language counts as a confident detection
        message = turn.message
        payload = message.button_payload or (message.text if message.text.startswith("/") else None)
        detected = None
        if message.text and not payload:
            try:
                detected = ctx.engine.understand(message.text).language
            except Exception:  # the language is a nicety here; the turn goes on in the default
                log.exception("language.understand_failed", conversation=turn.conversation.id)
        config = ctx.bot_config
        default = str(getattr(config, "default_language", None) or "en")
        settings = getattr(config, "language", None)
        choice = choose_language(LanguageSignals(
            # a config without a language list: any language the catalogues speak
            languages=list(getattr(config, "languages", None) or [default, *builtin()]), default=default,
            explicit=explicit_choice(None if payload else message.text, payload),
            detected=detected, confidence=1.0 if detected else 0.0,
            previous=turn.conversation.language, hint=message.language_hint,
            phone=phone_language((turn.contact.phone if turn.contact else None) or message.shared_phone,
                                 getattr(settings, "phone_prefixes", None)),
        ))
    ctx.state[_STATE_KEY] = choice
    return choice


def turn_language(ctx: TurnContext, output: TurnOutput | None = None) -> str:
    """The language this turn answers in. ``output`` is accepted for callers that have one; the
    choice does not depend on it (the engine made the same choice)."""
    return choose_for_turn(ctx).language


def remember(ctx: TurnContext, conversation: Conversation) -> Conversation:
    """``conversation`` with this turn's language stored, when the customer gave evidence for it."""
    choice = choose_for_turn(ctx)
    if choice.from_evidence and conversation.language != choice.language:
        return conversation.evolve(language=choice.language)
    return conversation


def with_language_event(ctx: TurnContext, events: tuple[Event, ...]) -> tuple[Event, ...]:
    """``events`` plus a ``language`` slot event after the user event when this turn changes the
    customer's language and nothing set it yet (what the engine does for its own turns), so the
    transcript, the web chat's page language and custom actions see the change."""
    choice = choose_for_turn(ctx)
    if not choice.from_evidence or choice.language == ctx.turn.conversation.language:
        return events
    if any(e.type == "slot" and e.data.get("name") == "language" for e in events):
        return events
    slot = Event("slot", {"name": "language", "value": choice.language})
    at = next((i + 1 for i, e in enumerate(events) if e.type == "user"), 0)
    return (*events[:at], slot, *events[at:])


def catalogue(ctx: TurnContext) -> Catalogue:
    """The bot's message catalogue (built-ins under its farm.yml overrides)."""
    return for_bot(ctx.bot_config)
