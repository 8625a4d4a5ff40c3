"""The service report: case cells and durations from the store folded into the figures of ``docs/kpis.md``.

`build_report` is the one place the figures are computed; ``switchboard report`` and the
insights page both print what it returns (JSON, CSV, a table), so they always agree.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from core.store.ports.analytics import AnalyticsStore, CaseCell, CaseDurations, CaseQuery

GROUPINGS = ("day", "week", "channel", "language", "agent", "intent")
REASONS = ("requested", "frustration", "fallback", "intent", "action")  # always listed, in this order
NO_KEY = "(none)"  # the group of cases without a value (bot-only cases --by agent, no language yet)


@dataclass
class _Sums:
    cases: int = 0
    bot_only: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    csat: dict[int, int] = field(default_factory=dict)
    with_fallback: int = 0
    fallbacks: int = 0
    dead_letters: int = 0
    customer: int = 0
    bot: int = 0
    agent: int = 0
    closed: int = 0

    def add(self, cell: CaseCell) -> None:
        self.cases += cell.cases
        self.bot_only += cell.cases - sum(cell.handoffs.values())
        for reason, n in cell.handoffs.items():
            self.by_reason[reason] = self.by_reason.get(reason, 0) + n
        for score, n in cell.csat.items():
            self.csat[score] = self.csat.get(score, 0) + n
        self.with_fallback += cell.with_fallback
        self.fallbacks += cell.fallbacks
        self.dead_letters += cell.dead_letters
        self.customer += cell.customer_messages
        self.bot += cell.bot_messages
        self.agent += cell.agent_messages
        self.closed += cell.closed


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of sorted ``values`` (the smallest value with at least p % at or below it)."""
    if not values:
        return None
    rank = max(1, math.ceil(p / 100 * len(values)))
    return round(values[rank - 1], 3)


def _spread(values: Sequence[float]) -> dict[str, float | None]:
    return {"p50": percentile(values, 50), "p90": percentile(values, 90),
            "max": round(values[-1], 3) if values else None}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def figures(sums: _Sums, durations: CaseDurations | None) -> dict[str, Any]:
    """The figures of one bot or group, exactly the report's fields (``docs/kpis.md``)."""
    handoffs = sums.cases - sums.bot_only
    reasons = {reason: sums.by_reason.get(reason, 0) for reason in REASONS}
    reasons.update({r: n for r, n in sorted(sums.by_reason.items()) if r not in reasons})
    responses = sum(sums.csat.values())
    score_sum = sum(score * n for score, n in sums.csat.items())
    empty = CaseDurations("", None)
    spans = durations or empty
    return {
        "cases": sums.cases,
        "bot_only": sums.bot_only,
        "containment_rate": _rate(sums.bot_only, sums.cases),
        "handoffs": handoffs,
        "handoffs_by_reason": reasons,
        "time_to_claim_seconds": _spread(spans.to_claim),
        "time_to_first_reply_seconds": _spread(spans.to_first_reply),
        "handle_time_seconds": _spread(spans.handle),
        "csat": {
            "responses": responses,
            "average": round(score_sum / responses, 2) if responses else None,
            "distribution": {str(score): sums.csat.get(score, 0) for score in range(1, 6)},
            "response_rate": _rate(responses, sums.closed),
        },
        "fallback_rate": _rate(sums.fallbacks, sums.customer),
        "messages": {"customer": sums.customer, "bot": sums.bot, "agent": sums.agent},
        "dead_letters": sums.dead_letters,
    }


def iso_week(day: str) -> str:
    year, week, _ = date.fromisoformat(day).isocalendar()
    return f"{year}-W{week:02d}"


def _merge(into: CaseDurations, more: CaseDurations) -> None:
    into.to_claim.extend(more.to_claim)
    into.to_first_reply.extend(more.to_first_reply)
    into.handle.extend(more.handle)


def _sorted(durations: CaseDurations) -> CaseDurations:
    durations.to_claim.sort()
    durations.to_first_reply.sort()
    durations.handle.sort()
    return durations


def fold(cells: Iterable[CaseCell], durations: Iterable[CaseDurations], by: str | None,
         since: datetime | None = None, until: datetime | None = None) -> dict[str, Any]:
    """The report of cells and durations grouped ``by`` (pure; ``week`` folds days)."""
    def key_of(key: str | None) -> str:
        if key is None:
            return NO_KEY
        return iso_week(key) if by == "week" else key

    totals: dict[str, _Sums] = {}
    groups: dict[str, dict[str, _Sums]] = {}
    for cell in cells:
        totals.setdefault(cell.bot, _Sums()).add(cell)
        if by is not None:
            groups.setdefault(cell.bot, {}).setdefault(key_of(cell.key), _Sums()).add(cell)
    total_spans: dict[str, CaseDurations] = {}
    group_spans: dict[tuple[str, str], CaseDurations] = {}
    for spans in durations:
        _merge(total_spans.setdefault(spans.bot, CaseDurations(spans.bot, None)), spans)
        if by is not None:
            key = key_of(spans.key)
            _merge(group_spans.setdefault((spans.bot, key), CaseDurations(spans.bot, key)), spans)
    bots: dict[str, Any] = {}
    for bot in sorted(totals):
        bot_spans = total_spans.get(bot)
        entry = figures(totals[bot], _sorted(bot_spans) if bot_spans else None)
        if by is not None:
            entry["groups"] = {
                key: figures(sums, _sorted(group_spans[(bot, key)]) if (bot, key) in group_spans else None)
                for key, sums in sorted(groups.get(bot, {}).items())
            }
        bots[bot] = entry
    return {
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "by": by,
        "bots": bots,
    }


