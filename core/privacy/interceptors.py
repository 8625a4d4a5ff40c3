"""Turn hooks for identity linking, the automated-assistant disclosure and erasure on request.

Register with the turn runner (core/pipeline/hooks.py):
- `LinkCodeInterceptor` as an interceptor AND as an after-commit hook: it answers link-code
  requests in the turn, and merges the contacts only after the turn is committed (merging
  inside the turn would delete the conversation the runner is committing to).
- `DisclosurePostProcessor` as a post-processor (last, so it sees the final replies).
- `ForgetAfterCommit` as an after-commit hook.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import structlog

from core.engine import Reply, TurnOutput
from core.identity import IdentityService, LinkStatus
from core.model import Event, Outbound
from core.pipeline.hooks import TurnContext
from core.privacy.config import PrivacyConfig
from core.privacy.service import PrivacyService
from core.store.base import Store

log = structlog.get_logger(__name__)

LINK_INTENT = "link_account"
LINK_ACTION = "system_action"
FORGET_ACTION = "forget_contact"

_REQUEST = re.compile(
    r"^/link(@\w+)?$|\blink[- ]?code\b|\blink my accounts?\b|verknüpfungscode|verknuepfungscode"
    r"|\bkonten? verknüpfen\b|\bkonten? verknuepfen\b",
    re.IGNORECASE,
)
_COMMAND_CODE = re.compile(r"^/link(?:@\w+)?\s+(\d{3})\s?(\d{3})$", re.IGNORECASE)
_BARE_CODE = re.compile(r"^(\d{3})\s?(\d{3})$")

_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "issued": "Your link code is {code}. Within {minutes} minutes, send this code to us in the other "
        "app (Telegram, WhatsApp or web chat) to join your chats into one. Do not share it with anyone.",
        "linked": "Done: your chats are linked. We now see your whole conversation, whichever app you use.",
        "invalid": "This link code is not valid (wrong, expired or already used). Ask for a new one with /link "
        "in the other app.",
        "locked": "Too many wrong codes. Please try again in an hour, or type \"human\" to reach a person.",
        "own_code": "Please send this code in the other app, not here.",
    },
    "de": {
        "issued": "Ihr Verknüpfungscode lautet {code}. Senden Sie diesen Code innerhalb von {minutes} Minuten "
        "in der anderen App (Telegram, WhatsApp oder Web-Chat), um Ihre Chats zu verbinden. Geben Sie ihn "
        "an niemanden weiter.",
        "linked": "Erledigt: Ihre Chats sind verknüpft. Wir sehen jetzt Ihr ganzes Gespräch, egal welche App "
        "Sie nutzen.",
        "invalid": "Dieser Verknüpfungscode ist ungültig (falsch, abgelaufen oder schon benutzt). Fordern Sie "
        "in der anderen App mit /link einen neuen an.",
        "locked": "Zu viele falsche Codes. Bitte versuchen Sie es in einer Stunde wieder, oder schreiben Sie "
        "„Mensch“, um eine Person zu erreichen.",
        "own_code": "Bitte senden Sie diesen Code in der anderen App, nicht hier.",
    },
}


def turn_language(ctx: TurnContext, output: TurnOutput | None = None) -> str:
    """The conversation's language (as the engine left it), else the bot's default, else en."""
    conversation = output.conversation if output is not None else ctx.turn.conversation
    return conversation.language or getattr(ctx.bot_config, "default_language", None) or "en"


def pick(texts: Mapping[str, str], language: str) -> str:
    """The text for ``language`` (``de-AT`` → ``de``), else English, else any."""
    for key in (language, language.split("-")[0].lower(), "en"):
        if key in texts:
            return texts[key]
    return next(iter(texts.values()), "")


def _privacy(ctx: TurnContext) -> PrivacyConfig:
    config = getattr(ctx.bot_config, "privacy", None)
    return config if isinstance(config, PrivacyConfig) else PrivacyConfig()


class LinkCodeInterceptor:
    """Issues link codes on request and redeems a typed code (``123456`` or ``/link 123456``)."""

    def __init__(self, identity: IdentityService, store: Store) -> None:
        self.identity = identity
        self.store = store

    def _output(self, ctx: TurnContext, text: str | None, meta: dict[str, Any] | None = None) -> TurnOutput:
        message = ctx.turn.message
        user = Event("user", {
            "text": message.text,
            "message_id": message.platform_message_id,
            "input_channel": message.channel,
            "parse_data": {"intent": {"name": LINK_INTENT, "confidence": 1.0}, "entities": []},
        }, channel=message.channel)
        events = (user, Event("action", {"name": "action_link_account"}, channel=message.channel),
                  Event("action", {"name": "action_listen"}, channel=message.channel))
        return TurnOutput(
            events=events,
            replies=(Reply(text=text),) if text else (),
            conversation=ctx.turn.conversation,
            meta=meta or {},
        )

    async def intercept(self, ctx: TurnContext) -> TurnOutput | None:
        message = ctx.turn.message
        text = (message.text or "").strip()
        if not text or message.button_payload:
            return None
        texts = _TEXTS["de" if turn_language(ctx).startswith("de") else "en"]
        command = _COMMAND_CODE.match(text)
        bare = _BARE_CODE.match(text)
        if command or bare:
            code = "".join((command or bare).groups())  # type: ignore[union-attr]
            claim = await self.identity.claim_link_code(ctx.turn.contact, code)
            if claim.status is LinkStatus.LINKED:
                return self._output(ctx, None, {LINK_ACTION: "link_contacts", "link_keep": claim.keep_id})
            if bare and claim.status is not LinkStatus.OWN_CODE:
                # Six digits may be an order or customer number: the failed attempt is counted,
                # but the bot answers the message as usual.
                return None
            return self._output(ctx, texts[claim.status.value])
        if _REQUEST.search(text):
            if await self.identity.link_locked(ctx.turn.contact):
                return self._output(ctx, texts["locked"])
            code = await self.identity.issue_link_code(ctx.turn.contact)
            minutes = max(1, round(_privacy(ctx).link_code_ttl_seconds / 60))
            return self._output(ctx, texts["issued"].format(code=code, minutes=minutes))
        return None

    def has_work(self, ctx: TurnContext, output: TurnOutput) -> bool:
        return bool(output.meta.get(LINK_ACTION) == "link_contacts")

    async def committed(self, ctx: TurnContext, output: TurnOutput, events: Sequence[Event]) -> None:
        """After a redeemed code's turn: merge, then confirm on the channel the code was typed in."""
        if not self.has_work(ctx, output):
            return
        keep_id = output.meta["link_keep"]
        message = ctx.turn.message
        merged = await self.identity.link(keep_id, ctx.turn.contact.id)
        conversation = await self.store.conversation_for(merged.bot, merged.id)
        language = conversation.language or turn_language(ctx, output)
        text = _TEXTS["de" if language.startswith("de") else "en"]["linked"]
        out = Outbound(conversation_id=conversation.id, bot=message.bot, channel=message.channel,
                       chat_id=message.chat_id, text=text)
        bot_event = Event("bot", {"text": text, "data": {"buttons": []},
                                  "metadata": {"outbound_id": out.id, "author": "bot"}}, channel=message.channel)
        await self.store.append_events(conversation.id, [bot_event], [out])


