"""The bot's help for Slack agents, as Block Kit: the summary, previous cases, suggested replies.

Slack cannot prefill an agent's message box, so each suggestion carries a "Use N" button that
opens a modal with the text in an editable field (``views.open`` with the click's trigger_id);
the agent edits and presses Send (``view_submission``), and only then the reply goes to the
customer, signed with the agent's name like any thread reply (a text starting with the note
prefix stays an internal note). Plain data in, JSON-ready dicts out; `SlackDesk` posts them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from channels.slack_card import escape

USE_ACTION = "use_suggestion_"  # + 1..3
VIEW_CALLBACK = "send_suggestion"
REPLY_BLOCK = "reply"
REPLY_ACTION = "text"
MAX_VALUE_TEXT = 1500  # a button's value holds at most 2000 characters, JSON included
MAX_INPUT = 3000  # plain_text_input's limit


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _percent(confidence: Any) -> str:
    try:
        return f"{round(float(confidence) * 100)} %"
    except (TypeError, ValueError):
        return "?"


def suggestion_blocks(conversation_id: str, suggestions: Sequence[Any]) -> list[dict[str, Any]]:
    """A context line and one section per suggestion (intent, confidence, text, "Use N" button)."""
    if not suggestions:
        return []
    blocks: list[dict[str, Any]] = [{"type": "context", "block_id": "assist_suggestions", "elements": [{
        "type": "mrkdwn",
        "text": ":bulb: Suggested replies from the bot — *Use* opens the text to edit; nothing is sent until you send it.",
    }]}]
    for n, suggestion in enumerate(suggestions[:3], start=1):
        value = json.dumps({"c": conversation_id, "t": _clip(suggestion.text, MAX_VALUE_TEXT),
                            "i": suggestion.intent}, ensure_ascii=False)
        blocks.append({
            "type": "section", "block_id": f"assist_suggestion_{n}",
            "text": {"type": "mrkdwn", "text": _clip(
                f"*{n}.* `{escape(suggestion.intent)}` · {_percent(suggestion.confidence)}\n"
                + ">" + escape(suggestion.text).replace("\n", "\n>"), 2900)},
            "accessory": {"type": "button", "action_id": f"{USE_ACTION}{n}", "value": value,
                          "text": {"type": "plain_text", "text": f"Use {n}"}},
        })
    return blocks


def assistant_blocks(conversation_id: str, assistance: Any) -> list[dict[str, Any]]:
    """The thread's first assistant message: summary, previous cases, suggestions."""
    blocks: list[dict[str, Any]] = [{"type": "section", "block_id": "assist_summary", "text": {
        "type": "mrkdwn", "text": _clip(f":robot_face: *Assistant:* {escape(assistance.summary)}", 2900)}}]
    cases = list(assistance.previous_cases)[:5]
    if cases:
        lines = []
        for case in cases:
            who = ", ".join(case.agents) or "no agent"
            rating = f"rated {case.rating}/5" if case.rating else "not rated"
            lines.append(f"• {case.since:%Y-%m-%d} · {escape(case.reason)} · helped by {escape(who)} · {rating}")
        blocks.append({"type": "context", "block_id": "assist_cases", "elements": [{
            "type": "mrkdwn", "text": _clip("*Previous cases*\n" + "\n".join(lines), 2900)}]})
    return blocks + suggestion_blocks(conversation_id, assistance.suggestions)


def edit_modal(value: str, thread: str, note_prefix: str) -> dict[str, Any] | None:
    """The modal a "Use N" click opens (None if the button's value is not ours)."""
    try:
        data = json.loads(value)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("c"), str) or not isinstance(data.get("t"), str):
        return None
    return {
        "type": "modal", "callback_id": VIEW_CALLBACK,
        "private_metadata": json.dumps({"c": data["c"], "thread": thread}),
        "title": {"type": "plain_text", "text": "Reply to the customer"},
        "submit": {"type": "plain_text", "text": "Send"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(
                f"The bot's answer for `{escape(str(data.get('i') or '?'))}`. Edit it, then *Send*: it goes to "
                f"the customer signed with your name. Start with `{escape(note_prefix)}` to keep it an internal note.",
                2900)}]},
            {"type": "input", "block_id": REPLY_BLOCK, "label": {"type": "plain_text", "text": "Reply"},
             "element": {"type": "plain_text_input", "action_id": REPLY_ACTION, "multiline": True,
                         "max_length": MAX_INPUT, "initial_value": _clip(data["t"], MAX_INPUT)}},
        ],
    }


def submitted(view: Any) -> tuple[str, str, str] | None:
    """(conversation id, thread, edited text) of a submitted modal, or None if malformed."""
    if not isinstance(view, dict):
        return None
    try:
        meta = json.loads(str(view.get("private_metadata") or ""))
        text = view["state"]["values"][REPLY_BLOCK][REPLY_ACTION]["value"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(meta, dict) or not isinstance(meta.get("c"), str):
        return None
    return meta["c"], str(meta.get("thread") or ""), str(text or "").strip()
