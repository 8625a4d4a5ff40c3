"""``switchboard dead-letters list|replay|drop``: customer messages whose turn failed for good.

Opens the store named in farm.yml beside a running farm (as ``export`` does). A replayed
message is pending again; the running farm's sweeper picks it up within seconds. Replays
and drops are audited with the actor ``admin:<login name>``.
"""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from core.config import EnvSettings, load_farm_config
from core.errors import SwitchboardError
from core.pipeline.dead_letters import DeadLetters
from core.privacy.at_rest import Sealer, farm_sealer, open_queued
from core.store.base import DeadLetter, Store
from core.store.factory import open_store

T = TypeVar("T")

app = typer.Typer(help="List, replay or drop dead letters (messages whose turn failed for good).",
                  no_args_is_help=True)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="farm.yml (default: $SWITCHBOARD_CONFIG or config/farm.yml)")
]
IdArgument = Annotated[int, typer.Argument(help="The dead letter's id (from `switchboard dead-letters list`)")]


def _actor() -> str:
    try:
        return f"admin:{getpass.getuser()}"
    except (KeyError, OSError):
        return "admin:unknown"


def _run(config: Path | None, work: Callable[[DeadLetters], Awaitable[T]]) -> T:
    async def main() -> T:
        store: Store = open_store(load_farm_config(config or Path(EnvSettings().config)).store)
        await store.open()
        try:
            return await work(DeadLetters(store))
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except SwitchboardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _json(letter: DeadLetter, sealer: Sealer | None = None) -> dict[str, Any]:
    message = letter.item.inbound
    return {"id": letter.item.id, "bot": letter.bot, "conversation": letter.item.conversation_id,
            "channel": message.channel, "text": open_queued(message.text, sealer), "attempts": letter.item.attempts,
            "replays": letter.item.replays, "error": letter.error, "dead_at": letter.dead_at.isoformat()}


@app.command("list")
def list_command(
    config: ConfigOption = None,
    bot: Annotated[str | None, typer.Option(help="Only this bot's dead letters.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Dead letters, oldest first."""
    letters = _run(config, lambda dead: dead.list([bot] if bot else None, limit=limit))
    farm_config = load_farm_config(config or Path(EnvSettings().config))
    # queued texts wait encrypted: opened with the farm's data key
    sealer = farm_sealer({bot: b.privacy for bot, b in farm_config.bots.items()}, farm_config.store)
    for letter in letters:
        row = _json(letter, sealer)
        if as_json:
            typer.echo(json.dumps(row, ensure_ascii=False))
        else:
            text = (row["text"] or "")[:40]
            typer.echo(f"{row['id']}\t{row['bot']}\t{row['channel']}\t{row['attempts']} attempts\t"
                       f"{row['dead_at'][:19]}\t{row['error'][:80]}\t{text!r}")
    if not letters and not as_json:
        typer.echo("no dead letters", err=True)


def _report(item: int, conversation: str | None, done: str) -> None:
    """``done`` with the conversation, or exit 1 when ``item`` is no dead letter."""
    if conversation is None:
        typer.echo(f"error: no dead letter {item}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{done} {item} (conversation {conversation})")


@app.command("replay")
def replay_command(item: IdArgument, config: ConfigOption = None) -> None:
    """Queue the message again (first in its conversation's line); the running farm retries it."""
    _report(item, _run(config, lambda dead: dead.replay(item, actor=_actor())), "replaying")


@app.command("drop")
def drop_command(item: IdArgument, config: ConfigOption = None) -> None:
    """Give the message up for good (it stays in the inbox as processed)."""
    _report(item, _run(config, lambda dead: dead.drop(item, actor=_actor())), "dropped")
