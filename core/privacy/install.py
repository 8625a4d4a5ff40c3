"""Identity linking, disclosure, erasure on request and retention, as a plugin (`core.plugins`).

`PrivacyPlugin` declares per bot the `LinkCodeInterceptor` (first interceptor, and after
commit, where it merges the linked contacts), the `DisclosurePostProcessor` (last
post-processor), the `MediaRecorder` (where uploads went, for forget and export) and
`ForgetAfterCommit` (last after commit); per bot a ``desk-erasure`` outbound destination
(`DeskErasureChannel`: the outbox delivers erasure jobs through it to the desks that can
erase, e.g. Slack); what is stored of a turn (`AtRest`: card numbers and IBANs masked,
sensitive slots sealed); and farm-wide the ``privacy`` service and the ``retention``
scheduler (a service: started and stopped with the farm).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from core.errors import ConfigError
from core.plugins import (
    AfterCommitOrder,
    Hooks,
    InterceptorOrder,
    Ordered,
    PluginContext,
    PluginParts,
    PostProcessorOrder,
)
from core.privacy.at_rest import AtRest, Sealer
from core.privacy.config import PrivacyConfig
from core.privacy.erasure import ERASURE_CHANNEL, DeskErasureChannel, ErasureTarget, MediaRecorder
from core.privacy.interceptors import (
    DisclosurePostProcessor,
    ForgetAfterCommit,
    LinkCodeInterceptor,
)
from core.privacy.masking import register_unsealer
from core.privacy.service import PrivacyService, RetentionScheduler

RETENTION_INTERVAL_SECONDS = 3600.0


class PrivacyBotSettings(Protocol):
    """What privacy reads of a bot's config (core.config.BotConfig)."""

    privacy: PrivacyConfig


class PrivacyPlugin:
    name = "privacy"

    def __init__(self, bots: Mapping[str, PrivacyBotSettings], *, sealer: Sealer | None = None,
                 retention_interval: float = RETENTION_INTERVAL_SECONDS) -> None:
        """``sealer``: the farm's data key (`core.privacy.at_rest.farm_sealer`); none: queued
        messages wait in clear and sensitive slots cannot be kept."""
        self.configs = {bot: settings.privacy for bot, settings in bots.items()}
        self.sealer = sealer
        self.retention_interval = retention_interval

    def build(self, ctx: PluginContext) -> PluginParts:
        for bot, config in self.configs.items():
            _check_sensitive_slots(bot, ctx.engines.get(bot), config)
        privacy = PrivacyService(ctx.store)
        retention = RetentionScheduler(ctx.store, self.configs, interval_seconds=self.retention_interval)
        link = LinkCodeInterceptor(ctx.identity, ctx.store)
        at_rest = AtRest(self.sealer, self.configs)
        if self.sealer is not None:
            register_unsealer(self.sealer.open_text)  # dead letters on the desks show the text, masked
        handoff = ctx.provided.get("handoff")  # built before privacy: its desks are known
        targets: dict[str, ErasureTarget] = {
            desk.name: desk for desk in getattr(handoff, "desks", ()) if callable(getattr(desk, "erase_thread", None))
        }
        hooks = Hooks(
            interceptors=(Ordered(InterceptorOrder.LINK_CODE, link),),
            post=(Ordered(PostProcessorOrder.DISCLOSURE, DisclosurePostProcessor()),),
            after=(Ordered(AfterCommitOrder.LINK_CODE, link),
                   Ordered(AfterCommitOrder.MEDIA_RECORD, MediaRecorder(ctx.store)),
                   Ordered(AfterCommitOrder.FORGET, ForgetAfterCommit(privacy, ctx.store))),
        )
        return PluginParts(
            hooks=hooks, services=(retention,), at_rest=at_rest,
            outbound={(bot, ERASURE_CHANNEL): DeskErasureChannel(bot, targets, ctx.store) for bot in ctx.bots},
            provides={"privacy": privacy, "retention": retention, "at_rest": at_rest},
        )


def _check_sensitive_slots(bot: str, engine: Any, config: PrivacyConfig | None) -> None:
    """Fail fast on a sensitive slot the bot's domain does not declare (a typo would store it in clear)."""
    domain = getattr(engine, "domain", None)
    slots = getattr(domain, "slots", None)
    if config is None or slots is None:
        return  # an engine without a Rasa domain (tests, plugins): nothing to check against
    unknown = [name for name in config.sensitive_slots if name not in slots]
    if unknown:
        raise ConfigError(f"sensitive slot(s) {unknown} are not slots of the bot's domain",
                          key=f"bots.{bot}.privacy.sensitive_slots")
