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
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from core.config import EnvSettings, FarmConfig, load_farm_config
from core.desk_config import DESKS_GROUP
from core.errors import NotFound, StoreUnavailable, SwitchboardError
from core.identity import IdentityService
from core.privacy.erasure import ErasureTarget, JobStatus, attempt_pending, describe, retry_failed
from core.privacy.service import ForgetReport, PrivacyService
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


def _farm_config(config: Path | None) -> FarmConfig:
    return load_farm_config(config or Path(EnvSettings().config))


def _erasure_targets(farm: FarmConfig) -> dict[str, ErasureTarget]:
    """The desks this command can erase copies in itself (Slack, when configured)."""
    targets: dict[str, ErasureTarget] = {}
    for name, block in farm.desk.enabled_desks().items():  # validated by the desk's own eraser_from_config
        found = [ep for ep in entry_points(group=DESKS_GROUP) if ep.name == name]
        make = getattr(found[0].load(), "eraser_from_config", None) if found else None
        if callable(make):
            targets[name] = make(block)
    return targets


async def _forget(config: Path | None, contact: str) -> tuple[ForgetReport, list[JobStatus]]:
    targets = _erasure_targets(_farm_config(config))

    async def work(store: Store) -> tuple[ForgetReport, list[JobStatus]]:
        report = await PrivacyService(store).forget(contact, actor=_actor())
        return report, await attempt_pending(store, targets, contact, actor=_actor())

    return await _with_store(config, work)


async def _status(config: Path | None, contact: str, retry: bool) -> tuple[int, list[JobStatus]]:
    async def work(store: Store) -> tuple[int, list[JobStatus]]:
        queued = await retry_failed(store, contact) if retry else 0
        return queued, await PrivacyService(store).erasure_status(contact)

    return await _with_store(config, work)


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
    status: Annotated[bool, typer.Option("--status", help="Only show where the erasure of the contact's "
                                         "desk copies (Slack) stands")] = False,
    retry: Annotated[bool, typer.Option("--retry", help="Queue erasures that failed for good again")] = False,
) -> None:
    """Erase a contact's personal data, transcript text, stored files and desk copies (anonymous counts stay).

    Prints what was erased where (also kept in the audit log). Slack copies are erased by
    outbox jobs; if Slack is unreachable they stay pending and the running farm retries them:
    `--status` shows them.
    """
    if status or retry:
        try:
            queued, jobs = asyncio.run(_status(config, contact, retry))
        except SwitchboardError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1 if isinstance(exc, StoreUnavailable) else 2) from exc
        if retry:
            typer.echo(f"queued {queued} failed erasure(s) again")
        if not jobs:
            typer.echo(f"no desk copies to erase for {contact}")
        for job in jobs:
            typer.echo(describe(job))
        pending = sum(j.state == "pending" for j in jobs)
        failed = sum(j.state == "failed" for j in jobs)
        typer.echo(f"{len(jobs) - pending - failed} erased, {pending} pending, {failed} failed")
        return
    if not yes and not typer.confirm(f"Erase all personal data of {contact}? This cannot be undone."):
        typer.echo("aborted", err=True)
        raise typer.Exit(1)
    try:
        report, jobs = asyncio.run(_forget(config, contact))
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
    typer.echo(f"  store: contact and {report.conversations} conversation(s) erased, "
               f"{report.events} transcript event(s) blanked")
    typer.echo(f"  stored files: {report.media} deleted")
    for job in jobs:
        typer.echo(f"  {describe(job)}")
    if any(j.state == "pending" for j in jobs):
        typer.echo(f"  see `switchboard forget --status --contact {contact}`")


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
