"""History and search for the web desk: every conversation that was ever handed off, closed
ones included, found by customer, text, date, agent, channel and rating.

Built on the store's existing reads (`Store.list_conversations` newest first, `Store.transcript`,
`Store.get_contact`) and filtered here, so it scans at most ``scan`` recent conversations per
bot. Texts are matched after masking: a card number the desk never shows cannot be searched
for either. A store query with an index (customer, agent, rating, date) is the next step for
large farms; the contract stays the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from core.desk import customer_name
from core.handoff.service import HandoffService
from core.model import Contact, Conversation, Event
from core.store.base import Store

SCAN_PER_BOT = 500
TRANSCRIPT_LIMIT = 500
MAX_RESULTS = 50
_TEXT_EVENTS = ("user", "bot", "note")


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """All given criteria must match (an empty query lists the history, newest first)."""

    text: str = ""  # customer name or any (masked) message or note text
    agent: str = ""  # agent name or id, part of it
    channel: str = ""
    rating: int | None = None
    since: date | None = None  # activity on or after this day (UTC)
    until: date | None = None  # activity on or before this day (UTC)

    def as_detail(self) -> dict[str, str | int]:
        """The criteria as recorded in the audit log (no empty ones)."""
        values: dict[str, str | int | None] = {
            "text": self.text, "agent": self.agent, "channel": self.channel, "rating": self.rating,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }
        return {k: v for k, v in values.items() if v not in (None, "")}


@dataclass(frozen=True, slots=True)
class Hit:
    """One conversation found, with what the result list shows."""

    conversation: Conversation
    customer: str
    channels: tuple[str, ...]
    agents: tuple[str, ...]
    ratings: tuple[int, ...]
    first_at: datetime | None
    last_at: datetime | None
    snippet: str | None
    handoffs: int = 0
    matched: tuple[str, ...] = field(default_factory=tuple)


async def search(store: Store, handoff: HandoffService, bots: Sequence[str], query: SearchQuery, *,
                 scan: int = SCAN_PER_BOT, limit: int = MAX_RESULTS) -> tuple[list[Hit], int]:
    """Matching handed-off conversations of ``bots``, most recently active first, and how many were scanned."""
    hits: list[Hit] = []
    scanned = 0
    for bot in bots:
        for conversation in await store.list_conversations(bot, None, limit=scan):
            scanned += 1
            events = await store.transcript(conversation.id, limit=TRANSCRIPT_LIMIT)
            if not any(e.type == "handoff" and e.data.get("reason") for e in events):
                continue  # never reached a person: not desk history
            contact = await store.get_contact(conversation.contact_id)
            hit = _match(handoff, conversation, contact, events, query)
            if hit is not None:
                hits.append(hit)
    hits.sort(key=lambda h: h.last_at or h.conversation.updated_at, reverse=True)
    return hits[:limit], scanned


def _match(handoff: HandoffService, conversation: Conversation, contact: Contact | None, events: Sequence[Event],
           query: SearchQuery) -> Hit | None:
    language = conversation.language or handoff.language(conversation)
    name = customer_name(contact, language)
    agents, agent_ids = _agents(events)
    ratings = [int(e.data["score"]) for e in events if e.type == "csat" and isinstance(e.data.get("score"), int)]
    channels = tuple(sorted({e.channel for e in events if e.channel}))
    stamps = [e.timestamp for e in events]
    first_at, last_at = (min(stamps), max(stamps)) if stamps else (None, None)

    if query.channel and query.channel not in channels:
        return None
    if query.rating is not None and query.rating not in ratings:
        return None
    if query.agent and not any(query.agent.casefold() in a.casefold() for a in (*agents, *agent_ids)):
        return None
    if query.since or query.until:
        days = {e.timestamp.date() for e in events}
        if not any((query.since is None or d >= query.since) and (query.until is None or d <= query.until)
                   for d in days):
            return None
    snippet: str | None = None
    matched: list[str] = []
    if query.text:
        needle = query.text.casefold()
        if needle in name.casefold():
            matched.append("customer")
        for event in events:
            if event.type not in _TEXT_EVENTS or not isinstance(event.data.get("text"), str):
                continue
            text = handoff.masker(conversation.bot).mask(event.data["text"])
            if needle in text.casefold():
                matched.append("text")
                snippet = _around(text, text.casefold().index(needle), len(needle))
                break
        if not matched:
            return None
    if snippet is None:
        last_user = next((e for e in reversed(events) if e.type == "user" and e.data.get("text")), None)
        if last_user is not None:
            snippet = _around(handoff.masker(conversation.bot).mask(str(last_user.data["text"])), 0, 0)
    return Hit(conversation, name, channels, tuple(agents), tuple(ratings), first_at, last_at, snippet,
               handoffs=sum(1 for e in events if e.type == "handoff" and e.data.get("reason")),
               matched=tuple(matched))


def _agents(events: Sequence[Event]) -> tuple[list[str], list[str]]:
    """Names and ids of the agents who claimed, answered, noted, closed or were rated."""
    names: list[str] = []
    ids: list[str] = []
    for event in events:
        data = event.data
        if event.type == "bot":
            meta = data.get("metadata") or {}
            if meta.get("author") != "agent":
                continue
            name, agent_id = meta.get("author_name"), meta.get("agent_id")
        elif event.type in ("status", "note", "csat"):
            name, agent_id = data.get("agent_name"), data.get("agent_id")
        else:
            continue
        if name and str(name) not in names:
            names.append(str(name))
        if agent_id and str(agent_id) not in ids:
            ids.append(str(agent_id))
    return names, ids


def _around(text: str, start: int, length: int, width: int = 60) -> str:
    begin = max(0, start - width)
    end = min(len(text), start + length + width)
    return ("…" if begin else "") + text[begin:end] + ("…" if end < len(text) else "")
