"""``switchboard export`` and ``switchboard forget``: a person's data rights from the command line.

Both open the store named in farm.yml (SQLite path or MongoDB url) and write an audit
entry with the actor ``admin:<login name>``.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from core.config import EnvSettings, load_farm_config
from core.errors import NotFound, StoreUnavailable, SwitchboardError
from core.identity import IdentityService
from core.privacy.service import PrivacyService
from core.store.base import Store
from core.store.factory import open_store as store_for

T = TypeVar("T")

app = typer.Typer(help="Export or erase everything held about a contact.", no_args_is_help=True)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="farm.yml (default: $SWITCHBOARD_CONFIG or config/farm.yml)")
]
ContactOption = Annotated[str, typer.Option("--contact", help="The contact id (ct_...)")]


def open_store(config_path: Path | None) -> Store:
    """The store configured in farm.yml (not opened yet)."""
    return store_for(load_farm_config(config_path or Path(EnvSettings().config)).store)


def _actor() -> str:
    try:
        return f"admin:{getpass.getuser()}"
    except (KeyError, OSError):
        return "admin:unknown"


async def _with_store(config: Path | None, work: Callable[[Store], Awaitable[T]]) -> T:
    store = open_store(config)
    await store.open()
    try:
        return await work(store)
    finally:
        await store.close()


async def _export(config: Path | None, contact: str) -> dict[str, Any]:
    return await _with_store(config, lambda store: PrivacyService(store).export(contact, actor=_actor()))


async def _forget(config: Path | None, contact: str) -> None:
    await _with_store(config, lambda store: PrivacyService(store).forget(contact, actor=_actor()))


@app.command("export")
def export_command(
    contact: ContactOption,
    config: ConfigOption = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write JSON here instead of stdout")] = None,
) -> None:
    """Everything held about a contact, as JSON ({} if unknown or forgotten)."""
    try:
        data = asyncio.run(_export(config, contact))
    except StoreUnavailable as exc:  # not a mistake in the command: exit 1, as `switchboard --help` says
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except SwitchboardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    if out is None:
        sys.stdout.write(text + "\n")
    else:
        out.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"wrote {out}", err=True)
    if not data:
        typer.echo(f"no data held about {contact}", err=True)


@app.command("forget")
def forget_command(
    contact: ContactOption,
    config: ConfigOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
) -> None:
    """Erase a contact's personal data and transcript text (anonymous counts stay)."""
    if not yes and not typer.confirm(f"Erase all personal data of {contact}? This cannot be undone."):
        typer.echo("aborted", err=True)
        raise typer.Exit(1)
    try:
        asyncio.run(_forget(config, contact))
    except NotFound as exc:
        typer.echo(f"error: unknown contact {contact}", err=True)
        raise typer.Exit(1) from exc
    except StoreUnavailable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except SwitchboardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"forgot {contact}")


@app.command("unlink")
def unlink_command(
    contact: ContactOption,
    channel: Annotated[str, typer.Option("--channel", help="The channel identity to split off (e.g. telegram)")],
    config: ConfigOption = None,
) -> None:
    """Split one channel's identity off a linked contact into a contact of its own (audited)."""

    async def unlink(store: Store) -> str:
        configs = {bot: b.privacy for bot, b in load_farm_config(config or Path(EnvSettings().config)).bots.items()}
        return (await IdentityService(store, configs).unlink(contact, channel, actor=_actor())).id

    try:
        new_contact = asyncio.run(_with_store(config, unlink))
    except NotFound as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{channel} of {contact} is now contact {new_contact}")


if __name__ == "__main__":  # pragma: no cover
    app()
