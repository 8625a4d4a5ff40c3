"""``switchboard export`` and ``switchboard forget``: a person's data rights from the command line.

Both open the store named in farm.yml (SQLite path or MongoDB url) and write an audit
entry with the actor ``admin:<login name>``.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from core.config import EnvSettings, load_farm_config
from core.errors import NotFound, SwitchboardError
from core.privacy.service import PrivacyService
from core.store.base import Store

app = typer.Typer(help="Export or erase everything held about a contact.", no_args_is_help=True)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="farm.yml (default: $SWITCHBOARD_CONFIG or config/farm.yml)")
]
ContactOption = Annotated[str, typer.Option("--contact", help="The contact id (ct_...)")]


def open_store(config_path: Path | None) -> Store:
    """The store configured in farm.yml (not opened yet)."""
    from core.farm import open_store as store_for

    return store_for(load_farm_config(config_path or Path(EnvSettings().config)))


def _actor() -> str:
    try:
        return f"admin:{getpass.getuser()}"
    except (KeyError, OSError):
        return "admin:unknown"


async def _export(config: Path | None, contact: str) -> dict[str, Any]:
    store = open_store(config)
    await store.open()
    try:
        return await PrivacyService(store).export(contact, actor=_actor())
    finally:
        await store.close()


async def _forget(config: Path | None, contact: str) -> None:
    store = open_store(config)
    await store.open()
    try:
        await PrivacyService(store).forget(contact, actor=_actor())
    finally:
        await store.close()


@app.command("export")
def export_command(
    contact: ContactOption,
    config: ConfigOption = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write JSON here instead of stdout")] = None,
) -> None:
    """Everything held about a contact, as JSON ({} if unknown or forgotten)."""
    try:
        data = asyncio.run(_export(config, contact))
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
    except SwitchboardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"forgot {contact}")


if __name__ == "__main__":  # pragma: no cover
    app()
