"""Prometheus metrics of the farm (served at GET /metrics)."""

from __future__ import annotations

from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

REGISTRY = CollectorRegistry(auto_describe=True)

INBOUND = Counter(
    "switchboard_inbound_messages_total", "Customer messages accepted", ["bot", "channel"], registry=REGISTRY
)
DUPLICATES = Counter(
    "switchboard_inbound_duplicates_total", "Messages dropped as duplicates", ["bot", "channel"], registry=REGISTRY
)
REJECTED = Counter(
    "switchboard_requests_rejected_total", "Inbound requests rejected", ["route", "reason"], registry=REGISTRY
)
IGNORED = Counter(
    "switchboard_inbound_ignored_total", "Platform updates deliberately ignored", ["channel", "reason"],
    registry=REGISTRY,
)
TURNS = Counter("switchboard_turns_total", "Conversation turns processed", ["bot", "outcome"], registry=REGISTRY)
TURN_SECONDS = Histogram(
    "switchboard_turn_seconds", "Time to process one turn", ["bot"], registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
OUTBOUND = Counter(
    "switchboard_outbound_total", "Outbound delivery attempts by result", ["bot", "channel", "result"],
    registry=REGISTRY,
)
OUTBOX = Gauge("switchboard_outbox_items", "Outbox items by state", ["state"], registry=REGISTRY)
DELIVERY_SECONDS = Histogram(
    "switchboard_delivery_seconds", "Time from queueing to platform acceptance", ["channel"], registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30),
)
HANDOFFS = Counter("switchboard_handoffs_total", "Handoffs to people", ["bot", "reason"], registry=REGISTRY)
RECEIPTS = Counter(
    "switchboard_delivery_receipts_total", "Platform delivery receipts", ["channel", "status"], registry=REGISTRY
)
ERRORS = Counter("switchboard_errors_total", "Unexpected errors by component", ["component"], registry=REGISTRY)
DEAD_LETTERS = Counter(
    "switchboard_dead_letters_total", "Customer messages whose turn failed for good (dead-lettered)", ["bot"],
    registry=REGISTRY,
)
DEAD_LETTERS_WAITING = Gauge(
    "switchboard_dead_letters_waiting", "Dead letters waiting to be replayed or dropped (whole store)", registry=REGISTRY
)


M = TypeVar("M", bound=MetricWrapperBase)
_CHILDREN: dict[tuple[int, tuple[str, ...]], MetricWrapperBase] = {}


def child(metric: M, *values: str) -> M:
    """``metric.labels(*values)``, remembered: the hot path (every message) counts a few series
    over and over, and ``labels`` validates, locks and builds a key each time (~1.5 us)."""
    key = (id(metric), values)
    found = _CHILDREN.get(key)
    if found is None:
        found = _CHILDREN[key] = metric.labels(*values)
    return found  # type: ignore[return-value]
