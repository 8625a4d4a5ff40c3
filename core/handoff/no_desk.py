"""No false promises: a handoff for a bot that no agent channel serves.

When no web-desk agent may serve the bot and Slack is off, nobody will ever claim the
handoff, so "a person will answer, about 5 minutes" would be a lie. `NoDeskPostProcessor`
(after the handoff post-processor) replaces that notice with the honest one and the
alternatives configured under ``bots.<name>.handoff`` (``contact_email``, ``contact_phone``,
``callback``). The handoff itself stays recorded (status waiting, so a desk added later
sees it; no re-pings, which would say "everyone is still busy"), and what the customer writes next (their phone number for a call back) is kept
in the transcript like any message while waiting. The offer is recorded as a ``handoff``
event with ``action: no_desk`` (and ``why: unreachable`` when desks are
configured but none can answer now: the Slack desk's Web API calls failing, and the web desk
off or, with ``handoff.require_agent_online``, no agent of the bot online; see
`HandoffService.reachable`). `core.handoff.wiring.HandoffPlugin` logs ``handoff.no_agent_channel`` at start.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import structlog

from core.desk_config import DeskConfig
from core.engine import Reply, TurnOutput
from core.handoff.hooks import STATE
from core.language.turn import catalogue, turn_language
from core.model import Event
from core.pipeline.hooks import TurnContext

log = structlog.get_logger(__name__)


def bots_without_agents(desk: DeskConfig, bots: Iterable[str]) -> set[str]:
    """The bots no agent channel serves: no web-desk agent for them and no other desk (Slack) enabled."""
    if desk.enabled_desks():
        return set()
    agents = desk.web.agents if desk.web.enabled else []
    served_all = any(not agent.bots for agent in agents)
    if served_all:
        return set()
    served = {bot for agent in agents for bot in agent.bots}
    return {bot for bot in bots if bot not in served}


def alternatives(handoff: Any) -> list[str]:
    """The configured alternatives, in offer order: ``email``, ``phone``, ``callback``."""
    found = []
    if getattr(handoff, "contact_email", None):
        found.append("email")
    if getattr(handoff, "contact_phone", None):
        found.append("phone")
    if getattr(handoff, "callback", False):
        found.append("callback")
    return found


class NoDeskPostProcessor:
    """Turns the handoff notice into the honest answer for bots that no agent serves."""

    def __init__(self, bots: set[str]) -> None:
        self.bots = bots

    async def process(self, ctx: TurnContext, output: TurnOutput) -> TurnOutput:
        state = ctx.state.get(STATE) or {}
        unreachable = bool(state.get("unreachable"))  # desks configured, none able to answer now
        if state.get("action") != "open" or (output.conversation.bot not in self.bots and not unreachable):
            return output
        handoff = ctx.bot_config.handoff
        language = turn_language(ctx)
        texts = catalogue(ctx)
        offered = alternatives(handoff)
        parts = [texts.text("no_desk_email", language, email=handoff.contact_email) if kind == "email"
                 else texts.text("no_desk_phone", language, phone=handoff.contact_phone) if kind == "phone"
                 else texts.text("no_desk_callback", language) for kind in offered]
        if not parts:
            parts = [texts.text("no_desk_none", language)]
        text = texts.text("no_desk", language, alternatives=" ".join(parts))
        log.warning("handoff.desks_unreachable" if unreachable else "handoff.no_agent_channel",
                    conversation=output.conversation.id, offered=offered)
        # Not "open": no desk to tell, and no re-ping telling the customer "everyone is still busy".
        ctx.state[STATE] = {"action": "no_desk", "plan": state.get("plan")}
        events = list(output.events)
        at = next((i for i, e in enumerate(events) if e.type == "handoff"), len(events) - 1) + 1
        data: dict[str, Any] = {"action": "no_desk", "offered": offered}
        if unreachable:
            data["why"] = "unreachable"
        events.insert(at, Event("handoff", data))
        return replace(output, events=tuple(events), replies=(Reply(text=text),))
