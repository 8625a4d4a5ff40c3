"""The engine sees the conversation's recent transcript, also what others appended between turns."""

from __future__ import annotations

from pathlib import Path

from core.engine import TurnInput, TurnOutput
from core.model import Event, Identity, Inbound
from core.pipeline.turns import BotRuntime, TurnRunner
from core.store.sqlite import SQLiteStore
from tests.support.engines import EchoEngine


class RecordingEngine(EchoEngine):
    def __init__(self) -> None:
        super().__init__()
        self.histories: list[list[tuple[int, str]]] = []

    async def handle(self, turn: TurnInput) -> TurnOutput:
        self.histories.append([(e.seq, e.type) for e in turn.history])
        return await super().handle(turn)


async def test_history_includes_events_appended_by_others_between_turns_once_and_in_order(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    await store.open()
    engine = RecordingEngine()
    runner = TurnRunner(store, {"demo": BotRuntime("demo", engine, None)}, owner="test")
    try:
        contact = await store.resolve_contact("demo", Identity("webchat", "u", "u"))
        conversation = await store.conversation_for("demo", contact.id)

        async def say(n: int) -> None:
            await store.ingest(conversation.id, Inbound("demo", "webchat", "u", "u", f"webchat:{n}", text=f"m{n}"))
            runner.schedule(conversation.id)
            await runner.idle()

        await say(1)
        await store.append_events(conversation.id, [Event("note", {"text": "agent note"})])
        await say(2)
        await say(3)
        first, second, third = engine.histories
        assert first == []
        seqs = [s for s, _ in third]
        assert seqs == sorted(set(seqs)) == list(range(1, len(seqs) + 1))  # no gap, no duplicate
        assert ("note" in [t for _, t in second]) and second == third[: len(second)]
        assert [t for _, t in third].count("user") == 2
    finally:
        await store.close()


class AppendingEngine(RecordingEngine):
    """Records histories; while answering "m2" an agent's note lands in the transcript."""

    def __init__(self, store: SQLiteStore) -> None:
        super().__init__()
        self.store = store

    async def handle(self, turn: TurnInput) -> TurnOutput:
        if turn.message.text == "m2":
            await self.store.append_events(turn.conversation.id, [Event("note", {"text": "typed meanwhile"})])
        return await super().handle(turn)


async def test_history_includes_events_appended_while_a_turn_ran(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    await store.open()
    engine = AppendingEngine(store)
    runner = TurnRunner(store, {"demo": BotRuntime("demo", engine, None)}, owner="test")
    try:
        contact = await store.resolve_contact("demo", Identity("webchat", "u", "u"))
        conversation = await store.conversation_for("demo", contact.id)
        for n in (1, 2, 3, 4):
            await store.ingest(conversation.id, Inbound("demo", "webchat", "u", "u", f"webchat:{n}", text=f"m{n}"))
            runner.schedule(conversation.id)
            await runner.idle()
        stored = [(e.seq, e.type) for e in await store.transcript(conversation.id)]
        last = engine.histories[-1]
        assert last == stored[: len(last)]  # the transcript as stored: the note once, in its place
        assert ("note" in [t for _, t in last]) and [t for _, t in last].count("user") == 3
    finally:
        await store.close()
