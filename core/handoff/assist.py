"""The bot as the agent's assistant: suggested replies, a one-line summary, previous cases.

For the customer's latest message while a person is in charge (or asked for), the bot's NLU
ranks intents; for the top ones whose rule or story answers with a domain response, that
response rendered in the customer's language is a suggestion (intent and confidence kept).
`prepare_suggestions` runs once the turn is durable (`core.handoff.hooks.HandoffAfterCommit`,
where the bot's engine is at hand) and keeps them in the store under ``assist:<conversation>``,
so every farm process and both desks read the same ones. `assistance` adds, at read time, the
one-line summary (what the customer wants, what the bot already did: intents, answers, actions,
captured slots, handoff reason) and the customer's previous cases (closed handoffs with the
agent who helped and the rating). Suggestions are never sent by themselves: a desk inserts one
for the agent to edit and send.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from core.desk import HandoffSummary, event_intent, handoff_trigger
from core.engine import Engine, Understanding
from core.model import Conversation, Event
from core.rasa.project import RasaProject
from core.rasa.stories import Block, StoryData
from core.store.base import Store

log = structlog.get_logger(__name__)

MAX_SUGGESTIONS = 3
MIN_CONFIDENCE = 0.05  # intents the NLU all but ruled out are no help to an agent
KEY_PREFIX = "assist:"
KEEP_SECONDS = 30 * 86400
TRANSCRIPT_LIMIT = 500
#: Intents whose answer is not something an agent would say back (handoff, fallback, CSAT).
SKIP_INTENTS = frozenset({"human_handoff", "nlu_fallback", "csat", "back_to_bot", "out_of_scope"})
_SUMMARY_MAX = 300


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One reply the bot would give: its text in the customer's language, for which intent."""

    intent: str
    confidence: float
    response: str
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {"intent": self.intent, "confidence": round(self.confidence, 3), "response": self.response,
                "text": self.text}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Suggestion:
        return cls(str(data["intent"]), float(data.get("confidence") or 0.0), str(data.get("response") or ""),
                   str(data["text"]))


@dataclass(frozen=True, slots=True)
class PastCase:
    """A closed handoff of this customer: when, why, who helped, how it was rated."""

    since: datetime
    reason: str
    agents: tuple[str, ...]
    rating: int | None
    ended: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {"since": self.since.isoformat(), "reason": self.reason, "agents": list(self.agents),
                "rating": self.rating, "ended": self.ended.isoformat() if self.ended else None}


@dataclass(frozen=True, slots=True)
class Assistance:
    """What the assistant offers for one conversation (``message`` is masked)."""

    message: str | None
    language: str | None
    suggestions: tuple[Suggestion, ...]
    summary: str
    previous_cases: tuple[PastCase, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"message": self.message, "language": self.language,
                "suggestions": [s.as_dict() for s in self.suggestions], "summary": self.summary,
                "previous_cases": [c.as_dict() for c in self.previous_cases]}


# -- suggestions (turn time, with the engine) ----------------------------------------------
_ANSWERS: dict[int, dict[str, str]] = {}  # id(project) -> intent -> response; projects live as long as the farm


def intent_responses(stories: StoryData, responses: Collection[str]) -> dict[str, str]:
    """intent -> the domain response a rule (first) or story answers it with right away;
    an intent no rule or story answers falls back to a response named ``utter_<intent>``."""
    found: dict[str, str] = {}

    def walk(blocks: Sequence[Block]) -> None:
        for block in blocks:
            steps = block.steps
            for index, step in enumerate(steps[:-1]):
                following = steps[index + 1]
                names = [step.name] if step.kind == "intent" else \
                    [a.name for a in step.alternatives if a.kind == "intent"] if step.kind == "or" else []
                if following.kind == "action" and following.name in responses:
                    for name in names:
                        if name and name not in found:
                            found[name] = str(following.name)

    walk(stories.rules)
    walk(stories.stories)
    for response in responses:
        intent = response.removeprefix("utter_")
        if response.startswith("utter_") and intent not in found:
            found[intent] = response
    return found


def _answers(project: RasaProject) -> dict[str, str]:
    key = id(project)
    if key not in _ANSWERS:
        _ANSWERS[key] = intent_responses(project.stories, set(project.domain.responses))
    return _ANSWERS[key]


def suggest(engine: Engine, conversation: Conversation, channel: str, understanding: Understanding) -> list[Suggestion]:
    """Up to `MAX_SUGGESTIONS` replies for the NLU's top intents, best first (empty if the
    engine is not a Rasa project or no top intent has a response)."""
    project = getattr(engine, "project", None)
    if not isinstance(project, RasaProject):
        return []
    answers = _answers(project)
    ranking = list(understanding.ranking) or ([(understanding.intent, understanding.confidence)]
                                              if understanding.intent else [])
    found: list[Suggestion] = []
    seen: set[str] = set()
    for intent, confidence in sorted(ranking, key=lambda pair: -pair[1]):
        if confidence < MIN_CONFIDENCE or intent in SKIP_INTENTS or intent not in answers:
            continue
        response = answers[intent]
        replies = engine.render(response, conversation, channel)
        text = replies[0].text.strip() if replies else ""
        if not text or text in seen:
            continue
        seen.add(text)
        found.append(Suggestion(intent, float(confidence), response, text))
        if len(found) == MAX_SUGGESTIONS:
            break
    return found


