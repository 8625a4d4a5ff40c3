"""``switchboard report``: the service figures of ``docs/kpis.md`` from the store, as a table, JSON or CSV.

Opens the store named in farm.yml beside a running farm (as ``export`` does) and reads
only the case analytics, never a transcript.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from core.analytics.report import build_report, to_csv, to_table
from core.config import EnvSettings, load_farm_config
from core.store.factory import open_store


class Grouping(StrEnum):
    day = "day"
    week = "week"
    channel = "channel"
    language = "language"
    agent = "agent"
    intent = "intent"


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        typer.echo(f"error: {option} must be a date as YYYY-MM-DD, not '{value}'", err=True)
        raise typer.Exit(2) from None


async def _report(config: Path | None, bot: str | None, since: date | None, until: date | None,
                  by: str | None) -> dict[str, Any]:
    farm = load_farm_config(config or Path(EnvSettings().config))
    if bot is not None and bot not in farm.bots:
        typer.echo(f"error: no bot '{bot}' in farm.yml (bots: {', '.join(sorted(farm.bots))})", err=True)
        raise typer.Exit(2)
    store = open_store(farm.store)
    await store.open()
    try:
        return await build_report(store, bot=bot, since=since, until=until, by=by)
    finally:
        await store.close()


def report_command(
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="farm.yml (default: $SWITCHBOARD_CONFIG or config/farm.yml)")] = None,
    bot: Annotated[str | None, typer.Option(help="Only this bot (default: every bot).")] = None,
    since: Annotated[str | None, typer.Option(help="Cases that started on or after this UTC date (YYYY-MM-DD).")] = None,
    until: Annotated[str | None, typer.Option(help="Cases that started on or before this UTC date (YYYY-MM-DD).")] = None,
    by: Annotated[Grouping | None, typer.Option(help="Also per day, ISO week, channel, language, agent or intent.")] = None,
    output: Annotated[Format, typer.Option("--format", help="table, json or csv.")] = Format.table,
) -> None:
    """Service figures per bot: cases, containment, handoffs, waiting and handle times, CSAT (docs/kpis.md)."""
    first, last = _day(since, "--since"), _day(until, "--until")
    if first and last and first > last:
        typer.echo("error: --since is after --until", err=True)
        raise typer.Exit(2)
    report = asyncio.run(_report(config, bot, first, last, by.value if by else None))
    if output is Format.json:
        typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
    elif output is Format.csv:
        typer.echo(to_csv(report), nl=False)
    else:
        typer.echo(to_table(report), nl=False)
