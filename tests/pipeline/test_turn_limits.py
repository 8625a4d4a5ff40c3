"""Bounds on turns: how many conversations run at once, and how long one turn may take."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.engine import TurnInput, TurnOutput
from core.model import Identity, Inbound
from core.pipeline.config import TurnsConfig
from core.pipeline.turns import BotRuntime, TurnRunner
from core.store.sqlite import SQLiteStore
from tests.support.engines import EchoEngine
from tests.support.wait import eventually

pytestmark = pytest.mark.timeout(30)


class GatedEngine(EchoEngine):
    """Echoes, but each turn waits for the gate; counts the turns running at once."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.running = 0
        self.most = 0

    async def handle(self, turn: TurnInput) -> TurnOutput:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            if turn.message.text != "fast":
                await self.gate.wait()
            return await super().handle(turn)
        finally:
            self.running -= 1


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "s.db")
    await store.open()
    yield store
    await store.close()


async def customer(store: SQLiteStore, user: str, text: str) -> str:
    contact = await store.resolve_contact("demo", Identity("webchat", user, user))
    conversation = await store.conversation_for("demo", contact.id)
    await store.ingest(conversation.id, Inbound("demo", "webchat", user, user, f"webchat:{user}:1", text=text))
    return conversation.id


async def test_no_more_conversations_run_at_once_than_configured(store: SQLiteStore) -> None:
    engine = GatedEngine()
    runner = TurnRunner(store, {"demo": BotRuntime("demo", engine, None)}, owner="p",
                        config=TurnsConfig(concurrency=3))
    conversations = [await customer(store, f"u{n}", f"hello {n}") for n in range(10)]
    for conversation_id in conversations:
        runner.schedule(conversation_id)
    await eventually(lambda: engine.running >= 3)
    assert len(runner._active) == 3  # the other seven wait without a task of their own
    engine.gate.set()
    await runner.idle()
    assert engine.most == 3
    assert sorted(engine.seen) == sorted(f"hello {n}" for n in range(10))
    assert await store.conversations_with_pending_inbox() == []


async def test_a_turn_that_takes_too_long_ends_with_an_apology_and_the_next_one_runs(store: SQLiteStore) -> None:
    engine = GatedEngine()  # never opens the gate: the slow turn hangs
    runner = TurnRunner(store, {"demo": BotRuntime("demo", engine, None)}, owner="p",
                        config=TurnsConfig(timeout_seconds=0.2))
    conversation_id = await customer(store, "u1", "slow")
    await store.ingest(conversation_id, Inbound("demo", "webchat", "u1", "u1", "webchat:u1:2", text="fast"))
    runner.schedule(conversation_id)
    async with asyncio.timeout(5):
        await runner.idle()
    replies = [e.data["text"] for e in await store.transcript(conversation_id) if e.type == "bot"]
    assert len(replies) == 2 and "Sorry" in replies[0] and replies[1] == "echo: fast"
    assert await store.pending_inbox(conversation_id) == []
