"""Domain responses rendered for one conversation: channel and condition variations,
``{slot}`` variables, buttons; the Rasa ``bot`` event data alongside each `Reply`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from typing import Any

from core.engine import Reply
from core.model import Attachment, Button

_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _conditions_match(variation: Mapping[str, Any], slots: Mapping[str, Any]) -> bool:
    return all(slots.get(c.get("name")) == c.get("value") for c in variation.get("condition") or [])


def choose_variation(
    variations: list[dict[str, Any]], slots: Mapping[str, Any], channel: str | None, rng: random.Random,
) -> dict[str, Any] | None:
    """Rasa's choice: variations whose conditions match (this channel's first, then channel-less),
    else unconditional ones (this channel's first, then channel-less)."""
    conditional = [v for v in variations if v.get("condition") and _conditions_match(v, slots)]
    unconditional = [v for v in variations if not v.get("condition")]
    for group in (conditional, unconditional):
        for pool in ([v for v in group if channel and v.get("channel") == channel], [v for v in group if not v.get("channel")]):
            if pool:
                return rng.choice(pool)
    return None


def fill(template: str, values: Mapping[str, Any]) -> str:
    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key in values:
            value = values[key]
            return "" if value is None else str(value)
        return match.group(0)

    return _VARIABLE.sub(replace, template)


def reply_from_message(message: Mapping[str, Any], response: str | None, values: Mapping[str, Any]) -> tuple[Reply, dict[str, Any]]:
    """A `Reply` and the Rasa ``bot`` event data from a response variation or an action message."""
    text = fill(str(message.get("text") or ""), values)
    buttons = tuple(
        Button(title=fill(str(b.get("title", "")), values), payload=fill(str(b.get("payload", "")), values))
        for b in message.get("buttons") or []
    )
    attachments: list[Attachment] = []
    if message.get("image"):
        attachments.append(Attachment(kind="image", url=str(message["image"])))
    if isinstance(message.get("attachment"), str):
        attachments.append(Attachment(kind="document", url=message["attachment"]))
    custom = message.get("custom") or message.get("json_message")
    reply = Reply(text=text, buttons=buttons, attachments=tuple(attachments), response=response, custom=custom)
    event = {
        "text": text or None,
        "data": {
            "elements": message.get("elements"),
            "quick_replies": message.get("quick_replies"),
            "buttons": [{"title": b.title, "payload": b.payload} for b in buttons] or None,
            "attachment": message.get("attachment"),
            "image": message.get("image"),
            "custom": custom,
        },
        "metadata": {"utter_action": response} if response else {},
    }
    return reply, event


def render_response(
    responses: Mapping[str, list[dict[str, Any]]],
    name: str,
    slots: Mapping[str, Any],
    channel: str | None,
    rng: random.Random,
    variables: Mapping[str, Any] | None = None,
) -> tuple[Reply, dict[str, Any]] | None:
    variations = responses.get(name)
    if not variations:
        return None
    variation = choose_variation(variations, slots, channel, rng)
    if variation is None:
        return None
    values = {**slots, **(variables or {})}
    return reply_from_message(variation, name, values)
