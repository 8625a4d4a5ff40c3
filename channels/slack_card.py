"""Block Kit for the Slack desk: the handoff card and the lines posted into its thread.

Pure functions from core types to Slack JSON. Everything customers or agents typed is
escaped (``&``, ``<``, ``>``), so a customer cannot ping ``<!channel>`` or forge a link.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from core.desk import HandoffSummary
from core.model import Conversation, ConversationStatus, Event

STATUS_BLOCK = "handoff_status"
ACTIONS_BLOCK = "handoff_actions"
TRANSFER_BLOCK = "handoff_transfer"
AGENT_PREFIX = "slack:"

_CHANNEL_LABELS = {"whatsapp": "WhatsApp", "telegram": "Telegram", "webchat": "Web chat"}
_MAX_LINE = 280
_MAX_SECTION = 2900
_MAX_SLOTS = 12


def escape(text: str) -> str:
    """Slack mrkdwn escaping: the three characters Slack treats as control."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_plain(text: str) -> str:
    """An agent's Slack text as the customer should read it (links and entities resolved)."""
    text = re.sub(r"<(https?://[^|>]+)\|([^>]+)>", r"\2 (\1)", text)
    text = re.sub(r"<(https?://[^>]+)>", r"\1", text)
    text = re.sub(r"<mailto:([^|>]+)(\|[^>]+)?>", r"\1", text)
    text = re.sub(r"<[@#!][^|>]*\|([^>]+)>", r"\1", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def channel_label(channel: str) -> str:
    return _CHANNEL_LABELS.get(channel, channel.capitalize())


def agent_ref(agent_id: str | None) -> str:
    """A mention for a Slack agent id (``slack:U123`` -> ``<@U123>``), else the id escaped."""
    if not agent_id:
        return "—"
    if agent_id.startswith(AGENT_PREFIX):
        return f"<@{agent_id.removeprefix(AGENT_PREFIX)}>"
    return escape(agent_id)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _sentiment(value: float | None) -> str:
    if value is None:
        return "—"
    face = "😠" if value <= -0.3 else "🙂" if value >= 0.3 else "😐"
    return f"{face} {value:+.2f}"


def _slot_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def _transcript_line(event: Event) -> str | None:
    text = str(event.data.get("text") or "").strip()
    if not text:
        return None
    who = {
        "user": "👤 Customer",
        "bot": "🤖 Bot",
        "agent": f"🧑‍💼 {event.data.get('agent_name') or event.data.get('name') or 'Agent'}",
    }.get(event.type)
    if who is None:
        return None
    return f"*{escape(str(who))}:* {escape(_clip(text, _MAX_LINE))}"


def customer_name(summary: HandoffSummary) -> str:
    return summary.customer


def slack_date(when: datetime, fallback: str) -> str:
    """A time every agent reads in their own timezone (Slack's date formatting)."""
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} {{time}}|{escape(fallback)}>"


def out_of_hours_text(summary: HandoffSummary) -> str | None:
    """The mark on a handoff that arrived outside business hours (None during them)."""
    if summary.open_now:
        return None
    when = (f" ({slack_date(summary.back_at, summary.back_at.strftime('%Y-%m-%d %H:%M UTC'))})"
            if summary.back_at else "")
    return f"🌙 Outside business hours: queued until opening{when}"


def summary_blocks(summary: HandoffSummary) -> list[dict[str, Any]]:
    """The card's fixed part (everything but status and buttons)."""
    conv = summary.conversation
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "emoji": True,
                                     "text": _clip(f"Handoff: {customer_name(summary)}", 150)}},
        {"type": "section", "block_id": "handoff_facts", "fields": [
            {"type": "mrkdwn", "text": f"*Customer*\n{escape(customer_name(summary))}"},
            {"type": "mrkdwn", "text": f"*Channel*\n{escape(channel_label(summary.channel))}"},
            {"type": "mrkdwn", "text": f"*Language*\n{escape(conv.language or '—')}"},
            {"type": "mrkdwn", "text": f"*Reason*\n{escape(_clip(summary.reason, 200))}"},
            {"type": "mrkdwn", "text": f"*Intent*\n{escape(summary.intent or '—')}"},
            {"type": "mrkdwn", "text": f"*Sentiment*\n{_sentiment(summary.sentiment)}"},
            *([{"type": "mrkdwn", "text": f"*Earlier topic*\n{escape(summary.topic)}"}]
              if summary.topic and summary.topic != summary.intent else []),
        ]},
    ]
    if summary.trigger_text:
        blocks.append({"type": "section", "block_id": "handoff_trigger", "text": {
            "type": "mrkdwn", "text": f"*Asked for a person with*\n> {escape(_clip(summary.trigger_text, _MAX_LINE))}"}})
    away = out_of_hours_text(summary)
    if away:
        blocks.append({"type": "context", "block_id": "handoff_out_of_hours",
                       "elements": [{"type": "mrkdwn", "text": away}]})
    slots = {k: v for k, v in (summary.slots or conv.slots).items() if v not in (None, "", [])}
    if slots:
        lines = [f"• {escape(k)}: {escape(_clip(_slot_value(v), 120))}" for k, v in list(slots.items())[:_MAX_SLOTS]]
        blocks.append({"type": "section", "block_id": "handoff_slots",
                       "text": {"type": "mrkdwn", "text": _clip("*Slots*\n" + "\n".join(lines), _MAX_SECTION)}})
    if summary.previous_agent:
        blocks.append({"type": "context", "block_id": "handoff_previous_agent", "elements": [
            {"type": "mrkdwn", "text": f"🔁 Previously served by {agent_ref(summary.previous_agent)}"},
        ]})
    lines = [line for line in (_transcript_line(e) for e in summary.last_messages) if line]
    if lines:
        body = "\n".join(lines)
        while len(body) > _MAX_SECTION and len(lines) > 1:
            lines = lines[1:]  # keep the most recent messages
            body = "\n".join(lines)
        blocks.append({"type": "section", "block_id": "handoff_transcript",
                       "text": {"type": "mrkdwn", "text": _clip("*Last messages*\n" + body, _MAX_SECTION)}})
    blocks.append({"type": "context", "block_id": "handoff_ids", "elements": [
        {"type": "mrkdwn", "text": f"Conversation `{escape(conv.id)}`"},
    ]})
    return blocks


