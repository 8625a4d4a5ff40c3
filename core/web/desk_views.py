"""The JSON shapes the web desk answers with: conversations, queue entries, handoff summaries,
transcript events, search hits, dead letters."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from core.desk import HandoffSummary, customer_name, priority, priority_label
from core.desk_config import CannedReply, WebAgent
from core.handoff.service import HandoffService, QueueEntry
from core.model import Contact, Conversation, ConversationStatus, Event
from core.store.base import DeadLetter
from core.web.desk_http import AGENT_PREFIX
from core.web.desk_search import Hit, SearchQuery

_HIDDEN_SLOTS = frozenset({"language", "session_started_metadata"})  # shown elsewhere or internal
_SLOT_LABELS = {"requested_slot": "form was asking for"}
_VERSION_KINDS = frozenset({"customer_edit", "customer_revoke"})  # core.handoff.media.version_event


class DeskViews:
    """JSON for the browser; `core.web.desk.WebDesk` sets the attributes declared here."""

    agents: dict[str, WebAgent]
    actions: HandoffService
    canned: Sequence[CannedReply]

    def _canned(self, conversation: Conversation) -> list[dict[str, str]]:
        """The canned replies for this conversation's bot and language (``de-AT`` uses ``de`` ones)."""
        language = (conversation.language or self.actions.language(conversation)).split("-")[0].lower()
        return [{"title": c.title, "text": c.text} for c in self.canned
                if (c.bot is None or c.bot == conversation.bot)
                and (c.language is None or c.language.split("-")[0].lower() == language)]

    def _hit_json(self, hit: Hit) -> dict[str, Any]:
        c = hit.conversation
        return {"id": c.id, "bot": c.bot, "status": c.status.value, "customer": hit.customer,
                "channels": list(hit.channels), "agents": list(hit.agents), "ratings": list(hit.ratings),
                "first_at": hit.first_at.isoformat() if hit.first_at else None,
                "last_at": hit.last_at.isoformat() if hit.last_at else None,
                "snippet": hit.snippet, "handoffs": hit.handoffs, "matched": list(hit.matched)}

    def _dead_letter_json(self, letter: DeadLetter) -> dict[str, Any]:
        message = letter.item.inbound
        return {"id": letter.item.id, "bot": letter.bot, "conversation": letter.item.conversation_id,
                "channel": message.channel, "attempts": letter.item.attempts, "error": letter.error,
                "text": self.actions.masker(letter.bot).mask(message.text or message.button_payload or "")[:500],
                "dead_at": letter.dead_at.isoformat()}

    def _agent_name(self, agent_id: str | None) -> str | None:
        if not agent_id:
            return None
        if agent_id.startswith(AGENT_PREFIX) and agent_id[len(AGENT_PREFIX):] in self.agents:
            return self.agents[agent_id[len(AGENT_PREFIX):]].name
        return agent_id

    def _conversation_json(self, conversation: Conversation, contact: Contact | None) -> dict[str, Any]:
        identity = contact.reply_identity() if contact else None
        return {
            "id": conversation.id, "bot": conversation.bot, "status": conversation.status.value,
            "assigned_agent": conversation.assigned_agent,
            "assigned_name": self._agent_name(conversation.assigned_agent),
            "customer": customer_name(contact, conversation.language or self.actions.language(conversation)),
            "channel": identity.channel if identity else None,
            "channels": sorted({i.channel for i in contact.identities}) if contact else [],
            "language": self.actions.language(conversation), "reason": conversation.handoff_reason,
        }

    def _entry_json(self, entry: QueueEntry, summary: HandoffSummary, now: datetime) -> dict[str, Any]:
        data = self._conversation_json(entry.conversation, entry.contact)
        data["since"] = entry.since.isoformat() if entry.since else None
        data["last_text"] = entry.last_text
        facts = self._facts(summary, entry.since, now)
        data.update({k: facts[k] for k in ("intent", "trigger_text", "sentiment", "waited_seconds", "priority",
                                           "priority_label", "open_now", "back_at")})
        return data

    @staticmethod
    def _facts(summary: HandoffSummary, since: datetime | None, now: datetime) -> dict[str, Any]:
        """Wait and priority: the wait of a handoff queued out of hours counts from the opening."""
        start = since or summary.since
        if start is not None and summary.back_at is not None and summary.back_at > start:
            start = summary.back_at
        waited = max(0.0, (now - start).total_seconds()) if start is not None else 0.0
        if not summary.open_now and summary.back_at is None and summary.conversation.status is ConversationStatus.WAITING:
            waited = 0.0  # closed with no known opening: nobody could have answered yet
        score = priority(summary.sentiment, waited)
        return {"intent": summary.intent, "trigger_text": summary.trigger_text, "topic": summary.topic,
                "sentiment": summary.sentiment, "waited_seconds": round(waited), "priority": score,
                "priority_label": priority_label(score), "open_now": summary.open_now,
                "since": summary.since.isoformat() if summary.since else None,
                "back_at": summary.back_at.isoformat() if summary.back_at else None}

    def _summary_json(self, summary: HandoffSummary) -> dict[str, Any]:
        return {
            **self._facts(summary, None, self.actions.clock()),
            "customer": summary.customer,
            "channel": summary.channel,
            "language": summary.conversation.language or self.actions.language(summary.conversation),
            "reason": summary.reason,
            "slots": {_SLOT_LABELS.get(k, k): _short(v) for k, v in summary.slots.items()
                      if v not in (None, "", []) and k not in _HIDDEN_SLOTS},
            "sentiment": summary.sentiment,
            "previous_agent": self._agent_name(summary.previous_agent),
            "last_messages": [{"type": e.type, "text": e.data.get("text"), "channel": e.channel}
                              for e in summary.last_messages],
        }

    def _event_json(self, event: Event) -> dict[str, Any] | None:
        data = event.data
        base = {"seq": event.seq, "channel": event.channel, "ts": event.timestamp.isoformat()}
        if event.type == "user":
            message_id = str(data.get("message_id") or "")
            parts = message_id.split(":", 3)  # <channel>:edit|revoke:<original>:<id> (adapters' version ids)
            if len(parts) == 4 and parts[1] in ("edit", "revoke") and parts[2]:  # relayed while handed off
                return {**base, "role": "version", "author": None, "kind": f"customer_{parts[1]}",
                        "original": f"{parts[0]}:{parts[2]}", "text": data.get("text") or ""}
            return {**base, "role": "customer", "author": None, "text": data.get("text") or "",
                    "attachments": [a for a in data.get("attachments") or [] if isinstance(a, dict)],
                    "message_id": message_id, "edited": ":edit:" in message_id}
        if event.type == "bot":
            meta = data.get("metadata") or {}
            role = meta.get("author", "bot")
            buttons = [b.get("title") for b in (data.get("data") or {}).get("buttons") or []]
            return {**base, "role": role if role in ("agent", "system") else "bot",
                    "author": meta.get("author_name"), "text": data.get("text") or "", "buttons": buttons,
                    "attachments": [a for a in data.get("attachments") or [] if isinstance(a, dict)]}
        if event.type == "note" and data.get("kind") in _VERSION_KINDS:
            return {**base, "role": "version", "author": None, "kind": data["kind"],
                    "original": data.get("original_message_id"), "text": data.get("new_text") or ""}
        if event.type == "note":
            return {**base, "role": "note", "author": data.get("agent_name"), "text": data.get("text") or "",
                    "attachments": [a for a in data.get("attachments") or [] if isinstance(a, dict)]}
        if event.type == "status" and str(data.get("action", "")).startswith("transfer"):
            text = (f"transferred to {data.get('to_name') or data.get('to_agent')} by {data.get('agent_name')}"
                    if data.get("to_agent") else f"put back in the queue by {data.get('agent_name')}")
            return {**base, "role": "event", "author": None, "text": text}
        if event.type == "status":
            who = data.get("agent_name") or ("customer" if "customer" in str(data.get("action")) else None)
            text = f"status: {data.get('status')}" + (f" ({data.get('action')}" + (f" by {who}" if who else "")
                                                       + ")")
            return {**base, "role": "event", "author": None, "text": text}
        if event.type == "handoff":
            if data.get("reason"):
                text = f"handed off: {data['reason']}" + (f" ({data['detail']})" if data.get("detail") else "")
                if not data.get("open", True):
                    text += " — queued outside business hours"
            elif data.get("action") == "reping":
                text = f"re-ping {data.get('count')}: still unclaimed"
            elif data.get("action") == "customer_wish":
                text = f"customer wish: {data.get('wish')}"
            else:
                return None
            return {**base, "role": "event", "author": None, "text": text}
        if event.type == "csat":
            return {**base, "role": "event", "author": None, "text": f"customer rating: {data.get('score')}/5"}
        if event.type == "delivery" and data.get("status") in ("failed", "template"):
            text = ("delivery failed: " + str(data.get("error") or "")) if data.get("status") == "failed" else \
                "WhatsApp window closed: a template was sent instead"
            return {**base, "role": "event", "author": None, "text": text}
        return None


