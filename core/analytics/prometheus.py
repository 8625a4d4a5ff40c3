"""Store-backed Prometheus metrics: the queue, open cases and all-time case counters, from the store.

Process counters (``core.metrics``) reset on restart and count only what their own process
saw. These are read from the store (`AnalyticsStore.case_totals`, `live_cases`,
`agents_active`) every ``interval`` seconds by `StoreMetrics` and served by one collector on
``core.metrics.REGISTRY``, so every farm process reports the same store-wide values (in
PromQL take ``max by (bot)``, not ``sum``), and they survive restarts. Names and meanings:
``docs/kpis.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core import metrics
from core.errors import StoreError
from core.model import utcnow
from core.periodic import Periodic
from core.store.ports.analytics import AnalyticsStore, CaseTotal, LiveCases

log = structlog.get_logger(__name__)

AGENT_ONLINE_SECONDS = 300.0  # an agent who acted within this many seconds counts as online

# Counter name in the store -> (Prometheus name without _total, help, label of CaseTotal.label or None)
COUNTERS: dict[str, tuple[str, str, str | None]] = {
    "cases": ("switchboard_cases", "Service cases started (store-wide, all time)", None),
    "handoffs": ("switchboard_case_handoffs", "Cases handed to a person, by the reason of their first handoff",
                 "reason"),
    "csat_responses": ("switchboard_csat_responses", "CSAT ratings given (the first per case)", None),
    "csat_score_sum": ("switchboard_csat_score_sum", "Sum of the CSAT ratings given (1-5 each)", None),
    "fallbacks": ("switchboard_fallbacks", "Customer messages the bot did not understand (fallback turns)", None),
    "dead_letters": ("switchboard_case_dead_letters", "Customer messages whose turn failed for good", None),
}


@dataclass
class Snapshot:
    """What the store said at the last refresh."""

    totals: list[CaseTotal] = field(default_factory=list)
    live: list[LiveCases] = field(default_factory=list)
    agents: dict[str, int] = field(default_factory=dict)
    bots: tuple[str, ...] = ()


class StoreCollector(Collector):
    """Serves the latest `Snapshot` (one per process, set by the farm's `StoreMetrics`)."""

    def __init__(self) -> None:
        self.snapshot = Snapshot()

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        for name, (metric, text, label) in COUNTERS.items():
            family = CounterMetricFamily(metric, text, labels=["bot", label] if label else ["bot"])
            for total in snap.totals:
                if total.name == name:
                    family.add_metric([total.bot, total.label] if label else [total.bot], float(total.value))
            yield family
        live = {entry.bot: entry for entry in snap.live}
        bots = sorted(set(snap.bots) | set(live) | set(snap.agents))
        gauges = (
            ("switchboard_queue_waiting", "Cases waiting for an agent (store-wide)",
             lambda b: live[b].waiting if b in live else 0),
            ("switchboard_queue_oldest_wait_seconds", "How long the longest-waiting case has waited",
             lambda b: live[b].oldest_wait_seconds if b in live else 0.0),
            ("switchboard_cases_open", "Cases not closed and not expired, or with agents",
             lambda b: live[b].open if b in live else 0),
            ("switchboard_agents_online", f"Agents who acted in the last {int(AGENT_ONLINE_SECONDS)} s",
             lambda b: snap.agents.get(b, 0)),
        )
        for metric, text, value in gauges:
            gauge = GaugeMetricFamily(metric, text, labels=["bot"])
            for bot in bots:
                gauge.add_metric([bot], float(value(bot)))
            yield gauge


COLLECTOR = StoreCollector()
metrics.REGISTRY.register(COLLECTOR)


class StoreMetrics:
    """A farm service: refreshes `COLLECTOR` from the store every ``interval`` seconds."""

    def __init__(self, store: AnalyticsStore, bots: tuple[str, ...], *, interval: float = 5.0,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.bots = bots
        self.interval = interval
        self.clock = clock
        self._job = Periodic("analytics", interval, self._step)

    async def refresh(self) -> Snapshot:
        now = self.clock()
        snapshot = Snapshot(await self.store.case_totals(), await self.store.live_cases(now),
                            await self.store.agents_active(now - timedelta(seconds=AGENT_ONLINE_SECONDS)), self.bots)
        COLLECTOR.snapshot = snapshot
        return snapshot

    async def start(self) -> None:
        await self._job.start()

    async def stop(self) -> None:
        await self._job.stop()

    async def _step(self) -> None:
        try:
            await self.refresh()
        except StoreError as exc:
            log.warning("analytics.metrics_refresh_failed", error=str(exc))
