"""`AnalyticsStore`: service cases and their figures, kept apart from transcripts.

A *case* is one issue of one customer with one bot (``docs/kpis.md``): it starts with a
customer message when the conversation has no case yet, when its last case was closed by
an agent, or when the last case's latest customer message is older than the bot's session
expiry. Cases hold no personal data (no text, no contact, no phone), so retention purges
and ``forget`` leave them, and every figure, as they were.

Writes are incremental (`record_case`: one small update per turn or agent action) and
commutative where two processes may race (counters are added, first times are kept, a
new case is created under a unique key), so several farm processes on one MongoDB count
every case once. Reads (`case_cells`, `case_durations`) aggregate inside the store over an
index on the start time, so a report over a million cases never loads them as objects.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime

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


@dataclass(frozen=True, slots=True)
class CaseCell:
    """Sums over the cases of one (bot, group key, handoff reason, CSAT score)."""

    bot: str
    key: str | None
    handoff_reason: str | None  # None: bot-only cases
    csat: int | None
    cases: int = 0
    with_fallback: int = 0  # cases with at least one fallback
    fallbacks: int = 0
    frustration_peaks: int = 0
    dead_letters: int = 0
    customer_messages: int = 0
    bot_messages: int = 0
    agent_messages: int = 0
    claimed: int = 0
    closed: int = 0


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


class AnalyticsStore(ABC):
    """Cases and their figures: incremental writes, aggregated reads."""

    @abstractmethod
    async def record_case(self, update: CaseUpdate) -> None:
        """Apply ``update`` to the conversation's current case (opening one if it ``opens``)."""

    @abstractmethod
    async def case_cells(self, query: CaseQuery) -> list[CaseCell]:
        """The sums of the cases ``query`` selects, one cell per (bot, key, handoff reason, CSAT)."""

    @abstractmethod
    async def case_durations(self, query: CaseQuery) -> list[CaseDurations]:
        """Time to claim, to the first agent reply, and handle time of the handed-over cases ``query`` selects."""

    @abstractmethod
    async def case_totals(self) -> list[CaseTotal]:
        """All-time counters per bot (they only grow; for Prometheus)."""

    @abstractmethod
    async def live_cases(self, now: datetime) -> list[LiveCases]:
        """Per bot: cases waiting for an agent, the oldest wait, and open cases at ``now``."""

    @abstractmethod
    async def agent_seen(self, bot: str, agent_id: str, at: datetime) -> None:
        """An agent acted (claim, reply, note, close) at ``at``."""

    @abstractmethod
    async def agents_active(self, since: datetime) -> dict[str, int]:
        """Per bot, the agents who acted at or after ``since``."""
