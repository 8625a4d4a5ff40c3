"""SQLite's retention purge runs in chunks (each its own unit, so turns are not held up by one
scan of whole tables) and still purges everything old, whatever the chunk size."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from core.store.sqlite import SQLiteStore
from core.store.sqlite import privacy as sqlite_privacy
from tests.store.contract_support import BOT, T0, contact_and_conversation, event, outbound
from tests.support.clock import FakeClock


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    instance = SQLiteStore(str(tmp_path / "switchboard.db"), clock=FakeClock())
    await instance.open()
    yield instance
    await instance.close()


@pytest.mark.parametrize("chunk", [1, 2, 5_000])
async def test_a_purge_in_chunks_purges_every_old_row(store: SQLiteStore, chunk: int,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_privacy, "PURGE_CHUNK", chunk)
    old, new = T0 - timedelta(days=400), T0
    conversations = [(await contact_and_conversation(store, f"u{i}"))[1] for i in range(3)]
    replies = []
    for conv in conversations:
        await store.append_events(conv.id, [event(1, at=old), event(2, at=old), event(3, at=new)])
        reply = outbound(conv, f"old reply to {conv.id}", created_at=old)
        await store.append_events(conv.id, [], [reply])
        (claimed,) = await store.claim_outbox("s1", limit=10, lease_seconds=30)
        await store.outbox_sent(claimed.outbound.id, f"telegram:{reply.id}")
        replies.append(reply)
    assert await store.purge_transcripts(BOT, older_than=T0 - timedelta(days=365)) == 6
    for conv, reply in zip(conversations, replies, strict=True):
        assert [e.seq for e in await store.transcript(conv.id)] == [3]
        assert (await store.get_outbox_item(reply.id)).outbound.text == ""  # type: ignore[union-attr]
    assert await store.purge_transcripts(BOT, older_than=T0 - timedelta(days=365)) == 0  # nothing left
