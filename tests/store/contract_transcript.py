"""The store contract for `TranscriptStore` and the turn commit: transcripts, `commit_turn` (run on every backend by ``test_store_contract.py``)."""

from __future__ import annotations

import asyncio

import pytest

from core.errors import ConcurrencyConflict
from core.model import (
    Author,
    Conversation,
    Event,
)
from core.store.base import OutboxState, Store
from tests.store.contract_support import (
    T0,
    contact_and_conversation,
    event,
    inbound,
    outbound,
)


class TranscriptContract:
    """Behaviour every store must show for `TranscriptStore` and the turn commit; tests need an async ``store`` fixture."""

    # -- turns and transcript ------------------------------------------------------------
    async def test_commit_turn_saves_marks_appends_and_queues_together(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        await store.ingest(conv.id, inbound(1))
        await store.ingest(conv.id, inbound(2))
        items = await store.pending_inbox(conv.id)
        reply = outbound(conv, "Hi!")
        saved = await store.commit_turn(
            conv.evolve(language="en", slots={"greeted": True}),
            inbox_ids=[i.id for i in items],
            events=[event(1, "message 1"), event(2, "Hi!", kind="bot")],
            outbound=[reply],
        )
        assert saved.version == 1 and saved.slots == {"greeted": True}
        assert await store.get_conversation(conv.id) == saved
        assert await store.pending_inbox(conv.id) == []
        transcript = await store.transcript(conv.id)
        assert [(e.seq, e.type, e.data["text"]) for e in transcript] == [(1, "user", "message 1"), (2, "bot", "Hi!")]
        queued = await store.get_outbox_item(reply.id)
        assert queued is not None and queued.state is OutboxState.PENDING and queued.outbound == reply

    async def test_commit_turn_with_a_stale_version_writes_nothing(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        await store.ingest(conv.id, inbound(1))
        (item,) = await store.pending_inbox(conv.id)
        await store.save_conversation(conv.evolve(language="de"))  # someone else moved on
        reply = outbound(conv, "stale reply")
        with pytest.raises(ConcurrencyConflict):
            await store.commit_turn(
                conv.evolve(language="fr"), inbox_ids=[item.id], events=[event(1)], outbound=[reply]
            )
        assert await store.transcript(conv.id) == []
        assert await store.get_outbox_item(reply.id) is None
        assert sum((await store.outbox_counts()).values()) == 0
        assert [p.id for p in await store.pending_inbox(conv.id)] == [item.id]
        stored = await store.get_conversation(conv.id)
        assert stored is not None and stored.language == "de" and stored.version == 1

    async def test_commit_turn_of_an_already_processed_message_writes_nothing(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        await store.ingest(conv.id, inbound(1))
        (item,) = await store.pending_inbox(conv.id)
        saved = await store.commit_turn(conv, inbox_ids=[item.id], events=[event(1, "first answer")])
        late = outbound(conv, "second answer to the same message")
        with pytest.raises(ConcurrencyConflict):
            await store.commit_turn(saved, inbox_ids=[item.id], events=[event(1, "again")], outbound=[late])
        assert [e.data["text"] for e in await store.transcript(conv.id)] == ["first answer"]
        assert await store.get_outbox_item(late.id) is None
        stored = await store.get_conversation(conv.id)
        assert stored is not None and stored.version == saved.version

    async def test_concurrent_commits_of_one_version_commit_exactly_one_turn(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        await store.ingest(conv.id, inbound(1))
        (item,) = await store.pending_inbox(conv.id)
        replies = [outbound(conv, f"reply {n}") for n in range(3)]
        results = await asyncio.gather(
            *(store.commit_turn(conv, inbox_ids=[item.id], events=[event(n, f"turn {n}")], outbound=[replies[n]])
              for n in range(3)),
            return_exceptions=True,
        )
        assert sum(isinstance(r, Conversation) for r in results) == 1
        assert sum(isinstance(r, ConcurrencyConflict) for r in results) == 2
        winner = next(n for n, r in enumerate(results) if isinstance(r, Conversation))
        assert [e.data["text"] for e in await store.transcript(conv.id)] == [f"turn {winner}"]
        assert [await store.get_outbox_item(r.id) is not None for r in replies] == [n == winner for n in range(3)]

    async def test_append_events_numbers_after_the_last_seq_and_queues(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        await store.commit_turn(conv, events=[event(1), event(2)])
        note = outbound(conv, "agent says hi", author=Author(kind="agent", name="Grace", agent_id="a7"))
        stored = await store.append_events(conv.id, [event(3, kind="note"), event(4, kind="agent")], [note])
        assert [e.seq for e in stored] == [3, 4]
        assert [e.type for e in stored] == ["note", "agent"]
        assert (await store.get_outbox_item(note.id)) is not None

    async def test_concurrent_appends_get_distinct_consecutive_seqs(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        await asyncio.gather(*(store.append_events(conv.id, [event(n), event(n + 100)]) for n in range(6)))
        seqs = [e.seq for e in await store.transcript(conv.id)]
        assert seqs == list(range(1, 13))

    async def test_transcript_round_trips_events(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        original = Event(
            type="user",
            data={"text": "Wo ist meine Bestellung?", "parse_data": {"intent": {"name": "order_status",
                  "confidence": 0.93}, "entities": [{"entity": "order_id", "value": "A-17"}]}, "input_channel": "x"},
            channel="whatsapp",
            timestamp=T0,
        )
        await store.append_events(conv.id, [original])
        (stored,) = await store.transcript(conv.id)
        assert stored == Event(original.type, original.data, original.channel, original.timestamp, seq=1)
        assert stored.timestamp.tzinfo is not None

    async def test_transcript_after_seq_and_limit_keep_order(self, store: Store) -> None:
        _, conv = await contact_and_conversation(store)
        await store.append_events(conv.id, [event(n) for n in range(1, 8)])
        assert [e.seq for e in await store.transcript(conv.id)] == [1, 2, 3, 4, 5, 6, 7]
        assert [e.seq for e in await store.transcript(conv.id, after_seq=4)] == [5, 6, 7]
        assert [e.seq for e in await store.transcript(conv.id, limit=3)] == [5, 6, 7]
        assert [e.seq for e in await store.transcript(conv.id, after_seq=2, limit=2)] == [6, 7]
        assert await store.transcript(conv.id, after_seq=7) == []
