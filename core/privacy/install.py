"""Wires identity linking, disclosure, erasure on request and retention into a farm.

Call `install(farm)` from ``Farm._install_extensions``; it is idempotent. It adds per bot:
the `LinkCodeInterceptor` (first interceptor and an after-commit hook), the
`DisclosurePostProcessor` (last post-processor), `ForgetAfterCommit` and the
`DeskErasureChannel` (``farm.channels[(bot, "desk-erasure")]``: the outbox delivers desk
erasure jobs through it to the desks that can erase, e.g. Slack); and farm-wide the
``privacy`` service and the ``retention`` scheduler in ``farm.services`` (the farm starts
and stops services that have ``start``/``stop``).
"""

from __future__ import annotations

from typing import Any

from core.errors import ConfigError
from core.identity import IdentityService
from core.privacy.at_rest import AtRest, farm_sealer
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


def install(farm: Any, *, retention_interval: float = RETENTION_INTERVAL_SECONDS) -> None:
    """Add the privacy hooks to every bot runtime of ``farm`` (a `core.farm.Farm` after wiring)."""
    store = farm.store
    configs = {bot: bot_config.privacy for bot, bot_config in farm.config.bots.items()}
    identity = farm.services.get("identity")
    if not isinstance(identity, IdentityService):
        identity = IdentityService(store, configs)
        farm.services["identity"] = identity
    privacy = farm.services.get("privacy")
    if not isinstance(privacy, PrivacyService):
        privacy = PrivacyService(store)
        farm.services["privacy"] = privacy
    if "retention" not in farm.services:
        farm.services["retention"] = RetentionScheduler(store, configs, interval_seconds=retention_interval)
    handoff = farm.services.get("handoff")
    targets: dict[str, ErasureTarget] = {
        desk.name: desk for desk in getattr(handoff, "desks", ()) if callable(getattr(desk, "erase_thread", None))
    }
    for bot in farm.config.bots:  # erasure jobs in the outbox are delivered through this "channel"
        if (bot, ERASURE_CHANNEL) not in farm.channels:
            farm.channels[(bot, ERASURE_CHANNEL)] = DeskErasureChannel(bot, targets, store)
    at_rest = farm.services.get("at_rest")
    if not isinstance(at_rest, AtRest):
        at_rest = AtRest(farm_sealer(farm.config), configs)
        farm.services["at_rest"] = at_rest
        if at_rest.sealer is not None:
            register_unsealer(at_rest.sealer.open_text)  # dead letters on the desks show the text, masked
    if getattr(farm, "turns", None) is not None:
        farm.turns.at_rest = at_rest
    if getattr(farm, "ingest", None) is not None:
        farm.ingest.prepare = at_rest.seal_inbound
    for runtime in farm.runtimes.values():
        _check_sensitive_slots(runtime.name, runtime.engine, configs.get(runtime.name))
        link = next((h for h in runtime.interceptors if isinstance(h, LinkCodeInterceptor)), None)
        if link is None:
            link = LinkCodeInterceptor(identity, store)
            runtime.interceptors.insert(0, link)
        if link not in runtime.after:
            runtime.after.append(link)
        if not any(isinstance(h, DisclosurePostProcessor) for h in runtime.post):
            runtime.post.append(DisclosurePostProcessor())
        if not any(isinstance(h, MediaRecorder) for h in runtime.after):
            runtime.after.append(MediaRecorder(store))  # where uploads went, for forget and export
        if not any(isinstance(h, ForgetAfterCommit) for h in runtime.after):
            runtime.after.append(ForgetAfterCommit(privacy, store))


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
