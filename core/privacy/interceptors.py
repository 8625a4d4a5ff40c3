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
from core.language.turn import catalogue, remember, turn_language
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

def pick(ctx: TurnContext, overrides: Mapping[str, str], key: str, language: str, **values: object) -> str:
    """A privacy text: the privacy config's own text for ``language`` when it sets one (``de-AT`` → ``de``),
    else the bot's message catalogue (which falls back to English)."""
    for code in (language, language.split("-")[0].lower()):
        if code in overrides:
            return overrides[code].format(**values)
    texts = catalogue(ctx)
    if not texts.has(key, language) and "en" in overrides:
        return overrides["en"].format(**values)
    return texts.text(key, language, **values)


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
            conversation=remember(ctx, ctx.turn.conversation),
            meta=meta or {},
        )

    async def intercept(self, ctx: TurnContext) -> TurnOutput | None:
        message = ctx.turn.message
        text = (message.text or "").strip()
        if not text or message.button_payload:
            return None
        command = _COMMAND_CODE.match(text)
        bare = _BARE_CODE.match(text)
        if not (command or bare or _REQUEST.search(text)):
            return None  # most messages: no language choice needed here
        language = turn_language(ctx)
        texts = catalogue(ctx)
        if command or bare:
            code = "".join((command or bare).groups())  # type: ignore[union-attr]
            claim = await self.identity.claim_link_code(ctx.turn.contact, code)
            if claim.status is LinkStatus.LINKED:
                return self._output(ctx, None, {LINK_ACTION: "link_contacts", "link_keep": claim.keep_id})
            if bare and claim.status is not LinkStatus.OWN_CODE:
                # Six digits may be an order or customer number: the failed attempt is counted,
                # but the bot answers the message as usual.
                return None
            return self._output(ctx, texts.text(f"link_{claim.status.value}", language))
        if _REQUEST.search(text):
            if await self.identity.link_locked(ctx.turn.contact):
                return self._output(ctx, texts.text("link_locked", language))
            code = await self.identity.issue_link_code(ctx.turn.contact)
            minutes = max(1, round(_privacy(ctx).link_code_ttl_seconds / 60))
            return self._output(ctx, texts.text("link_issued", language, code=code, minutes=minutes))
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
        language = turn_language(ctx, output)
        text = catalogue(ctx).text("link_linked", language)
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
        if any(e.type == "bot" for e in reversed(ctx.turn.history)):  # from the end: found at once if so
            return output
        disclosure = pick(ctx, config.disclosure_text, "disclosure", turn_language(ctx, output))
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
        text = pick(ctx, _privacy(ctx).forget_confirmation_text, "forget_confirmation", language)
        # The transcript is gone: queue the confirmation directly, without a transcript event.
        out = Outbound(conversation_id=output.conversation.id, bot=message.bot, channel=message.channel,
                       chat_id=message.chat_id, text=text)
        await self.store.append_events(output.conversation.id, [], [out])
        log.info("privacy.forget_confirmed", contact=contact_id, conversation=output.conversation.id)
