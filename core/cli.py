"""The ``switchboard`` command line (typer).

``run``, ``check``, ``hash-password`` live here; ``train``, ``test``, ``shell``,
``export``, ``forget`` and ``bench`` are mounted from their own modules.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Annotated

import structlog
import typer

from core import logging as sb_logging
from core.config import EnvSettings, FarmConfig, load_farm_config
from core.errors import ConfigError, StoreUnavailable, SwitchboardError
from core.privacy.masking import LogMasker, Masker

app = typer.Typer(
    name="switchboard",
    help="Switchboard: a customer-service bot farm (Telegram, WhatsApp, web chat; Slack handoff).",
    no_args_is_help=True,
    add_completion=False,
)
log = structlog.get_logger("switchboard")

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="farm.yml to use.", envvar="SWITCHBOARD_CONFIG")]


def _load(config: Path) -> FarmConfig:
    try:
        return load_farm_config(config)
    except ConfigError as exc:
        typer.echo(f"config error: {exc}", err=True)
        raise typer.Exit(2) from exc


@app.command()
def run(
    config: ConfigOption = Path("config/farm.yml"),
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default from farm.yml: 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from farm.yml: 8080).")] = None,
    actions: Annotated[str | None, typer.Option(
        "--actions", help="in-process | endpoint, for every bot (default: farm.yml's bots.<name>.actions, auto).",
    )] = None,
) -> None:
    """Start the farm: every bot, channel, desk and the web app."""
    farm_config = _load(config)
    if actions is not None:
        if actions not in ("auto", "in-process", "endpoint"):
            typer.echo(f"error: --actions must be auto, in-process or endpoint, not '{actions}'", err=True)
            raise typer.Exit(2)
        for bot in farm_config.bots.values():
            bot.actions = actions  # type: ignore[assignment]
    masker = LogMasker(Masker.for_bots(b.privacy for b in farm_config.bots.values()))
    env = EnvSettings()
    sb_logging.configure(env.log_level or farm_config.log_level, env.log_format or farm_config.log_format, masker)
    listen_host = host or farm_config.server.host
    listen_port = port if port is not None else farm_config.server.port
    try:
        asyncio.run(_serve(farm_config, listen_host, listen_port))
    except StoreUnavailable as exc:
        typer.echo(f"cannot start: {exc}", err=True)
        raise typer.Exit(1) from exc
    except SwitchboardError as exc:  # a bot project that does not load: one line, no traceback
        typer.echo(f"cannot start: {exc}", err=True)
        raise typer.Exit(2) from exc


async def _serve(config: FarmConfig, host: str, port: int) -> None:
    from core.farm import Farm, channels_summary, serve

    farm = Farm(config)
    runner = await serve(farm, host, port)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    for line in channels_summary(farm, shown, port):
        log.info("farm.listening", where=line)
    if config.desk.web.enabled:
        log.info("farm.listening", where=f"web desk: http://{shown}:{port}/desk")
    log.info("farm.listening", where=f"health: http://{shown}:{port}/healthz, metrics: http://{shown}:{port}/metrics")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("farm.stopping")
    await runner.cleanup()  # stops accepting requests, lets in-flight requests finish
    await farm.stop()


@app.command()
def check(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="farm.yml to check (default config/farm.yml).",
                                                envvar="SWITCHBOARD_CONFIG")] = None,
    project: Annotated[Path | None, typer.Option("--project", help="Check one Rasa 3.x project directory.")] = None,
) -> None:
    """Validate farm.yml and every bot project (or one --project); exit 1 on errors.

    Warnings (what Rasa accepts, components Switchboard replaces) are printed and exit 0.
    """
    from core.rasa.validate import Review, review_project

    reviews: list[tuple[str, Review]] = []
    if project is not None:
        reviews.append(("", review_project(project)))
    if config is not None or project is None:
        farm_config = _load(config or Path("config/farm.yml"))
        reviews += [(f"bots.{bot}: ", review_project(farm_config.project_dir(bot))) for bot in farm_config.bots]
    errors = [f"{prefix}{problem}" for prefix, result in reviews for problem in result.errors]
    for prefix, result in reviews:
        for note in result.notes:
            typer.echo(f"{prefix}note: {note}", err=True)
        for warning in result.warnings:
            typer.echo(f"{prefix}warning: {warning}", err=True)
    if errors:
        for problem in errors:
            typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(1)
    warned = sum(len(r.warnings) for _, r in reviews)
    what = f"project {project}" if project is not None and config is None else f"{config or 'config/farm.yml'}"
    names = [prefix.removeprefix("bots.").removesuffix(": ") for prefix, _ in reviews if prefix]
    bots = f" ({len(names)} bot(s): {', '.join(names)})" if names else ""
    typer.echo(f"{what}: OK{bots}" + (f", {warned} warning(s)" if warned else ""))


@app.command("hash-password")
def hash_password(
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Print an argon2 hash for a web-desk agent's password (put it in farm.yml)."""
    from argon2 import PasswordHasher

    typer.echo(PasswordHasher().hash(password))


def _mount_subcommands() -> None:
    from core import bench_cli, rasa_cli
    from core.privacy import cli as privacy_cli

    app.command("train")(rasa_cli.train)
    app.add_typer(rasa_cli.test_app, name="test")
    app.command("shell")(rasa_cli.shell)
    app.command("export")(privacy_cli.export_command)
    app.command("forget")(privacy_cli.forget_command)
    app.command("unlink")(privacy_cli.unlink_command)
    for command in bench_cli.app.registered_commands:
        app.registered_commands.append(command)


_mount_subcommands()


def main() -> None:
    sb_logging.configure("info")
    try:
        app()
    except ConfigError as exc:
        typer.echo(f"config error: {exc}", err=True)
        sys.exit(2)
    except SwitchboardError as exc:  # any other user-facing error a command let through: one line
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
