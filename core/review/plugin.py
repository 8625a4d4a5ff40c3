"""The review loop as a plugin (`core.plugins`): collect after each turn, the page and its API.

`ReviewAfterCommit` (after the desks heard of the turn, before an erasure on request) queues
the customer message of a turn that fell back, was unsure or led to a handoff, and the
messages of a case the customer rated low. The web part (`core.review.page`) needs the web
desk's sign-in; without a web desk the loop still collects, and ``switchboard review`` works.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import structlog

from core.engine import Engine, TurnOutput
from core.errors import StoreError
from core.model import ConversationStatus, Event
from core.periodic import Periodic
from core.pipeline.hooks import TurnContext
from core.plugins import AfterCommitOrder, Hooks, Ordered, PluginContext, PluginParts
from core.privacy.config import PrivacyConfig
from core.privacy.masking import Masker
from core.review.collect import rating_of, turn_candidates
from core.review.service import ReviewBot, ReviewError, ReviewService
from core.review_config import ReviewConfig
from core.store.ports.review import review_port

log = structlog.get_logger(__name__)

#: After contacts are merged and uploads recorded (privacy, 300/350), before an erasure on request (400).
REVIEW_ORDER = (AfterCommitOrder.MEDIA_RECORD + AfterCommitOrder.FORGET) // 2
_HANDED_OFF = (ConversationStatus.WAITING, ConversationStatus.AGENT)
_NOTHING_TO_REVIEW = "review.nothing_to_review"  # `TurnContext.state`: has_work found nothing this turn


class ReviewBotSettings(Protocol):
    """What the review loop reads of a bot's config (core.config.BotConfig)."""

    review: ReviewConfig
    privacy: PrivacyConfig


class Runtime(Protocol):
    engine: Engine


class ReviewAfterCommit:
    """Queues the turn's badly handled customer message, or a low-rated case's messages."""

    def __init__(self, service: ReviewService) -> None:
        self.service = service

    def _config(self, ctx: TurnContext) -> ReviewConfig | None:
        settings = self.service.bots.get(ctx.turn.conversation.bot)
        return settings.config if settings is not None and settings.config.enabled else None

    def _candidates(self, ctx: TurnContext, events: Sequence[Event]) -> list[Any]:
        config = self._config(ctx)
        if config is None:
            return []
        return turn_candidates(events, threshold=config.confidence_threshold,
                               bot_answered=ctx.turn.conversation.status not in _HANDED_OFF)

    def has_work(self, ctx: TurnContext, output: TurnOutput) -> bool:
        if self._config(ctx) is None:
            ctx.state[_NOTHING_TO_REVIEW] = True
            return False
        candidates = bool(self._candidates(ctx, output.events))
        if not candidates and not any(e.type == "csat" for e in output.events):
            # What is committed adds only replies to these events and masks texts, which neither
            # empties a text nor changes an intent: `committed` need not look again.
            ctx.state[_NOTHING_TO_REVIEW] = True
        return candidates or rating_of(output.events) is not None

    async def committed(self, ctx: TurnContext, output: TurnOutput, events: Sequence[Event]) -> None:
        if ctx.state.get(_NOTHING_TO_REVIEW):
            return
        conversation = output.conversation
        candidates = self._candidates(ctx, events)
        rating = next((e for e in events if e.type == "csat"), None) if self._config(ctx) is not None else None
        if not candidates and rating is None:
            return
        stored = await self._stored(ctx, conversation.id, events)
        if candidates:
            candidates = [replace(c, event=stored.get(_key(c.event), c.event)) for c in candidates]
            await self.service.collect(conversation.bot, conversation.id, conversation.contact_id, candidates)
        if rating is not None:
            await self.service.rated(conversation.bot, conversation.id, conversation.contact_id,
                                     stored.get(_key(rating), rating))

    async def _stored(self, ctx: TurnContext, conversation_id: str, events: Sequence[Event]) -> dict[str, Event]:
        """The turn's user and rating events as stored (with their ``seq``, which items are keyed by)."""
        if all(e.seq for e in events if e.type in ("user", "csat")):
            return {_key(e): e for e in events}
        after = ctx.turn.history[-1].seq if ctx.turn.history else 0
        return {_key(e): e for e in await self.service.transcripts.transcript(conversation_id, after_seq=after)
                if e.type in ("user", "csat")}


