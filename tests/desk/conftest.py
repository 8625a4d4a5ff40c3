"""Fixtures for the Slack desk tests: the fake Slack API, a recording DeskActions, the desk
mounted on a local aiohttp server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from channels.slack_desk import SlackDesk
from channels.slack_desk_config import SlackDeskConfig
from core.errors import NotFound
from core.model import Attachment, Conversation, ConversationStatus
from tests.fakes.slack_api import AGENT, AGENTS_CHANNEL, SIGNING_SECRET, FakeSlackAPI

THREAD = "1763820100.000100"
CONVERSATION = "conv_01HXYZ"


@dataclass
class RecordingActions:
    """A DeskActions that records every call (the core's side is not under test here)."""

    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    fail_with: Exception | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def _record(self, name: str, *args: Any) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.calls.append((name, args))
        self._changed.set()

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    async def wait(self, count: int = 1, timeout: float = 5.0) -> None:
        async def until() -> None:
            while len(self.calls) < count:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(until(), timeout)

    @staticmethod
    def _conversation(conversation_id: str, status: ConversationStatus, agent: str | None) -> Conversation:
        return Conversation(id=conversation_id, bot="demo", contact_id="contact_1", status=status,
                            assigned_agent=agent, desk_thread=THREAD)

    async def claim(self, conversation_id: str, agent_id: str, agent_name: str) -> Conversation:
        self._record("claim", conversation_id, agent_id, agent_name)
        return self._conversation(conversation_id, ConversationStatus.AGENT, agent_id)

    async def agent_reply(self, conversation_id: str, agent_id: str, agent_name: str, text: str, *,
                          attachments: Sequence[Attachment] = ()) -> None:
        self._record("agent_reply", conversation_id, agent_id, agent_name, text,
                     *((tuple(attachments),) if attachments else ()))

    async def internal_note(self, conversation_id: str, agent_id: str, agent_name: str, text: str, *,
                            attachments: Sequence[Attachment] = ()) -> None:
        self._record("internal_note", conversation_id, agent_id, agent_name, text,
                     *((tuple(attachments),) if attachments else ()))

    async def back_to_bot(self, conversation_id: str, agent_id: str, agent_name: str) -> Conversation:
        self._record("back_to_bot", conversation_id, agent_id, agent_name)
        return self._conversation(conversation_id, ConversationStatus.BOT, None)

    async def close(self, conversation_id: str, agent_id: str, agent_name: str) -> Conversation:
        self._record("close", conversation_id, agent_id, agent_name)
        return self._conversation(conversation_id, ConversationStatus.CLOSED, None)

    async def transfer(self, conversation_id: str, agent_id: str, agent_name: str, *, to_agent: str | None,
                       to_name: str | None = None, note: str = "") -> Conversation:
        self._record("transfer", conversation_id, agent_id, agent_name, to_agent, to_name, note)
        status = ConversationStatus.AGENT if to_agent else ConversationStatus.WAITING
        return self._conversation(conversation_id, status, to_agent)


class Seen:
    """An in-memory is_duplicate (the farm uses the store)."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    async def __call__(self, key: str) -> bool:
        if key in self.keys:
            return True
        self.keys.append(key)
        return False


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlackAPI]:
    async with FakeSlackAPI(usergroups={"S0AGENTS": ["U0AGENTBEN"]}) as api:
        yield api


@pytest.fixture
def actions() -> RecordingActions:
    return RecordingActions()


@pytest.fixture
def threads() -> dict[str, str]:
    return {THREAD: CONVERSATION}


def make_config(slack: FakeSlackAPI, **overrides: Any) -> SlackDeskConfig:
    values: dict[str, Any] = {
        "enabled": True, "bot_token": slack.bot_token, "signing_secret": SIGNING_SECRET,
        "channel": AGENTS_CHANNEL, "agents": [AGENT], "api_base": slack.url,
    }
    values.update(overrides)
    return SlackDeskConfig(**values)


def make_desk(slack: FakeSlackAPI, actions: RecordingActions, threads: dict[str, str], **overrides: Any) -> SlackDesk:
    async def resolve(thread_ts: str) -> str | None:
        return threads.get(thread_ts)

    if "seen" in overrides:
        seen = overrides.pop("seen")
    else:
        seen = Seen()
    return SlackDesk(make_config(slack, **overrides), actions, resolve, seen, rate_limit_retries=2)


@pytest.fixture
async def desk(slack: FakeSlackAPI, actions: RecordingActions, threads: dict[str, str]) -> AsyncIterator[SlackDesk]:
    desk = make_desk(slack, actions, threads)
    await desk.start()
    yield desk
    await desk.stop()


@dataclass
class Server:
    url: str
    session: aiohttp.ClientSession

    async def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        async with self.session.post(self.url + "/slack/events", data=body, headers=headers) as resp:
            return resp.status, await resp.text()


@pytest.fixture
async def server(desk: SlackDesk) -> AsyncIterator[Server]:
    app = web.Application()
    for route in desk.routes():
        app.router.add_route(route.method, route.path, route.handler, name=route.name)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    async with aiohttp.ClientSession() as session:
        yield Server(f"http://127.0.0.1:{port}", session)
    await runner.cleanup()


@pytest.fixture
def not_found() -> NotFound:
    return NotFound("conversation conv_gone not found")
