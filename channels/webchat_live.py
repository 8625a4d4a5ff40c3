"""What open web chat pages show besides messages, kept current: waiting state, receipts, language.

Only pages that asked for it (``hello.watch``) are kept current: each refresh reads the
session's transcript (only the events since the last read). Handoff changes come from the
handoff service's watchers; the adapter schedules a refresh after each message it sends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import structlog
from aiohttp import web

from channels.base import AdapterContext
from channels.webchat_state import ChatState, chat_state, relevant, with_position
from core.errors import StoreUnavailable
from core.model import Conversation, ConversationStatus, Event

log = structlog.get_logger(__name__)


class HandoffView(Protocol):
    """What the web chat reads of `core.handoff.service.HandoffService` (read only)."""

    bots: Mapping[str, Any]
    store: Any
    watchers: list[Any]
    desks: list[Any]

    async def queue(self, bots: Any = None) -> Sequence[Any]: ...


class LiveState:
    """Per adapter: the state each open session was last told, and the refreshes under way."""

    def __init__(self, bot: str, channel: str, context: AdapterContext,
                 sockets: Mapping[str, set[web.WebSocketResponse]],
                 language: Callable[[str | None, Iterable[str]], str]) -> None:
        self.bot = bot
        self.channel = channel
        self.context = context
        self.sockets = sockets
        self.language = language
        self.handoff: HandoffView | None = None
        self.browser: dict[web.WebSocketResponse, tuple[str, ...]] = {}  # navigator.languages per page
        self.shown: dict[str, ChatState] = {}  # what each open session was last told
        self.watching: set[web.WebSocketResponse] = set()  # pages that asked for state and receipts
        self.seen: dict[str, tuple[int, list[Event]]] = {}  # session → (last seq, its state-relevant events)
        self.dirty: set[str] = set()
        self.refresher: asyncio.Task[None] | None = None
        self.queue_moved = True  # positions must be read from the queue again

    def hello(self, ws: web.WebSocketResponse, session: str, events: Sequence[Event], *, watch: bool,
              browser: tuple[str, ...]) -> None:
        """A page said hello; ``events`` is the transcript it was just sent."""
        self.browser[ws] = browser
        if watch:
            self.watching.add(ws)
        self.seen[session] = (max((e.seq for e in events), default=0), relevant(events))

    def joined(self, session: str) -> None:
        """A page joined ``session``: tell it everything once."""
        self.shown.pop(session, None)
        self.schedule((session,))

    def left(self, ws: web.WebSocketResponse, session: str | None, *, last: bool) -> None:
        self.browser.pop(ws, None)
        self.watching.discard(ws)
        if session and last:
            self.shown.pop(session, None)
            self.seen.pop(session, None)

    def state_of(self, session: str) -> ChatState | None:
        return self.shown.get(session)

    def stop(self) -> None:
        if self.refresher is not None:
            self.refresher.cancel()
        self.shown.clear()
        self.seen.clear()

    async def handoff_changed(self, conversation: Conversation, change: str) -> None:
        """A handoff changed somewhere in this bot: queue positions and this customer's state may move."""
        if conversation.bot != self.bot or not self.sockets or self.handoff is None:
            return
        # A relayed message moves nobody in the queue: only its sender's receipts change.
        sessions = set() if change == "relayed" else {s for s, shown in self.shown.items() if shown.state != "bot"}
        if change != "relayed":
            self.queue_moved = True
        contact = await self.handoff.store.get_contact(conversation.contact_id)
        identity = contact.identity(self.channel) if contact is not None else None
        if identity is not None:
            sessions.add(identity.chat_id)
        self.schedule(sessions)

    def schedule(self, sessions: Iterable[str]) -> None:
        """Refresh what these sessions' pages show (only pages that asked: each costs a transcript read)."""
        self.dirty.update(s for s in sessions if not self.watching.isdisjoint(self.sockets.get(s, ())))
        if self.dirty and (self.refresher is None or self.refresher.done()):
            self.refresher = asyncio.get_running_loop().create_task(self._refresh_loop())

    async def _refresh_loop(self) -> None:
        while self.dirty:
            sessions = sorted(self.dirty)
            self.dirty.clear()
            try:
                states = {s: await self._read_state(s) for s in sessions if s in self.sockets}
                waiting = [s for s, st in states.items() if st.state == "waiting"]
                if waiting and (self.queue_moved or any(self.shown.get(s) is None
                                                         or self.shown[s].state != "waiting" for s in waiting)):
                    self.queue_moved = False
                    positions = await self._positions()
                    states = {s: with_position(st, positions.get(s), self._expected_minutes())
                              for s, st in states.items()}
                elif waiting:  # nobody moved: keep the places shown
                    states = {s: with_position(st, self.shown[s].position, self.shown[s].minutes)
                              if s in waiting else st for s, st in states.items()}
                for session, state in states.items():
                    await self._push_state(session, state)
            except StoreUnavailable:
                log.warning("webchat.state_unavailable", bot=self.bot)
            except Exception:
                log.exception("webchat.state_failed", bot=self.bot)

    async def _read_state(self, session: str) -> ChatState:
        """The session's state from its transcript, reading only events newer than the last read."""
        last, events = self.seen.get(session, (0, []))
        new = await self.context.history(self.bot, self.channel, session, after_seq=last)
        if new:
            events = [*events, *relevant(new)][-300:]
            self.seen[session] = (max(last, *(e.seq for e in new)), events)
        return chat_state(events)

    def _expected_minutes(self) -> int | None:
        """The wait the handoff notice announced; none when no desk could keep the promise."""
        if self.handoff is None or not self.handoff.desks:
            return None
        settings = self.handoff.bots.get(self.bot) if self.handoff is not None else None
        handoff = getattr(settings, "handoff", None)
        minutes = getattr(handoff, "expected_wait_minutes", None)
        return int(minutes) if isinstance(minutes, int) and minutes > 0 else None

    async def _positions(self) -> dict[str, int]:
        """Session → place in this bot's queue of conversations waiting for a person (1 = next)."""
        if self.handoff is None:
            return {}
        positions: dict[str, int] = {}
        place = 0
        for entry in await self.handoff.queue([self.bot]):
            if entry.conversation.status is not ConversationStatus.WAITING:
                continue
            place += 1
            identity = entry.contact.identity(self.channel) if entry.contact is not None else None
            if identity is not None:
                positions[identity.chat_id] = place
        return positions

    async def _push_state(self, session: str, state: ChatState) -> None:
        before = self.shown.get(session)
        frames: list[dict[str, Any]] = []
        if before is None or before.state_frame() != state.state_frame():
            frames.append(state.state_frame())
        old = dict(before.receipts) if before else {}
        changed = {k: v for k, v in state.receipts if old.get(k) != v}
        if changed:
            frames.append({"type": "receipts", "messages": changed})
        self.shown[session] = state
        for ws in list(self.sockets.get(session, ())):
            if ws.closed or ws not in self.watching:
                continue
            language = self.language(state.language, self.browser.get(ws, ()))
            extra = [{"type": "language", "language": language}] if state.language and (
                before is None or before.language != state.language) else []
            for frame in [*frames, *extra]:
                try:
                    await ws.send_json(frame)
                except ConnectionError:
                    log.debug("webchat.push_failed", bot=self.bot)

