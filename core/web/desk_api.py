"""The web desk's JSON API for agents: queue, history search, one conversation, agent actions,
typing, dead letters."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import structlog
from aiohttp import web

from core.desk import is_note
from core.desk_config import WebAgent
from core.errors import ChannelError, NotFound, SwitchboardError
from core.handoff.assist import assistance
from core.handoff.service import AgentNotAllowed, ConversationView
from core.model import ConversationStatus
from core.pipeline.dead_letters import DeadLetters
from core.store.base import AuditEntry
from core.web.desk_auth import DeskAuth
from core.web.desk_http import AGENT_PREFIX, MAX_TEXT, json_body, json_response
from core.web.desk_search import search
from core.web.desk_views import DeskViews, search_query, with_versions

log = structlog.get_logger(__name__)

_ACTIONS = ("claim", "reply", "note", "back", "close", "transfer")
_PLAIN_TYPING_CHANNELS = frozenset({"telegram", "whatsapp"})  # their adapters' typing(chat_id), no agent name


class DeskApi(DeskAuth, DeskViews):
    """The agents' API handlers; `core.web.desk.WebDesk` sets the attributes declared here."""

    dead_letters: DeadLetters
    channel_for: Callable[[str, str], Any | None] | None

    async def _queue(self, request: web.Request) -> web.StreamResponse:
        agent = await self._require(request)
        entries = await self.actions.queue(self._bots(agent))
        now = self.actions.clock()
        # One summary per entry (a transcript read each): fine for a queue of hundreds; a store
        # query with the handoff facts denormalised would be the next step for more.
        items = [self._entry_json(e, await self.actions.summary(e.conversation), now) for e in entries]
        return json_response({"conversations": items})

    async def _history(self, request: web.Request) -> web.StreamResponse:
        agent = await self._require(request)
        try:
            query = search_query(request.query)
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)
        bots = [b for b in self.actions.bots if self._may_serve(agent, b)]
        hits, scanned = await search(self.store, self.actions, bots, query)
        await self.store.audit(AuditEntry(actor=AGENT_PREFIX + agent.id, action="search", target="history",
                                          detail={**query.as_detail(), "results": len(hits)}))
        log.info("web_desk.search", agent=agent.id, results=len(hits), scanned=scanned)
        return json_response({"results": [self._hit_json(h) for h in hits], "scanned": scanned})

    async def _visible(self, agent: WebAgent, conversation_id: str) -> ConversationView:
        try:
            view = await self.actions.view(conversation_id)
        except NotFound as exc:
            raise web.HTTPNotFound(text=json.dumps({"error": "no such conversation"}),
                                   content_type="application/json") from exc
        if not self._may_serve(agent, view.conversation.bot):
            log.warning("web_desk.forbidden", agent=agent.id, conversation=conversation_id)
            raise web.HTTPNotFound(text=json.dumps({"error": "no such conversation"}),
                                   content_type="application/json")
        return view

    async def _conversation(self, request: web.Request) -> web.StreamResponse:
        agent = await self._require(request)
        view = await self._visible(agent, request.match_info["id"])
        await self.actions.viewed(view.conversation, AGENT_PREFIX + agent.id)
        ratings = [e.data["score"] for e in view.transcript if e.type == "csat" and isinstance(e.data.get("score"), int)]
        colleagues = [{"id": a.id, "name": a.name} for a in self.agents.values()
                      if a.id != agent.id and self._may_serve(a, view.conversation.bot)]
        return json_response({
            "colleagues": colleagues,
            "canned": self._canned(view.conversation),
            "conversation": {**self._conversation_json(view.conversation, view.contact), "ratings": ratings},
            "summary": self._summary_json(view.summary),
            "assist": (await assistance(self.store, view.summary,
                                        mask=self.actions.masker(view.conversation.bot).mask)).as_dict(),
            "transcript": with_versions([m for m in (self._event_json(e) for e in view.transcript) if m],
                                        self.actions.masker(view.conversation.bot).mask),
        })

    # -- acting ------------------------------------------------------------------------
    async def _action(self, request: web.Request) -> web.StreamResponse:
        agent = await self._require(request, writes=True)
        action = request.match_info["action"]
        if action not in _ACTIONS:
            return json_response({"error": f"unknown action; use one of {', '.join(_ACTIONS)}"}, 404)
        conversation_id = request.match_info["id"]
        await self._visible(agent, conversation_id)
        body = await json_body(request) if action in ("reply", "note", "transfer") else {}
        text = body.get("text")
        if action in ("reply", "note") and (not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT):
            return json_response({"error": f"'text' must be 1-{MAX_TEXT} characters"}, 400)
        agent_id = AGENT_PREFIX + agent.id
        to = body.get("to")
        if action == "transfer" and not (to is None or (isinstance(to, str) and to in self.agents)):
            return json_response({"error": "'to' must be an agent id of this desk, or null for the queue"}, 400)
        note = body.get("note") or ""
        if action == "transfer" and (not isinstance(note, str) or len(note) > MAX_TEXT):
            return json_response({"error": f"'note' must be at most {MAX_TEXT} characters"}, 400)
        try:
            if action == "transfer":
                target = self.agents[to] if isinstance(to, str) else None
                await self.actions.transfer(conversation_id, agent_id, agent.name,
                                            to_agent=AGENT_PREFIX + target.id if target else None,
                                            to_name=target.name if target else None, note=str(note))
            elif action == "claim":
                await self.actions.claim(conversation_id, agent_id, agent.name)
            elif action == "reply":
                await self.actions.agent_reply(conversation_id, agent_id, agent.name, str(text))
            elif action == "note":
                await self.actions.internal_note(conversation_id, agent_id, agent.name, str(text))
            elif action == "back":
                await self.actions.back_to_bot(conversation_id, agent_id, agent.name)
            else:
                await self.actions.close(conversation_id, agent_id, agent.name)
        except AgentNotAllowed as exc:
            return json_response({"error": str(exc)}, 403)
        except SwitchboardError as exc:
            return json_response({"error": str(exc)}, 409)
        stored_as_note = action == "note" or (action == "reply" and is_note(str(text)))
        log.info("web_desk.action", action=action, conversation=conversation_id, agent=agent_id,
                 note=stored_as_note)
        view = await self.actions.view(conversation_id)
        return json_response({"conversation": self._conversation_json(view.conversation, view.contact),
                      "note": stored_as_note})

    async def _typing(self, request: web.Request) -> web.StreamResponse:
        """The assigned agent is typing a reply: show it where the customer is (best effort)."""
        agent = await self._require(request, writes=True)
        view = await self._visible(agent, request.match_info["id"])
        conversation = view.conversation
        if conversation.status is not ConversationStatus.AGENT or conversation.assigned_agent != AGENT_PREFIX + agent.id:
            return json_response({"error": "only the agent in charge of the conversation can signal typing"}, 403)
        identity = view.contact.reply_identity() if view.contact else None
        adapter = self.channel_for(conversation.bot, identity.channel) if identity and self.channel_for else None
        sent = False
        if identity is not None and adapter is not None:
            agent_typing = getattr(adapter, "agent_typing", None)
            typing = getattr(adapter, "typing", None)
            try:
                if callable(agent_typing):
                    await agent_typing(identity.chat_id, agent.name)
                    sent = True
                elif identity.channel in _PLAIN_TYPING_CHANNELS and callable(typing):
                    await typing(identity.chat_id)  # the platform's own "typing…" (no name there)
                    sent = True
            except (ChannelError, ConnectionError) as exc:  # cosmetic: never an error for the agent
                log.info("web_desk.typing_failed", conversation=conversation.id, channel=identity.channel,
                         error=str(exc))
        return json_response({"ok": True, "sent": sent})

    # -- dead letters ----------------------------------------------------------------------
    async def _dead_letters(self, request: web.Request) -> web.StreamResponse:
        agent = await self._require(request)
        letters = await self.dead_letters.list(self._bots(agent))
        return json_response({"dead_letters": [self._dead_letter_json(d) for d in letters]})

    async def _dead_letter_action(self, request: web.Request) -> web.StreamResponse:
        agent = await self._require(request, writes=True)
        action = request.match_info["action"]
        if action not in ("replay", "drop"):
            return json_response({"error": "unknown action; use replay or drop"}, 404)
        try:
            item_id = int(request.match_info["id"])
        except ValueError:
            return json_response({"error": "no such dead letter"}, 404)
        letters = {d.item.id: d for d in await self.dead_letters.list(self._bots(agent), limit=10_000)}
        if item_id not in letters:
            return json_response({"error": "no such dead letter"}, 404)
        actor = AGENT_PREFIX + agent.id
        run = self.dead_letters.replay if action == "replay" else self.dead_letters.drop
        if await run(item_id, actor=actor) is None:
            return json_response({"error": "no longer a dead letter"}, 409)
        log.info("web_desk.dead_letter", action=action, inbox=item_id, agent=actor)
        return json_response({"ok": True, "id": item_id, "action": action})

