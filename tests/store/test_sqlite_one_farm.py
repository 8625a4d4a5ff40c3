"""A farm on SQLite is one process: the store that holds the file keeps the leases in
memory, a second farm on the same file refuses to start, and other openers (the CLI's
export, forget) keep working with the leases table."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.cli import app
from core.errors import StoreUnavailable
from core.model import Identity, Outbound
from core.store.base import OutboxState
from core.store.sqlite import SQLiteStore

REPO = Path(__file__).resolve().parents[2]


async def test_a_second_farm_on_the_same_file_is_refused_until_the_first_closes(tmp_path: Path) -> None:
    path = tmp_path / "switchboard.db"
    first, second = SQLiteStore(path), SQLiteStore(path)
    await first.open()
    await second.open()
    try:
        first.serve_check()
        with pytest.raises(StoreUnavailable, match="already served by another farm process"):
            second.serve_check()
        # the second opener still reads and writes, as `switchboard export` / `forget` do
        contact = await first.resolve_contact("demo", Identity("webchat", "u1", "u1"))
        assert await second.get_contact(contact.id) == contact
    finally:
        await second.close()
        await first.close()
    third = SQLiteStore(path)
    await third.open()
    try:
        third.serve_check()  # the first one is gone: this one serves
    finally:
        await third.close()


async def test_leases_of_openers_that_do_not_serve_are_shared_through_the_file(tmp_path: Path) -> None:
    path = tmp_path / "switchboard.db"
    farm, cli_a, cli_b = SQLiteStore(path), SQLiteStore(path), SQLiteStore(path)
    for store in (farm, cli_a, cli_b):
        await store.open()
    try:
        assert await cli_a.acquire_lease("privacy-sweep", "a", 30)
        assert not await cli_b.acquire_lease("privacy-sweep", "b", 30)
        await cli_a.release_lease("privacy-sweep", "a")
        assert await cli_b.acquire_lease("privacy-sweep", "b", 30)
    finally:
        for store in (cli_b, cli_a, farm):
            await store.close()


def test_switchboard_run_on_a_file_another_farm_serves_exits_with_a_clear_message(tmp_path: Path) -> None:
    import asyncio

    path = tmp_path / "switchboard.db"
    config = tmp_path / "farm.yml"
    config.write_text(
        f"store:\n  kind: sqlite\n  path: {path}\nbots:\n  demo:\n    project: {REPO / 'config' / 'demo'}\n",
        encoding="utf-8",
    )
    holder = SQLiteStore(path)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(holder.open())
        result = CliRunner().invoke(app, ["run", "--config", str(config), "--port", "0"])
        assert result.exit_code == 1, result.output
        assert "cannot start" in result.output and "already served by another farm process" in result.output
        assert str(path) in result.output
    finally:
        loop.run_until_complete(holder.close())
        loop.close()


async def test_replies_a_dead_farm_had_claimed_are_in_doubt_when_the_next_one_opens_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "switchboard.db"
    dead = SQLiteStore(path)
    await dead.open()
    contact = await dead.resolve_contact("demo", Identity("webchat", "u1", "u1"))
    conversation = await dead.conversation_for("demo", contact.id)
    reply = Outbound(conversation.id, "demo", "webchat", "u1", "hello")
    await dead.append_events(conversation.id, [], [reply])
    (claimed,) = await dead.claim_outbox("dead-farm", limit=10, lease_seconds=30)
    assert claimed.in_doubt == 0
    await dead.close()  # like kill -9: the claim is left in the file without a result
    farm = SQLiteStore(path)
    await farm.open()
    try:
        (again,) = await farm.claim_outbox("farm", limit=10, lease_seconds=30)  # at once, not after 30 s
        assert (again.outbound.id, again.in_doubt) == (reply.id, 1)
        assert await farm.outbox_sent(reply.id, "webchat:1", token=again.lease_token)
        stored = await farm.get_outbox_item(reply.id)
        assert stored is not None and (stored.state, stored.in_doubt) == (OutboxState.SENT, 1)
    finally:
        await farm.close()
