"""Extension points of a conversation turn.

A turn runs: interceptors (in order; the first that returns an output ends the
turn, e.g. an explicit request for a person, a link code, a message relayed to
an agent) → preparers (slot values the engine sees for this message, e.g. the
customer's mood) → the bot's engine → post-processors (in order; each may amend
the output, e.g. handoff triggers, the automated-assistant disclosure, erasure) →
the commit, with the in-commit hooks' writes riding along (e.g. the case figures) →
after-commit hooks (notify desks, erase data).

Hooks receive everything as arguments and return new values; they never write
to the store themselves except through the `TurnServices` they are given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.engine import Engine, TurnInput, TurnOutput
from core.model import Event
from core.store.records import TurnWrite


@dataclass(frozen=True, slots=True)
class TurnContext:
    """One customer message being processed, with what the hooks may need."""

    turn: TurnInput
    engine: Engine
    bot_config: Any  # core.config.BotConfig (kept loose to avoid an import cycle)
    state: dict[str, Any] = field(default_factory=dict)  # scratch space shared by hooks of one turn


class Interceptor(Protocol):
    async def intercept(self, ctx: TurnContext) -> TurnOutput | None:
        """Handle the message instead of the engine, or return None to pass it on."""


class Preparer(Protocol):
    def prepare(self, ctx: TurnContext) -> Mapping[str, Any]:
        """Slot values the engine sees for this message (slots its domain lacks are ignored)."""


class PostProcessor(Protocol):
    async def process(self, ctx: TurnContext, output: TurnOutput) -> TurnOutput:
        """Amend the engine's (or an interceptor's) output."""


class AfterCommit(Protocol):
    def has_work(self, ctx: TurnContext, output: TurnOutput) -> bool:
        """Whether `committed` will act on this turn.

        Asked before the commit: when no hook has work, the commit also releases the
        conversation's turn lease; otherwise the hooks run while it is still held, so
        no other process starts the conversation's next turn meanwhile.
        """

    async def committed(self, ctx: TurnContext, output: TurnOutput, events: Sequence[Event]) -> None:
        """Runs once the turn is durably committed (notify desks, erase data), and only when
        `has_work` said so for this turn."""


class InCommit(Protocol):
    def write(self, ctx: TurnContext, output: TurnOutput, events: Sequence[Event]) -> TurnWrite | None:
        """A write that rides along with the turn's commit, or None (asked just before it).

        ``events``: what the commit stores. The store runs the write in the turn's own unit
        where it can (SQLite), else right after the commit; it is written only if the turn
        commits, and its failure is logged and counted, never failing the turn. Pure: it must
        not write anything itself (a turn that loses a race asks again when it is retried).
        """
