"""``switchboard review list|export|import``: the review queue from a shell, for teams that label elsewhere.

Opens the store named in farm.yml beside a running farm (as ``export`` does). ``export``
writes the queue as CSV (fill in the ``label`` column with an intent, or ``out_of_scope``) or
the labels as Rasa NLU YAML; ``import`` reads either back (CSV rows by ``id``, else by text;
YAML examples by text; a text that is not in the queue is added as an ``imported`` item),
then rewrites the bot project's ``data/review/<bot>.yml``. Labels are recorded as ``admin:<login>``.
"""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from core.config import EnvSettings, FarmConfig, load_farm_config
from core.errors import ConfigError, SwitchboardError
from core.privacy.masking import Masker
from core.review.labels import labelled_examples, nlu_yaml, read_csv, read_yaml, to_csv
from core.review.service import ReviewBot, ReviewService
from core.store.base import Store
from core.store.factory import open_store
from core.store.ports.review import ReviewStatus, review_port

T = TypeVar("T")

app = typer.Typer(help="List, export and import the review queue (messages the bot handled badly).",
                  no_args_is_help=True)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="farm.yml (default: $SWITCHBOARD_CONFIG or config/farm.yml)")
]
BotOption = Annotated[str, typer.Option("--bot", help="The bot whose queue to use.")]


class Format(str, Enum):
    csv = "csv"
    yaml = "yaml"


class Status(str, Enum):
    open = "open"
    labelled = "labelled"
    out_of_scope = "out_of_scope"
    all = "all"


def _actor() -> str:
    try:
        return f"admin:{getpass.getuser()}"
    except (KeyError, OSError):
        return "admin:unknown"


def service_for(config: FarmConfig, store: Store) -> ReviewService:
    """The review service of a farm config over an open store, without engines (no retraining)."""
    bots = {name: ReviewBot(name, config.project_dir(name), settings.review, Masker(settings.privacy.mask_patterns))
            for name, settings in config.bots.items()}
    return ReviewService(review_port(store), store, bots, kv=store)


def _run(config: Path | None, bot: str, work: Callable[[ReviewService], Awaitable[T]]) -> T:
    async def main() -> T:
        farm = load_farm_config(config or Path(EnvSettings().config))
        if bot not in farm.bots:
            raise ConfigError(f"bot '{bot}' is not in bots (known: {', '.join(sorted(farm.bots))})", key="--bot")
        store = open_store(farm.store)
        await store.open()
        try:
            return await work(service_for(farm, store))
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except SwitchboardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2 if isinstance(exc, ConfigError) else 1) from exc


def _status(status: Status) -> ReviewStatus | None:
    return None if status is Status.all else ReviewStatus(status.value)


@app.command("list")
def list_command(bot: BotOption, config: ConfigOption = None,
                 status: Annotated[Status, typer.Option("--status")] = Status.open) -> None:
    """Print the queue: id, why, what the bot understood, the (masked) message."""
    items = _run(config, bot, lambda service: service.queue(bot, _status(status), limit=100_000))
    for item in items:
        understood = f"{item.predicted_intent or '-'} {item.confidence:.2f}" if item.confidence is not None else "-"
        label = f" -> {item.label}" if item.label else (" -> out of scope" if item.status is ReviewStatus.OUT_OF_SCOPE else "")
        typer.echo(f"{item.id}\t{','.join(item.reasons)}\t{understood}\t{item.text}{label}")
    typer.echo(f"{len(items)} item(s)", err=True)


@app.command("export")
def export_command(
    bot: BotOption,
    config: ConfigOption = None,
    format: Annotated[Format, typer.Option("--format", help="csv: the queue to label; yaml: the labels as Rasa NLU")] = Format.csv,
    status: Annotated[Status, typer.Option("--status", help="Which items (csv)")] = Status.open,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """Write the queue as CSV (fill in 'label'), or the labelled messages as Rasa NLU YAML."""
    if format is Format.yaml:
        items = _run(config, bot, lambda service: service.queue(bot, ReviewStatus.LABELLED, limit=100_000))
        text = nlu_yaml([*labelled_examples(items, holdout=False), *labelled_examples(items, holdout=True)],
                        comment=f"Review labels of bot '{bot}' (switchboard review export)")
    else:
        items = _run(config, bot, lambda service: service.queue(bot, _status(status), limit=100_000))
        text = to_csv(items)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"{len(items)} item(s) written to {out}", err=True)


@app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="A CSV from `review export` with 'label' filled in, or Rasa NLU YAML.")],
    bot: BotOption,
    config: ConfigOption = None,
    format: Annotated[Format | None, typer.Option("--format", help="Default: by the file's suffix.")] = None,
) -> None:
    """Apply labels made elsewhere and rewrite the bot project's data/review/<bot>.yml."""
    if not file.is_file():
        typer.echo(f"error: {file}: file not found", err=True)
        raise typer.Exit(2)
    chosen = format or (Format.csv if file.suffix.lower() == ".csv" else Format.yaml)
    try:
        labels = read_csv(file) if chosen is Format.csv else read_yaml(file)
    except (SwitchboardError, UnicodeDecodeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    counts = _run(config, bot, lambda service: service.import_labels(bot, labels, by=_actor()))
    typer.echo(f"{counts['labelled']} labelled ({counts['added']} new), {counts['skipped']} skipped")
