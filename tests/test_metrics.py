"""`core.metrics.child`: the remembered label series count into the series /metrics serves."""

from __future__ import annotations

from prometheus_client import generate_latest

from core import metrics


def test_a_remembered_series_is_the_one_metrics_serves() -> None:
    first = metrics.child(metrics.TURNS, "metrics-test-bot", "ok")
    assert first is metrics.child(metrics.TURNS, "metrics-test-bot", "ok")
    assert first is metrics.TURNS.labels("metrics-test-bot", "ok")
    before = metrics.REGISTRY.get_sample_value(
        "switchboard_turns_total", {"bot": "metrics-test-bot", "outcome": "ok"}) or 0.0
    first.inc()
    metrics.child(metrics.TURNS, "metrics-test-bot", "handoff").inc()
    assert metrics.REGISTRY.get_sample_value(
        "switchboard_turns_total", {"bot": "metrics-test-bot", "outcome": "ok"}) == before + 1
    served = generate_latest(metrics.REGISTRY).decode()
    assert 'switchboard_turns_total{bot="metrics-test-bot",outcome="handoff"} 1.0' in served
