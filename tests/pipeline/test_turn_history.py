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
