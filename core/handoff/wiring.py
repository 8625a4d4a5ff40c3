"""Plugs the human handoff into a farm: service, turn hooks, desks, re-pinger, delivery listener.

`install_handoff(farm)` is called from ``Farm._install_extensions`` (after the adapters
are built, before routes are mounted). Per bot it puts `HandoffInterceptor` in front of
the interceptors installed so far (a request for a person works from any state, mid-form
too; privacy's link-code interceptor may go in front of it, it never takes such a request)
and appends the post-processor and the after-commit hook. Also per bot: `ReadReceipts` first
(marks each message read as its turn starts), `MediaInterceptor` after the language switch
(media, edits, number changes; `core.handoff.media`), `NoDeskPostProcessor` after the
handoff post-processor (`core.handoff.no_desk`) and `NumberChange` after commit. Desks: the built-in web desk at ``/desk``
(``desk.web.enabled``) and, with ``desk.slack.enabled``, the Slack desk found through
the ``switchboard.desks`` entry point ``slack`` (the core never imports ``channels``);
Slack is then the primary desk (its thread id is stored on the conversation).

``farm.services``: ``handoff`` (the `HandoffService`, also the `DeskActions`),
``handoff_background`` (re-pings), ``web_desk``,
``slack_desk``.
"""

from __future__ import annotations

import asyncio
import contextlib
from importlib.metadata import entry_points
from typing import Any

import structlog

from core.config import FarmConfig
from core.errors import ConfigError, StoreError
from core.handoff.hooks import HandoffAfterCommit, HandoffInterceptor, HandoffPostProcessor
from core.handoff.media import MediaInterceptor, NumberChange, ReadReceipts
from core.handoff.mood import MoodPreparer
from core.handoff.no_desk import NoDeskPostProcessor, bots_without_agents
from core.handoff.service import REPING_LEASE, AgentPolicy, HandoffService
from core.language.switch import LanguageSwitchInterceptor
from core.pipeline.dead_letters import DeadLetters
from core.privacy.masking import Masker, contact_details

log = structlog.get_logger(__name__)

DESKS_GROUP = "switchboard.desks"


def agent_policy(config: FarmConfig) -> AgentPolicy:
    """Which agent may serve which bot: web agents per ``WebAgent.bots`` (empty = all); Slack
    agents (already checked by the Slack desk against its agent list) serve every bot."""
    web_agents = {f"web:{a.id}": a for a in config.desk.web.agents} if config.desk.web.enabled else {}
    slack = config.desk.slack.enabled

    def may_serve(agent_id: str, bot: str) -> bool:
        if agent_id.startswith("web:"):
            agent = web_agents.get(agent_id)
            return agent is not None and (not agent.bots or bot in agent.bots)
        if agent_id.startswith("slack:"):
            return slack
        return False

    return may_serve


async def _nothing() -> None:
    return None


class HandoffBackground:
    """Re-pings unclaimed handoffs (one farm process at a time, by lease)."""

    def __init__(self, farm: Any, service: HandoffService, *, interval: float) -> None:
        self.farm = farm
        self.service = service
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        desk = self.farm.services.get("web_desk")
        app = self.farm.app
        if desk is not None and app is not None and not app.frozen:
            app.on_shutdown.append(desk.on_app_shutdown)  # live-update streams end before the server waits
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(StoreError):
            await self.service.store.release_lease(REPING_LEASE, self.service.owner)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                if await self.service.store.acquire_lease(REPING_LEASE, self.service.owner,
                                                          max(30.0, self.interval * 3)):
                    await self.service.reping_due()
            except StoreError as exc:
                log.warning("handoff.reping_failed", error=str(exc))
            except Exception:
                log.exception("handoff.reping_crashed")


def _slack_desk_class() -> Any | None:
    found = [ep for ep in entry_points(group=DESKS_GROUP) if ep.name == "slack"]
    return found[0].load() if found else None


