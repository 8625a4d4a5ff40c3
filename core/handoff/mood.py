"""The customer's mood as slots the bot can answer by, before anyone is handed over.

`MoodPreparer` scores the message with the frustration scorer (the one the handoff
trigger uses, over what the customer wrote earlier in this issue) and gives the engine
two slots for this turn: ``frustration`` (the score, 0–1) and ``mood`` (``upset`` from
``handoff.upset_threshold``, else ``calm``). A bot that declares them can choose calmer
response variations by condition (``condition: [{type: slot, name: mood, value: upset}]``);
a bot that does not declare them is unaffected. The handoff trigger reuses the score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, overload

from core.handoff.frustration import HISTORY_WINDOW, FrustrationSignal
from core.handoff.hooks import issue_texts
from core.handoff.service import HandoffService
from core.handoff.triggers import frustration_score
from core.model import Event
from core.pipeline.hooks import TurnContext

SIGNAL_KEY = "frustration_signal"  # ctx.state: (text, signal), reused by the handoff trigger
CALM, UPSET = "calm", "upset"


def score_message(ctx: TurnContext) -> FrustrationSignal | None:
    """The frustration signal of this turn's message (None for button presses and empty text)."""
    message = ctx.turn.message
    text = "" if message.button_payload else message.text or ""
    if not text:
        return None
    return frustration_score(text, _IssueTexts(ctx.turn.history))


class _IssueTexts(Sequence[str]):
    """`issue_texts` of a history, read only if the scorer asks (it does for questions only)."""

    def __init__(self, history: Sequence[Event]) -> None:
        self._history = history
        self._texts: list[str] | None = None

    @property
    def texts(self) -> list[str]:
        if self._texts is None:
            self._texts = issue_texts(self._history, HISTORY_WINDOW)
        return self._texts

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return self.texts[index]

    def __len__(self) -> int:
        return len(self.texts)


class MoodPreparer:
    def __init__(self, service: HandoffService) -> None:
        self.service = service

    def prepare(self, ctx: TurnContext) -> Mapping[str, Any]:
        signal = score_message(ctx)
        ctx.state[SIGNAL_KEY] = signal
        if signal is None:
            return {}
        threshold = self.service.config(ctx.turn.conversation.bot).upset_threshold
        return {"frustration": round(signal.score, 2), "mood": UPSET if signal.exceeds(threshold) else CALM}
