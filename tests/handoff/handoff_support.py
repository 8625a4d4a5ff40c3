"""Shared pieces of the handoff tests: a recording desk, a web chat customer, farm settings."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
from argon2 import PasswordHasher

from core.clock import Clock
from core.desk import HandoffSummary
from core.handoff.service import HandoffService
from core.model import Conversation, ConversationStatus, Event
from tests.handoff.scripted_engine import ScriptedEngine
from tests.support.farm import DEMO_PROJECT, RunningFarm, running_farm
from tests.support.webchat import receive

PASSWORDS = {"anna": "anna-secret-pw", "ben": "ben-secret-pw", "carl": "carl-secret-pw"}
_HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
HASHES = {agent: _HASHER.hash(pw) for agent, pw in PASSWORDS.items()}


def desk_config(**web: Any) -> dict[str, Any]:
    """Anna and Ben serve the demo bot; Carl only serves another bot."""
    return {"web": {"enabled": True, "session_secret": "test-secret-0123456789", "agents": [
        {"id": "anna", "name": "Anna Schmidt", "password_hash": HASHES["anna"], "bots": ["demo"]},
        {"id": "ben", "name": "Ben Wolf", "password_hash": HASHES["ben"], "bots": []},
        {"id": "carl", "name": "Carl Other", "password_hash": HASHES["carl"], "bots": ["other"]},
    ], **web}}


def bots(**handoff: Any) -> dict[str, Any]:
    settings = {"business_hours": {}, **handoff}
    return {"demo": {"project": str(DEMO_PROJECT), "languages": ["de", "en"], "default_language": "de",
                     "channels": {"webchat": {}}, "handoff": settings}}


class RecordingDesk:
    """A `core.desk.Desk` that records what the core told it (the far side of the desk seam)."""

    name = "recording"

    def __init__(self) -> None:
        self.summaries: list[HandoffSummary] = []
        self.messages: list[tuple[Conversation, Event]] = []
        self.statuses: list[tuple[Conversation, str | None]] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def open_handoff(self, summary: HandoffSummary) -> str | None:
        self.summaries.append(summary)
        return f"rec:{len(self.summaries)}"

    async def customer_message(self, conversation: Conversation, event: Event) -> None:
        self.messages.append((conversation, event))

    async def status_changed(self, conversation: Conversation, detail: str | None = None) -> None:
        self.statuses.append((conversation, detail))

    def details(self) -> list[str]:
        return [d or "" for _, d in self.statuses]


class Customer:
    """A web chat page, as a socket client."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, session: str) -> None:
        self.ws = ws
        self.session = session
        self._n = 0
        self._early: list[dict[str, Any]] = []

    @classmethod
    async def connect(cls, http: aiohttp.ClientSession, url: str, session: str | None = None) -> Customer:
        ws = await http.ws_connect(f"{url}/chat/demo/ws")
        await ws.send_json({"type": "hello", "session": session})
        welcome = await receive(ws, "welcome")
        await receive(ws, "history")
        return cls(ws, welcome["session"])

    async def say(self, text: str) -> None:
        self._n += 1
        frame_id = f"m{self._n}"
        await self.ws.send_json({"type": "message", "id": frame_id, "text": text})
        await self._ack(frame_id)

    async def press(self, payload: str, title: str) -> None:
        self._n += 1
        frame_id = f"b{self._n}"
        await self.ws.send_json({"type": "button", "id": frame_id, "payload": payload, "title": title})
        await self._ack(frame_id)

    async def _ack(self, frame_id: str) -> None:
        async with asyncio.timeout(5):
            while True:
                frame = await self.ws.receive_json()
                if frame["type"] == "ack" and frame["id"] == frame_id:
                    return
                if frame["type"] == "message":
                    self._early.append(frame)

    async def received(self, quiet: float = 0.3) -> list[dict[str, Any]]:
        """Message frames that arrived until the socket stays quiet for ``quiet`` seconds."""
        frames, self._early = list(self._early), []
        while True:
            try:
                frame = await asyncio.wait_for(self.ws.receive_json(), timeout=quiet)
            except TimeoutError:
                return frames
            if frame["type"] == "message":
                frames.append(frame)


@contextlib.asynccontextmanager
async def handoff_farm(tmp_path: Path, *, engine: Any | None = None, handoff: Mapping[str, Any] | None = None,
                       desk: Mapping[str, Any] | None = None,
                       clock: Clock | None = None) -> AsyncIterator[tuple[RunningFarm, RecordingDesk]]:
    engines = {"demo": engine or ScriptedEngine()}
    async with running_farm(tmp_path, bots=bots(**dict(handoff or {})), engines=engines,
                            desk=dict(desk or desk_config()), clock=clock) as farm:
        recording = RecordingDesk()
        service(farm).add_desk(recording)
        yield farm, recording


def service(farm: RunningFarm) -> HandoffService:
    found = farm.farm.services["handoff"]
    assert isinstance(found, HandoffService)
    return found


async def conversation_of(farm: RunningFarm, customer: Customer) -> Conversation:
    from core.model import Identity

    contacts = await farm.store.find_contacts("demo", identity=Identity("webchat", customer.session,
                                                                       customer.session))
    assert contacts, "the customer has no contact yet"
    return await farm.store.conversation_for("demo", contacts[0].id)


async def events_of(farm: RunningFarm, conversation_id: str, kind: str) -> list[Event]:
    return [e for e in await farm.store.transcript(conversation_id) if e.type == kind]


def texts(frames: list[dict[str, Any]]) -> list[str]:
    return [str(f["text"]) for f in frames]


def is_waiting(conversation: Conversation) -> bool:
    return conversation.status is ConversationStatus.WAITING


def csat_payload(score: int) -> str:
    return "/csat" + json.dumps({"score": score}, separators=(",", ":"))