def with_versions(entries: list[dict[str, Any]], mask: Callable[[str], str]) -> list[dict[str, Any]]:
    """Edits and deletions by the customer (WhatsApp) shown on the message they change: its
    ``versions`` (earlier texts first, masked) and ``revoked``; an edit whose original is not in
    view stays an entry of its own ("edited an earlier message")."""
    by_id = {e["message_id"]: e for e in entries if e.get("role") == "customer" and e.get("message_id")}
    shown: list[dict[str, Any]] = []
    for entry in entries:
        if entry.get("role") != "version":
            shown.append(entry)
            continue
        original = by_id.get(str(entry.get("original") or ""))
        text = mask(str(entry.get("text") or ""))
        if original is None:
            label = "edited an earlier message: " if entry["kind"] == "customer_edit" else "deleted an earlier message"
            shown.append({**entry, "role": "customer", "text": label + text, "edited": True})
            continue
        if entry["kind"] == "customer_revoke":
            original["revoked"] = entry["ts"]
            continue
        versions = original.setdefault("versions", [{"text": original["text"], "ts": original["ts"]}])
        versions.append({"text": text, "ts": entry["ts"]})
        original["text"] = text
        original["edited"] = True
    return shown


def search_query(params: Mapping[str, str]) -> SearchQuery:
    """The history filters from the query string; ValueError says which one is wrong."""
    def day(key: str) -> date | None:
        raw = params.get(key, "").strip()
        if not raw:
            return None
        try:
            return date.fromisoformat(raw)
        except ValueError as exc:
            raise ValueError(f"'{key}' must be a date like 2026-12-02") from exc

    rating_raw = params.get("rating", "").strip()
    if rating_raw and (not rating_raw.isdigit() or not 1 <= int(rating_raw) <= 5):
        raise ValueError("'rating' must be 1-5")
    return SearchQuery(text=params.get("text", "").strip()[:200], agent=params.get("agent", "").strip()[:100],
                       channel=params.get("channel", "").strip()[:40],
                       rating=int(rating_raw) if rating_raw else None, since=day("since"), until=day("until"))


def _short(value: Any) -> str:
    text = ", ".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)
    return text if len(text) <= 200 else text[:199] + "…"

