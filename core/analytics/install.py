"""The case analytics as a farm plugin (`core.plugins`): the recorder's hooks and store-backed metrics.

`AnalyticsPlugin` records cases: its `CaseRecorder` is an in-commit hook
(`InCommitOrder.ANALYTICS`; its case update rides along with the turn's commit), listens for dead
letters, and hears the `HandoffService`'s agent actions through `agent_action`, which
`core.farm.farm_plugins` hands to the handoff plugin as an observer. Its service refreshes
the store-backed Prometheus series (`StoreMetrics`). ``Farm.services``: ``analytics`` (the
recorder) and ``analytics_metrics``. The lead's insights page is mounted by the web desk's
plugin (`core.web.desk_plugin`), which knows who is logged in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from core.analytics.prometheus import StoreMetrics
from core.analytics.recorder import CaseRecorder
from core.model import Conversation, Event
from core.plugins import Hooks, InCommitOrder, Ordered, PluginContext, PluginParts


class _HandoffSettings(Protocol):
    frustration_threshold: float


class _BotSettings(Protocol):
    @property
    def handoff(self) -> _HandoffSettings: ...


class AnalyticsPlugin:
    """Case analytics (see the module docstring); ``bots`` as in farm.yml (their handoff thresholds)."""

    name = "analytics"

    def __init__(self, bots: Mapping[str, _BotSettings]) -> None:
        self.thresholds = {bot: settings.handoff.frustration_threshold for bot, settings in bots.items()}
        self.recorder: CaseRecorder | None = None

    async def agent_action(self, conversation: Conversation, events: Sequence[Event]) -> None:
        """A `HandoffService` observer: an agent's committed action, recorded once the plugin is built."""
        if self.recorder is not None:
            await self.recorder.agent_action(conversation, events)

    def build(self, ctx: PluginContext) -> PluginParts:
        recorder = self.recorder = CaseRecorder(ctx.store, {}, self.thresholds)
        metrics = StoreMetrics(ctx.store, tuple(ctx.bots))
        return PluginParts(
            hooks=Hooks(in_commit=(Ordered(InCommitOrder.ANALYTICS, recorder),)),
            services=(metrics,),
            dead_letter_listeners=(recorder,),
            provides={"analytics": recorder, "analytics_metrics": metrics},
        )