def install_handoff(farm: Any) -> None:
    """Wire the handoff into ``farm`` (a `core.farm.Farm` during `start`); idempotent."""
    if "handoff" in farm.services:
        return
    config: FarmConfig = farm.config
    store = farm.store
    sender = farm.sender
    service = HandoffService(
        store,
        config.bots,
        agent_policy=agent_policy(config),
        maskers={bot: Masker.for_agents(c.privacy) for bot, c in config.bots.items()},
        on_outbound=sender.notify if sender is not None else (lambda: None),
        owner=farm.owner,
    )
    farm.services["handoff"] = service
    interceptor = HandoffInterceptor(service)
    post = HandoffPostProcessor(service)
    after = HandoffAfterCommit(service)
    switch = LanguageSwitchInterceptor()
    mood = MoodPreparer(service)
    media = MediaInterceptor()
    receipts = ReadReceipts(lambda m: farm.channels.get((m.bot, m.channel)))
    farm.services["read_receipts"] = receipts
    unserved = bots_without_agents(config)
    no_desk = NoDeskPostProcessor(unserved)
    number_change = NumberChange(store, lambda: farm.services.get("identity"))  # WhatsApp "changed number"
    for runtime in farm.runtimes.values():
        runtime.interceptors.insert(0, interceptor)
        runtime.interceptors.insert(1, switch)  # "English please": after a request for a person, before the bot
        runtime.interceptors.insert(2, media)  # photos, voice notes, locations...: an honest answer, no fallback
        runtime.interceptors.insert(0, receipts)  # blue ticks as the turn starts; never answers
        runtime.preparers.append(mood)  # the customer's mood as slots, for calmer answers before any handoff
        runtime.post.append(post)
        runtime.post.append(no_desk)  # right after the handoff decision: no promise nobody can keep
        runtime.after.append(number_change)
        runtime.after.append(after)
    if sender is not None:
        sender.listeners.append(service)
    turns = farm.turns
    if turns is not None:
        turns.dead_letter_listeners.append(service)  # desks hear of messages that failed for good
    dead_letters = DeadLetters(store, schedule=turns.schedule if turns is not None else (lambda c: None),
                               changed=turns.refresh_dead_letters if turns is not None else _nothing)

    if config.desk.web.enabled:
        from core.web.desk import WebDesk

        web_desk = WebDesk(config.desk.web, service, store, dead_letters=dead_letters, canned=config.desk.canned,
                           channel_for=lambda bot, channel: farm.channels.get((bot, channel)))  # agent typing
        service.add_desk(web_desk)
        farm.extra_routes.extend(web_desk.routes())
        from core.web.desk_reveal import (
            RevealRoutes,  # an audited click shows a masked e-mail or phone
        )

        farm.extra_routes.extend(RevealRoutes(store, web_desk, contact_details).routes())
        farm.services["web_desk"] = web_desk
        if not config.desk.web.agents:
            log.warning("handoff.web_desk_without_agents", hint="add desk.web.agents to farm.yml")
    if config.desk.slack.enabled:
        cls = _slack_desk_class()
        if cls is None:
            raise ConfigError("desk.slack.enabled is true but no 'slack' desk is installed "
                              f"(entry point group {DESKS_GROUP})", key="desk.slack")

        async def resolve_thread(thread: str) -> str | None:
            for bot in config.bots:
                conversation = await store.find_conversation_by_thread(bot, thread)
                if conversation is not None:
                    return str(conversation.id)
            return None

        async def is_duplicate(key: str) -> bool:
            return not await store.remember(key, 86400)

        slack_desk = cls.from_config(config.desk.slack, service, resolve_thread, is_duplicate)
        service.add_desk(slack_desk, primary=True)
        routes = getattr(slack_desk, "routes", None)
        if callable(routes):
            farm.extra_routes.extend(routes())
        farm.services["slack_desk"] = slack_desk
    if not service.desks:
        log.warning("handoff.no_desk", hint="enable desk.web or desk.slack; handoffs will wait unseen")
    if unserved:
        log.warning("handoff.no_agent_channel", bots=sorted(unserved),
                    hint="no web-desk agent and no Slack desk serve these bots; customers asking for a "
                         "person are told so and offered bots.<name>.handoff.contact_email / contact_phone / callback")

    for channel in farm.channels.values():  # e.g. the web chat's waiting state and desk-only file route
        attach = getattr(channel, "attach_handoff", None)
        if callable(attach):
            attach(service, farm.services.get("web_desk"))

    intervals = [c.handoff.repings_after_seconds for c in config.bots.values() if c.handoff.repings_after_seconds > 0]
    interval = min(30.0, max(0.05, min(intervals, default=300.0) / 4))
    farm.services["handoff_background"] = HandoffBackground(farm, service, interval=interval)