async def prepare_suggestions(store: Store, engine: Engine, conversation: Conversation, channel: str,
                              text: str, understanding: Understanding | None) -> list[Suggestion]:
    """Suggestions for the customer's latest message, kept for the desks; never raises for
    NLU trouble (the assistant is a help, the message is what matters)."""
    try:
        understood = understanding if understanding is not None and understanding.ranking else engine.understand(text)
        suggestions = suggest(engine, conversation, channel, understood)
    except Exception:
        log.exception("assist.suggest_failed", conversation=conversation.id)
        return []
    await store.kv_set(KEY_PREFIX + conversation.id, {
        "text": text, "language": conversation.language,
        "suggestions": [s.as_dict() for s in suggestions],
    }, ttl_seconds=KEEP_SECONDS)
    log.info("assist.suggested", conversation=conversation.id, count=len(suggestions),
             intents=[s.intent for s in suggestions])
    return suggestions


async def stored_suggestions(store: Store, conversation_id: str) -> tuple[str | None, str | None, list[Suggestion]]:
    """(latest customer text, its language, suggestions) as `prepare_suggestions` kept them."""
    data = await store.kv_get(KEY_PREFIX + conversation_id)
    if not isinstance(data, dict):
        return None, None, []
    items = [Suggestion.from_dict(s) for s in data.get("suggestions") or [] if isinstance(s, dict) and s.get("text")]
    return data.get("text"), data.get("language"), items


# -- summary and previous cases (read time, from the transcript) -------------------------
def one_line_summary(summary: HandoffSummary, events: Sequence[Event]) -> str:
    """What the customer wants and what the bot already did, in one line."""
    wants = next((i for i in (summary.intent, summary.topic) if i and i not in SKIP_INTENTS), None)
    said = f" (“{_clip(summary.trigger_text, 80)}”)" if summary.trigger_text else ""
    wants = wants or "a person"
    intents: list[str] = []
    answered: list[str] = []
    actions: list[str] = []
    for event in events:
        if event.type == "user":
            intent = event_intent(event)
            if intent and intent not in intents and intent not in SKIP_INTENTS:
                intents.append(intent)
        elif event.type == "bot":
            response = (event.data.get("metadata") or {}).get("utter_action")
            if response and response not in answered:
                answered.append(str(response))
        elif event.type == "action":
            name = str(event.data.get("name") or "")
            if name and not name.startswith(("utter_", "action_listen", "action_session_start")) \
                    and name not in actions:
                actions.append(name)
    parts = [f"Wants: {wants}{said}"]
    if intents:
        parts.append("asked about " + ", ".join(intents[-5:]))
    if answered:
        parts.append("bot answered " + ", ".join(a.removeprefix("utter_") for a in answered[-5:]))
    if actions:
        parts.append("bot ran " + ", ".join(actions[-4:]))
    slots = [f"{k}={_clip(str(v), 30)}" for k, v in summary.slots.items()
             if v not in (None, "", []) and k not in ("language", "session_started_metadata", "requested_slot")
             and not k.startswith(("mood", "sentiment", "frustration"))]
    if slots:
        parts.append("known: " + ", ".join(slots[:5]))
    parts.append(f"handed off: {summary.reason}")
    return _clip("; ".join(parts), _SUMMARY_MAX) or ""


def previous_cases(events: Sequence[Event]) -> list[PastCase]:
    """The customer's closed handoffs in this transcript, newest first (the open one excluded)."""
    cases: list[PastCase] = []
    current: dict[str, Any] | None = None
    for event in events:
        data = event.data
        if event.type == "handoff" and data.get("reason"):
            if current is not None and current.get("ended"):
                cases.append(_case(current))
            current = {"since": event.timestamp, "reason": str(data["reason"]), "agents": [], "rating": None,
                       "ended": None}
            continue
        if current is None:
            continue
        name = None
        if event.type == "status":
            name = data.get("agent_name")
            if data.get("status") in ("closed", "bot") and current["ended"] is None:
                current["ended"] = event.timestamp
        elif event.type == "bot" and (data.get("metadata") or {}).get("author") == "agent":
            name = (data.get("metadata") or {}).get("author_name")
        elif event.type == "csat" and isinstance(data.get("score"), int):
            current["rating"] = int(data["score"])
            name = data.get("agent_name")
            current["ended"] = current["ended"] or event.timestamp
        if name and str(name) not in current["agents"]:
            current["agents"].append(str(name))
    if current is not None and current.get("ended"):
        cases.append(_case(current))
    return cases[::-1]


def _case(raw: dict[str, Any]) -> PastCase:
    return PastCase(raw["since"], raw["reason"], tuple(raw["agents"]), raw["rating"], raw["ended"])


async def assistance(store: Store, summary: HandoffSummary, *,
                     mask: Callable[[str], str] | None = None) -> Assistance:
    """Everything the assistant offers for the summary's conversation (texts through ``mask``)."""
    conversation = summary.conversation
    events = await store.transcript(conversation.id, limit=TRANSCRIPT_LIMIT)
    text, language, suggestions = await stored_suggestions(store, conversation.id)
    last, _ = handoff_trigger(events)
    cases = previous_cases(events)
    if last is not None and conversation.status.value in ("waiting", "agent"):
        cases = [c for c in cases if c.since < last.timestamp]  # the open handoff is not a previous case
    shown = mask(text) if mask is not None and text else text
    return Assistance(shown, language or conversation.language, tuple(suggestions),
                      one_line_summary(summary, events), tuple(cases))


def _clip(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