def _key(event: Event) -> str:
    """One customer message (by its platform id) or the rating of a turn."""
    return f"{event.type}:{event.data.get('message_id') or ''}"


class ReviewPlugin:
    """The review loop: the after-commit hook, the review page and API, ``review`` in `Farm.services`.

    ``runtimes``: the farm's bots (their engines are evaluated and, after a retrain, replaced);
    ``train``: loads a bot's engine, training it when its data changed (`core.farm.load_engine`);
    ``login``: the web desk that signs agents in, once built (None: no review page).
    """

    name = "review"

    def __init__(
        self,
        bots: Mapping[str, ReviewBotSettings],
        projects: Mapping[str, Path],
        *,
        runtimes: MutableMapping[str, Any] | None = None,
        train: Callable[[str], Awaitable[Engine]] | None = None,
        login: Callable[[], Any] = lambda: None,
        agents: Sequence[Any] = (),
        desks: Callable[[], Sequence[Any]] = lambda: (),
    ) -> None:
        self.bots = bots
        self.projects = projects
        self.runtimes = runtimes if runtimes is not None else {}
        self.train = train
        self.login = login
        self.agents = agents
        self.desks = desks

    def _engine_of(self, bot: str) -> Engine | None:
        runtime = self.runtimes.get(bot)
        return getattr(runtime, "engine", None)

    def _put_in_service(self, bot: str, engine: Engine) -> None:
        runtime = self.runtimes.get(bot)
        if runtime is not None:
            runtime.engine = engine  # the next turn of the bot uses it
            log.info("review.model_in_service", bot=bot)

    def build(self, ctx: PluginContext) -> PluginParts:
        from core.review.page import ReviewPage

        bots = {name: ReviewBot(name, self.projects[name], settings.review, Masker(settings.privacy.mask_patterns))
                for name, settings in self.bots.items() if name in self.projects}
        service = ReviewService(review_port(ctx.store), ctx.store, bots, kv=ctx.store, engine_of=self._engine_of,
                                train=self.train, put_in_service=self._put_in_service)
        page = ReviewPage(service, ctx.store, self.login, self.agents)
        store = ctx.store

        async def flag_latest(conversation_id: str, agent_id: str) -> str:
            """A desk's review command (Slack ``!review``): the thread's latest customer message."""
            conversation = await store.get_conversation(conversation_id)
            if conversation is None:
                raise ReviewError("no such conversation")
            item = await service.flag(conversation.bot, conversation.id, conversation.contact_id, seq=None,
                                      by=agent_id)
            return item.text

        for desk in self.desks():
            if desk is not None and hasattr(desk, "on_review"):
                desk.on_review = flag_latest  # desks that offer a review command (Slack: !review)
        services: tuple[Periodic, ...] = ()
        if self.train is not None and bots:
            # A model retrained in another farm process (MongoDB farms) goes into service here too.
            every = min(settings.review.follow_seconds for name, settings in self.bots.items() if name in bots)
            services = (Periodic("review-follow", every, functools.partial(_follow_all, service),
                                 first="after_interval"),)
        return PluginParts(
            routes=page.routes(),
            hooks=Hooks(after=(Ordered(REVIEW_ORDER, ReviewAfterCommit(service)),)),
            services=services,
            provides={"review": service},
        )


async def _follow_all(service: ReviewService) -> None:
    """One step of the model follower: every bot's latest retrain, put in service here if newer."""
    for bot in service.bots:
        try:
            await service.follow(bot)
        except StoreError as exc:
            log.warning("review.follow_unavailable", bot=bot, error=str(exc))
