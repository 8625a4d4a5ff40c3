"""The report's arithmetic (`core.analytics.report`): percentiles, weeks made of days, CSV rows, edge cases."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.analytics.report import fold, percentile, to_csv, to_table
from core.store.ports.analytics import CaseCell, CaseDurations


def test_percentiles_are_nearest_rank() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    assert (percentile(values, 50), percentile(values, 90)) == (5.0, 9.0)
    assert percentile([4.0], 90) == 4.0
    assert percentile([], 50) is None


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=200), st.integers(1, 100))
def test_a_percentile_is_one_of_the_values_with_at_least_p_percent_at_or_below(values: list[float], p: int) -> None:
    values.sort()
    found = percentile(values, p)
    assert found is not None
    at_or_below = sum(1 for v in values if v <= found + 1e-3)
    assert at_or_below / len(values) >= p / 100


def test_weeks_fold_the_days_counts_and_durations() -> None:
    cells = [
        CaseCell("shop", "2026-11-30", cases=3, customer_messages=3),  # Monday, week 49
        CaseCell("shop", "2026-12-02", cases=1, handoffs={"requested": 1}, csat={5: 1}, customer_messages=2,
                 claimed=1, closed=1),
        CaseCell("shop", "2026-12-07", cases=1, handoffs={"fallback": 1}, customer_messages=4, fallbacks=2),  # week 50
    ]
    spans = [CaseDurations("shop", "2026-12-02", to_claim=[30.0]), CaseDurations("shop", "2026-12-07", to_claim=[10.0])]
    report = fold(cells, spans, "week")
    shop = report["bots"]["shop"]
    assert shop["cases"] == 5 and shop["containment_rate"] == 0.6
    assert shop["time_to_claim_seconds"] == {"p50": 10.0, "p90": 30.0, "max": 30.0}
    weeks = shop["groups"]
    assert list(weeks) == ["2026-W49", "2026-W50"]
    assert (weeks["2026-W49"]["cases"], weeks["2026-W49"]["csat"]["average"]) == (4, 5.0)
    assert weeks["2026-W49"]["csat"]["response_rate"] == 1.0
    assert weeks["2026-W50"]["fallback_rate"] == 0.5
    assert weeks["2026-W50"]["handoffs_by_reason"]["fallback"] == 1


def test_the_csv_has_a_row_per_bot_and_group_with_every_reason_seen() -> None:
    cells = [CaseCell("shop", "telegram", cases=1, handoffs={"media": 1}), CaseCell("shop", None, cases=2)]
    rows = list(csv.DictReader(io.StringIO(to_csv(fold(cells, [], "channel")))))
    assert [(r["bot"], r["group"], r["cases"]) for r in rows] == [
        ("shop", "all", "3"), ("shop", "(none)", "2"), ("shop", "telegram", "1")]
    assert rows[0]["handoffs_media"] == "1" and rows[0]["handoffs_requested"] == "0"
    assert rows[1]["time_to_claim_seconds_p50"] == ""  # no value, not zero


def test_an_empty_range_says_so() -> None:
    report = fold([], [], None)
    assert report["bots"] == {}
    assert "no cases" in to_table(report)
    assert to_csv(report).count("\n") == 1  # the header only


@pytest.mark.parametrize("by", [None, "day"])
def test_rates_are_null_without_cases_to_divide_by(by: str | None) -> None:
    report = fold([CaseCell("shop", "2026-12-01", cases=1)], [], by)
    shop = report["bots"]["shop"]
    assert shop["csat"]["average"] is None and shop["csat"]["response_rate"] is None
    assert shop["fallback_rate"] is None  # no customer message counted in this cell
