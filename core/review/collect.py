"""Which customer messages of a committed turn go to the review queue, and why (pure functions).

- ``fallback``: the NLU fell back (``nlu_fallback``) or the core fallback ran;
- ``low_confidence``: the intent's confidence is below the bot's ``review.confidence_threshold``;
- ``handoff``: the message led to a handoff (the handoff's reason is kept as detail);
- ``low_rating``: the customer rated the case ``review.rating_at_most`` or lower: the typed
  messages of that case (since the previous close or rating) are queued.

Only typed messages count (a button press is our own text), and fallback and confidence only
while the bot answers (a message relayed to an agent was never the bot's to understand).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.model import Event

FALLBACK_INTENT = "nlu_fallback"
FALLBACK_ACTION = "action_default_fallback"
# Intents the farm itself sets for its own commands; never the NLU's guess.
_FARM_INTENTS = frozenset({"csat", "back_to_bot", "handoff_callback", "handoff_email", "handoff_wait"})


@dataclass(frozen=True, slots=True)
class Candidate:
    """A customer message (a stored ``user`` event) and why it belongs in the review queue."""

    event: Event
    reasons: tuple[str, ...]
    detail: dict[str, Any] = field(default_factory=dict)


def _intent(event: Event) -> tuple[str | None, float | None]:
    intent = (event.data.get("parse_data") or {}).get("intent") or {}
    name = intent.get("name")
    confidence = intent.get("confidence")
    return (str(name) if name else None), (float(confidence) if isinstance(confidence, int | float) else None)


def is_typed(event: Event) -> bool:
    """A customer's own words: a user event with text that is no button press or command."""
    text = str(event.data.get("text") or "").strip()
    return event.type == "user" and bool(text) and not event.data.get("payload") and not text.startswith("/")


def predicted(event: Event) -> tuple[str | None, float | None]:
    """The NLU's intent and confidence recorded on a user event."""
    return _intent(event)


def turn_candidates(events: Sequence[Event], *, threshold: float, bot_answered: bool) -> list[Candidate]:
    """The customer message of one committed turn, if it fell back, was unsure or led to a handoff."""
    user = next((e for e in events if e.type == "user"), None)
    if user is None or not is_typed(user):
        return []
    reasons: list[str] = []
    detail: dict[str, Any] = {}
    name, confidence = _intent(user)
    if bot_answered and name not in _FARM_INTENTS:
        fell_back = name == FALLBACK_INTENT or any(
            e.type == "action" and e.data.get("name") == FALLBACK_ACTION for e in events)
        if fell_back:
            reasons.append("fallback")
        elif confidence is not None and confidence < threshold:
            reasons.append("low_confidence")
    handoff = next((e for e in events if e.type == "handoff" and e.data.get("reason")), None)
    if handoff is not None:
        reasons.append("handoff")
        detail["handoff_reason"] = handoff.data.get("reason")
    return [Candidate(user, tuple(reasons), detail)] if reasons else []


def rating_of(events: Sequence[Event]) -> int | None:
    """The CSAT score given in this turn, if any."""
    for event in events:
        score = event.data.get("score") if event.type == "csat" else None
        if isinstance(score, int):
            return score
    return None


def case_messages(transcript: Sequence[Event], rating: Event, limit: int) -> list[Event]:
    """The typed customer messages of the case ``rating`` rated, oldest first (at most ``limit``).

    The case runs back from the rating to the previous rating or the previous close (the
    close that asked for this rating does not end it), so an earlier case is not blamed.
    """
    found: list[Event] = []
    passed_close = False
    for event in reversed([e for e in transcript if e.seq < rating.seq]):
        if event.type == "csat":
            break
        if event.type == "status" and event.data.get("status") == "closed":
            if passed_close:
                break
            passed_close = True
            continue
        if is_typed(event) and _intent(event)[0] not in _FARM_INTENTS:
            found.append(event)
            if len(found) == limit:
                break
    return found[::-1]