def _status_text(conversation: Conversation, detail: str | None) -> str:
    status = conversation.status
    if status is ConversationStatus.WAITING:
        text = "⏳ Waiting for an agent"
    elif status is ConversationStatus.AGENT:
        text = f"🙋 Claimed by {agent_ref(conversation.assigned_agent)}"
    elif status is ConversationStatus.BOT:
        text = "🤖 Back with the bot"
    else:
        text = "✅ Closed"
    return f"{text} — {escape(detail)}" if detail else text


def _buttons(conversation: Conversation) -> list[dict[str, Any]]:
    def button(action_id: str, title: str, style: str | None = None) -> dict[str, Any]:
        b: dict[str, Any] = {"type": "button", "action_id": action_id, "value": conversation.id,
                             "text": {"type": "plain_text", "text": title, "emoji": True}}
        if style:
            b["style"] = style
        return b

    if conversation.status is ConversationStatus.WAITING:
        return [button("claim", "Claim", "primary"), button("back_to_bot", "Back to bot"),
                button("close", "Close", "danger")]
    if conversation.status is ConversationStatus.AGENT:
        return [button("back_to_bot", "Back to bot"), button("close", "Close", "danger"),
                button("back_to_queue", "Back to queue")]
    return []


def card_blocks(base: Sequence[Mapping[str, Any]], conversation: Conversation,
                detail: str | None = None) -> list[dict[str, Any]]:
    """Fixed part + a status line + the buttons that make sense in this status."""
    blocks = [dict(b) for b in base if b.get("block_id") not in (STATUS_BLOCK, ACTIONS_BLOCK, TRANSFER_BLOCK)]
    blocks.append({"type": "section", "block_id": STATUS_BLOCK,
                   "text": {"type": "mrkdwn", "text": f"*Status:* {_status_text(conversation, detail)}"}})
    buttons = _buttons(conversation)
    if buttons:
        blocks.append({"type": "actions", "block_id": ACTIONS_BLOCK, "elements": buttons})
        # The picker has no value: the card's thread names the conversation (SlackDesk._on_transfer).
        blocks.append({"type": "actions", "block_id": TRANSFER_BLOCK, "elements": [{
            "type": "users_select", "action_id": "transfer",
            "placeholder": {"type": "plain_text", "text": "Transfer to…", "emoji": True}}]})
    return blocks


def card_text(summary: HandoffSummary) -> str:
    """Notification text of the card (also what screen readers and old clients show)."""
    text = (f"Handoff: {escape(customer_name(summary))} via {channel_label(summary.channel)}"
            f" — {escape(_clip(summary.reason, 200))}")
    if summary.previous_agent:
        text += f" (previously {agent_ref(summary.previous_agent)})"
    if not summary.open_now:
        text += " — queued until opening"
    return text


_EMOJI = {
    ConversationStatus.WAITING: "⏳", ConversationStatus.AGENT: "🙋",
    ConversationStatus.BOT: "🤖", ConversationStatus.CLOSED: "✅",
}


def status_line(conversation: Conversation, detail: str | None) -> str:
    """The line posted into the thread: what happened (the core's ``detail``), or the status."""
    if detail:
        return f"{_EMOJI.get(conversation.status, 'ℹ️')} {escape(detail)}"
    return _status_text(conversation, None)


def customer_line(name: str, channel: str | None, event: Event) -> str:
    """A customer's message in the thread: ``*Anna* (WhatsApp): text``."""
    text = str(event.data.get("text") or "").strip()
    attachments = event.data.get("attachments") or ()
    if attachments:
        kinds = ", ".join(str(a.get("kind", "file")) if isinstance(a, Mapping) else "file" for a in attachments)
        text = f"{text} [{kinds}]".strip()
    where = f" ({channel_label(channel)})" if channel else ""
    return f"*{escape(name)}*{where}: {escape(text) or '_(empty message)_'}"
