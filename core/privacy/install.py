"""Identity linking, disclosure, erasure on request and retention, as a plugin (`core.plugins`).

`PrivacyPlugin` declares per bot the `LinkCodeInterceptor` (first interceptor, and after
commit, where it merges the linked contacts), the `DisclosurePostProcessor` (last
post-processor) and `ForgetAfterCommit` (last after commit); and farm-wide the ``privacy``
service and the ``retention`` scheduler (a service: started and stopped with the farm).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from core.plugins import (
    AfterCommitOrder,
    Hooks,
    InterceptorOrder,
    Ordered,
    PluginContext,
    PluginParts,
    PostProcessorOrder,
)
from core.privacy.config import PrivacyConfig
from core.privacy.interceptors import (
    DisclosurePostProcessor,
    ForgetAfterCommit,
    LinkCodeInterceptor,
)
from core.privacy.service import PrivacyService, RetentionScheduler

RETENTION_INTERVAL_SECONDS = 3600.0


class PrivacyBotSettings(Protocol):
    """What privacy reads of a bot's config (core.config.BotConfig)."""

    privacy: PrivacyConfig


class PrivacyPlugin:
    name = "privacy"

    def __init__(self, bots: Mapping[str, PrivacyBotSettings], *,
                 retention_interval: float = RETENTION_INTERVAL_SECONDS) -> None:
        self.configs = {bot: settings.privacy for bot, settings in bots.items()}
        self.retention_interval = retention_interval

    def build(self, ctx: PluginContext) -> PluginParts:
        privacy = PrivacyService(ctx.store)
        retention = RetentionScheduler(ctx.store, self.configs, interval_seconds=self.retention_interval)
        link = LinkCodeInterceptor(ctx.identity, ctx.store)
        hooks = Hooks(
            interceptors=(Ordered(InterceptorOrder.LINK_CODE, link),),
            post=(Ordered(PostProcessorOrder.DISCLOSURE, DisclosurePostProcessor()),),
            after=(Ordered(AfterCommitOrder.LINK_CODE, link),
                   Ordered(AfterCommitOrder.FORGET, ForgetAfterCommit(privacy, ctx.store))),
        )
        return PluginParts(hooks=hooks, services=(retention,), provides={"privacy": privacy, "retention": retention})