class DisclosurePostProcessor:
    """Prepends "automated assistant, type human for a person" to a conversation's first bot reply."""

    async def process(self, ctx: TurnContext, output: TurnOutput) -> TurnOutput:
        config = _privacy(ctx)
        if not config.disclosure or not output.replies:
            return output
        if any(e.type == "bot" for e in ctx.turn.history):
            return output
        disclosure = pick(config.disclosure_text, turn_language(ctx, output))
        if not disclosure:
            return output
        first = output.replies[0]
        if first.text:
            replies = (replace(first, text=f"{disclosure}\n\n{first.text}"), *output.replies[1:])
        else:
            replies = (Reply(text=disclosure), *output.replies)
        return replace(output, replies=replies, meta={**output.meta, "disclosed": True})


class ForgetAfterCommit:
    """Erases the contact once the engine confirmed a deletion request, then tells the customer."""

    def __init__(self, privacy: PrivacyService, store: Store) -> None:
        self.privacy = privacy
        self.store = store

    def has_work(self, ctx: TurnContext, output: TurnOutput) -> bool:
        return bool(output.meta.get(LINK_ACTION) == FORGET_ACTION)

    async def committed(self, ctx: TurnContext, output: TurnOutput, events: Sequence[Event]) -> None:
        if not self.has_work(ctx, output):
            return
        message = ctx.turn.message
        contact_id = ctx.turn.contact.id
        language = turn_language(ctx, output)
        await self.privacy.forget(contact_id, actor="customer")
        text = pick(_privacy(ctx).forget_confirmation_text, language)
        # The transcript is gone: queue the confirmation directly, without a transcript event.
        out = Outbound(conversation_id=output.conversation.id, bot=message.bot, channel=message.channel,
                       chat_id=message.chat_id, text=text)
        await self.store.append_events(output.conversation.id, [], [out])
        log.info("privacy.forget_confirmed", contact=contact_id, conversation=output.conversation.id)
