"""`AnalyticsStore`: service cases and their figures, kept apart from transcripts.

A *case* is one issue of one customer with one bot (``docs/kpis.md``): it starts with a
customer message when the conversation has no case yet, when its last case was closed by
an agent, or when the last case's latest customer message is older than the bot's session
expiry. Cases hold no personal data (no text, no contact, no phone), so retention purges
and ``forget`` leave them, and every figure, as they were.

Writes are incremental (`record_case`: one small update per turn or agent action) and
commutative where two processes may race (counters are added, first times are kept, a
new case is created under a unique key), so several farm processes on one MongoDB count
every case once. Reads (`case_cells`) come from daily aggregates per (bot, day, channel) that `record_case`
keeps (each counter is added exactly once, by the update that changed the case), or for
the groups that change during a case (language, agent, intent) from a ``GROUP BY`` over an
index on the start time; `case_durations` reads the handed-over cases only. A report over a
million cases never loads them as objects.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from core.store.records import TurnWrite

# What a report may group by, as stored; ``week`` is made of ``day`` by the report.
CASE_GROUPS = ("day", "channel", "language", "agent", "intent")


@dataclass(frozen=True, slots=True)
class CaseUpdate:
    """What one step of a conversation adds to its current case (no personal data).

    ``opens``: a customer message, which starts a new case when none is open (see the
    module docstring); other updates (an agent's claim, a rating after the close) go to the
    conversation's latest case and are dropped when it has none. Times are ``at``.
    """

    bot: str
    conversation_id: str
    at: datetime
    opens: bool = False
    expiry_seconds: float = 3600.0  # the bot's session expiry (0: a case ends only when closed)
    channel: str | None = None  # the case's channel is that of its first message
    language: str | None = None  # the latest known
    intent: str | None = None  # the case's topic: the first one given is kept
    customer_messages: int = 0
    bot_messages: int = 0
    agent_messages: int = 0
    fallbacks: int = 0
    frustration_peaks: int = 0
    dead_letters: int = 0
    handoff_reason: str | None = None  # the first handoff of a case is its handoff
    handoff_intent: str | None = None
    claimed_by: str | None = None  # the first claim of the case (agent id)
    agent_replied: bool = False  # the first agent reply of the case
    agent_done: bool = False  # the agent's part ended (close, or back to the bot)
    closed: bool = False  # closed by an agent: the next customer message opens a new case
    csat: int | None = None  # 1-5; the first rating of a case counts


@dataclass(frozen=True, slots=True)
class CaseQuery:
    """Cases of ``bot`` (None: all) that started in [since, until), grouped by ``by`` (None: per bot)."""

    bot: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    by: str | None = None  # one of CASE_GROUPS

    def __post_init__(self) -> None:
        if self.by is not None and self.by not in CASE_GROUPS:
            raise ValueError(f"cases group by one of {', '.join(CASE_GROUPS)}, not {self.by!r}")

    @property
    def by_day(self) -> bool:
        """Whether the daily aggregates answer it: grouped by nothing, day or channel, whole UTC days."""
        return self.by in (None, "day", "channel") and all(
            bound is None or bound == bound.replace(hour=0, minute=0, second=0, microsecond=0)
            for bound in (self.since, self.until))


@dataclass(slots=True)
class CaseCell:
    """Sums over the cases of one (bot, group key): counts, handoffs by reason, ratings by score."""

    bot: str
    key: str | None
    cases: int = 0
    handoffs: dict[str, int] = field(default_factory=dict)  # reason of the first handoff -> cases
    csat: dict[int, int] = field(default_factory=dict)  # score -> rated cases
    with_fallback: int = 0  # cases with at least one fallback
    fallbacks: int = 0
    frustration_peaks: int = 0
    dead_letters: int = 0
    customer_messages: int = 0
    bot_messages: int = 0
    agent_messages: int = 0
    claimed: int = 0
    closed: int = 0

    def add(self, name: str, value: int) -> None:
        """Add ``value`` to the counter ``name`` (``handoffs:<reason>`` and ``csat:<score>`` included)."""
        kind, _, label = name.partition(":")
        if kind == "handoffs":
            self.handoffs[label] = self.handoffs.get(label, 0) + value
        elif kind == "csat":
            self.csat[int(label)] = self.csat.get(int(label), 0) + value
        else:
            setattr(self, name, getattr(self, name) + value)


# The counters of a `CaseCell` as the stores keep them per (bot, day, channel).
CELL_COUNTERS = ("cases", "with_fallback", "fallbacks", "frustration_peaks", "dead_letters", "customer_messages",
                 "bot_messages", "agent_messages", "claimed", "closed")


@dataclass(slots=True)
class CaseDurations:
    """Seconds per handed-over case of one (bot, group key), each list sorted ascending."""

    bot: str
    key: str | None
    to_claim: list[float] = field(default_factory=list)
    to_first_reply: list[float] = field(default_factory=list)
    handle: list[float] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CaseTotal:
    """An all-time counter (``cases``, ``handoffs``, ``csat_responses``, ``csat_score_sum``,
    ``fallbacks``, ``dead_letters``) of one bot; ``label`` is the handoff reason, else ``""``."""

    bot: str
    name: str
    label: str
    value: int


@dataclass(frozen=True, slots=True)
class LiveCases:
    """The cases of one bot as they stand: waiting for an agent (and the oldest wait), open."""

    bot: str
    waiting: int
    oldest_wait_seconds: float
    open: int


def totals_from_counts(counts: Iterable[tuple[str, str, int]]) -> list[CaseTotal]:
    """`CaseTotal`s from (bot, counter name, all-time sum) of the daily aggregates."""
    totals: dict[tuple[str, str, str], int] = {}
    for bot, name, value in counts:
        kind, _, label = name.partition(":")
        if kind == "csat":
            for total_name, add in (("csat_responses", value), ("csat_score_sum", int(label) * value)):
                totals[(bot, total_name, "")] = totals.get((bot, total_name, ""), 0) + add
        elif kind in ("cases", "handoffs", "fallbacks", "dead_letters"):
            totals[(bot, kind, label)] = totals.get((bot, kind, label), 0) + value
    return [CaseTotal(bot, name, label, value) for (bot, name, label), value in sorted(totals.items()) if value]


class AnalyticsStore(ABC):
    """Cases and their figures: incremental writes, aggregated reads."""

    @abstractmethod
    async def record_case(self, update: CaseUpdate) -> None:
        """Apply ``update`` to the conversation's current case (opening one if it ``opens``)."""

    def turn_write(self, update: CaseUpdate) -> TurnWrite:
        """``update`` (a customer turn's) as a write that rides along with the turn's commit
        (`TurnUnitOfWork.finish_turn`'s ``also``): by default `record_case` right after it;
        a store whose turn unit can hold it returns a write the unit runs inside."""
        return TurnWrite("analytics", lambda: self.record_case(update))

    @abstractmethod
    async def case_cells(self, query: CaseQuery) -> list[CaseCell]:
        """The sums of the cases ``query`` selects, one cell per (bot, group key).

        Per bot, day or channel they come from daily aggregates kept up to date by `record_case`
        (a few rows per day, whatever the number of cases); by language, agent or intent, which
        change during a case, from the cases themselves (an indexed range of start times)."""

    @abstractmethod
    async def case_durations(self, query: CaseQuery) -> list[CaseDurations]:
        """Time to claim, to the first agent reply, and handle time of the handed-over cases ``query`` selects."""

    @abstractmethod
    async def case_totals(self) -> list[CaseTotal]:
        """All-time counters per bot (they only grow; for Prometheus): the daily aggregates summed."""

    @abstractmethod
    async def live_cases(self, now: datetime) -> list[LiveCases]:
        """Per bot: cases waiting for an agent, the oldest wait, and open cases at ``now``."""

    @abstractmethod
    async def agent_seen(self, bot: str, agent_id: str, at: datetime) -> None:
        """An agent acted (claim, reply, note, close) at ``at``."""

    @abstractmethod
    async def agents_active(self, since: datetime) -> dict[str, int]:
        """Per bot, the agents who acted at or after ``since``."""
