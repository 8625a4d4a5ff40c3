"""Plugs the case analytics into a farm: the recorder's hooks, store-backed metrics, the insights page.

`install_analytics(farm)` is called from ``Farm._install_extensions`` after the handoff and
privacy layers. Per bot the `CaseRecorder` goes last among the after-commit hooks (it only
reads what the turn committed); it observes the `HandoffService`'s agent actions and listens
for dead letters. ``farm.services``: ``analytics_metrics`` (`StoreMetrics`); with the web desk,
the lead's insights page is mounted at ``/desk/insights``.
"""

from __future__ import annotations

from typing import Any

from core.analytics.insights import InsightsPage
from core.analytics.prometheus import StoreMetrics
from core.analytics.recorder import CaseRecorder, session_expiry_seconds


def install_analytics(farm: Any) -> None:
    """Wire the analytics into ``farm`` (a `core.farm.Farm` during `start`); idempotent."""
    if "analytics" in farm.services:
        return
    store = farm.store
    config = farm.config
    recorder = CaseRecorder(
        store,
        {bot: session_expiry_seconds(runtime.engine) for bot, runtime in farm.runtimes.items()},
        {bot: bot_config.handoff.frustration_threshold for bot, bot_config in config.bots.items()},
    )
    farm.services["analytics"] = recorder
    for runtime in farm.runtimes.values():
        runtime.after.append(recorder)
    if farm.turns is not None:
        farm.turns.dead_letter_listeners.append(recorder)
    handoff = farm.services.get("handoff")
    if handoff is not None:
        handoff.observers.append(recorder.agent_action)
    farm.services["analytics_metrics"] = StoreMetrics(store, tuple(config.bots))
    desk = farm.services.get("web_desk")
    if desk is not None:
        farm.extra_routes.extend(InsightsPage(desk, store, tuple(config.bots)).routes())