def day_range(since: date | None, until: date | None) -> tuple[datetime | None, datetime | None]:
    """Dates (UTC, both included) as the store's half-open range of start times."""
    start = datetime(since.year, since.month, since.day, tzinfo=UTC) if since else None
    end = datetime(until.year, until.month, until.day, tzinfo=UTC) + timedelta(days=1) if until else None
    return start, end


async def build_report(store: AnalyticsStore, *, bot: str | None = None, since: date | None = None,
                       until: date | None = None, by: str | None = None) -> dict[str, Any]:
    """The report of the cases that started from ``since`` through ``until`` (UTC dates, both included)."""
    if by is not None and by not in GROUPINGS:
        raise ValueError(f"--by must be one of {', '.join(GROUPINGS)}, not {by!r}")
    start, end = day_range(since, until)
    query = CaseQuery(bot=bot, since=start, until=end, by="day" if by == "week" else by)
    cells = await store.case_cells(query)
    durations = await store.case_durations(query)
    report = fold(cells, durations, by, start, end)
    report["until"] = until.isoformat() if until else None
    report["since"] = since.isoformat() if since else None
    return report


# -- flat rows: CSV and the table ------------------------------------------------------------------
def _reasons(report: dict[str, Any]) -> list[str]:
    seen = list(REASONS)
    for entry in report["bots"].values():
        for group in [entry, *entry.get("groups", {}).values()]:
            seen += [r for r in group["handoffs_by_reason"] if r not in seen]
    return seen


def columns(report: dict[str, Any]) -> list[str]:
    spans = [f"{name}_{stat}" for name in ("time_to_claim_seconds", "time_to_first_reply_seconds",
                                           "handle_time_seconds") for stat in ("p50", "p90", "max")]
    return ["bot", "group", "cases", "bot_only", "containment_rate", "handoffs",
            *(f"handoffs_{reason}" for reason in _reasons(report)), *spans,
            "csat_responses", "csat_average", *(f"csat_{score}" for score in range(1, 6)), "csat_response_rate",
            "fallback_rate", "messages_customer", "messages_bot", "messages_agent", "dead_letters"]


def _row(bot: str, group: str, f: dict[str, Any], reasons: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = {"bot": bot, "group": group, "cases": f["cases"], "bot_only": f["bot_only"],
                           "containment_rate": f["containment_rate"], "handoffs": f["handoffs"]}
    for reason in reasons:
        row[f"handoffs_{reason}"] = f["handoffs_by_reason"].get(reason, 0)
    for name in ("time_to_claim_seconds", "time_to_first_reply_seconds", "handle_time_seconds"):
        for stat in ("p50", "p90", "max"):
            row[f"{name}_{stat}"] = f[name][stat]
    csat = f["csat"]
    row.update(csat_responses=csat["responses"], csat_average=csat["average"],
               **{f"csat_{s}": csat["distribution"][str(s)] for s in range(1, 6)},
               csat_response_rate=csat["response_rate"], fallback_rate=f["fallback_rate"],
               messages_customer=f["messages"]["customer"], messages_bot=f["messages"]["bot"],
               messages_agent=f["messages"]["agent"], dead_letters=f["dead_letters"])
    return row


def rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per bot (group ``all``) and per bot and group, in the CSV's columns."""
    reasons = _reasons(report)
    out = []
    for bot, entry in report["bots"].items():
        out.append(_row(bot, "all", entry, reasons))
        for key, group in entry.get("groups", {}).items():
            out.append(_row(bot, key, group, reasons))
    return out


def to_csv(report: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns(report), lineterminator="\n")
    writer.writeheader()
    for row in rows(report):
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue()


TABLE_COLUMNS = ("bot", "group", "cases", "bot_only", "containment_rate", "handoffs", "time_to_claim_seconds_p50",
                 "handle_time_seconds_p50", "csat_average", "csat_responses", "fallback_rate", "dead_letters")


def to_table(report: dict[str, Any]) -> str:
    table = [list(TABLE_COLUMNS)]
    for row in rows(report):
        table.append(["-" if row[c] is None else str(row[c]) for c in TABLE_COLUMNS])
    widths = [max(len(line[i]) for line in table) for i in range(len(TABLE_COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
             for line in table]
    if len(table) == 1:
        lines.append("(no cases in this range)")
    return "\n".join(lines) + "\n"
