"""The turn lease: the commit of a conversation's last pending message releases it in the
same store call, unless an after-commit hook still has work to do under it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from core.engine import TurnOutput
from core.model import Event, Identity, Inbound
from core.pipeline.hooks import TurnContext
from core.pipeline.turns import BotRuntime, TurnRunner
from core.store.base import TurnCommit, TurnState
from core.store.sqlite import SQLiteStore
from tests.support.engines import EchoEngine


class RecordingStore(SQLiteStore):
    """Records the turn loop's store calls."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.calls: list[str] = []

    async def next_turn(self, conversation_id: str, **kwargs: Any) -> TurnState | None:
        self.calls.append("next_turn")
        return await super().next_turn(conversation_id, **kwargs)

    async def finish_turn(self, conversation: Any, **kwargs: Any) -> TurnCommit:
        commit = await super().finish_turn(conversation, **kwargs)
        self.calls.append(f"finish_turn(release={kwargs.get('release') is not None}, released={commit.released})")
        return commit

    async def release_lease(self, name: str, owner: str) -> None:
        self.calls.append("release_lease")
        await super().release_lease(name, owner)


class LeaseProbe:
    """An after-commit hook with work on messages saying "probe": checks who holds the lease."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.held_during_hook: list[bool] = []

    def has_work(self, ctx: TurnContext, output: TurnOutput) -> bool:
        return ctx.turn.message.text == "probe"

    async def committed(self, ctx: TurnContext, output: TurnOutput, events: Sequence[Event]) -> None:
        if not self.has_work(ctx, output):
            return
        lease = f"turn:{output.conversation.id}"
        taken_by_other = await self.store.acquire_lease(lease, "another-process", 30)
        if taken_by_other:
            await self.store.release_lease(lease, "another-process")
        self.held_during_hook.append(not taken_by_other)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[RecordingStore]:
    store = RecordingStore(tmp_path / "s.db")
    await store.open()
    yield store
    await store.close()


async def setup(store: RecordingStore, probe: LeaseProbe | None = None) -> tuple[TurnRunner, str]:
    bot = BotRuntime("demo", EchoEngine(), None, after=[probe] if probe else [])
    runner = TurnRunner(store, {"demo": bot}, owner="farm-1")
    contact = await store.resolve_contact("demo", Identity("webchat", "u", "u"))
    conversation = await store.conversation_for("demo", contact.id)
    return runner, conversation.id


async def say(store: RecordingStore, conversation_id: str, n: int, text: str = "") -> None:
    await store.ingest(conversation_id, Inbound("demo", "webchat", "u", "u", f"webchat:{n}", text=text or f"m{n}"))


async def test_the_last_messages_commit_releases_the_lease_without_another_call(store: RecordingStore) -> None:
    runner, conversation_id = await setup(store)
    await say(store, conversation_id, 1)
    runner.schedule(conversation_id)
    await runner.idle()
    assert store.calls == ["next_turn", "finish_turn(release=True, released=True)"]
    assert await store.pending_inbox(conversation_id) == []
    assert await store.acquire_lease(f"turn:{conversation_id}", "farm-2", 30)  # free for any process


async def test_a_waiting_message_keeps_the_lease_until_its_own_turn(store: RecordingStore) -> None:
    runner, conversation_id = await setup(store)
    await say(store, conversation_id, 1)
    await say(store, conversation_id, 2)
    runner.schedule(conversation_id)
    await runner.idle()
    assert store.calls == [
        "next_turn", "finish_turn(release=True, released=False)",
        "next_turn", "finish_turn(release=True, released=True)",
    ]
    assert [e.data["text"] for e in await store.transcript(conversation_id) if e.type == "user"] == ["m1", "m2"]
    assert await store.acquire_lease(f"turn:{conversation_id}", "farm-2", 30)


async def test_after_commit_work_runs_under_the_lease_and_then_lets_it_go(store: RecordingStore) -> None:
    probe = LeaseProbe(store)
    runner, conversation_id = await setup(store, probe)
    await say(store, conversation_id, 1, "probe")
    runner.schedule(conversation_id)
    await runner.idle()
    assert probe.held_during_hook == [True]  # no other process could start a turn meanwhile
    assert store.calls == ["next_turn", "finish_turn(release=False, released=False)", "next_turn"]
    assert await store.acquire_lease(f"turn:{conversation_id}", "farm-2", 30)
