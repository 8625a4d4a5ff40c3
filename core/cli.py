"""The ``switchboard`` command line (typer).

``run``, ``check``, ``hash-password`` live here; ``train``, ``test``, ``shell``,
``export``, ``forget``, ``dead-letters`` and ``bench`` are mounted from their own modules.
"""

from __future__ import annotations

import asyncio
import errno
import signal
import socket
import sys
from pathlib import Path
from typing import Annotated

import structlog
import typer

from core import logging as sb_logging
from core.config import EnvSettings, FarmConfig, FarmConfigInvalid, load_farm_config
from core.errors import ConfigError, StoreUnavailable, SwitchboardError
from core.privacy.masking import LogMasker, Masker

EXIT_CODES = (
    "Exit status, every command: 0 success; 1 a failure that is not a mistake in the command line or "
    "the configuration (check found errors, a test story failed, the contact is unknown, erasing was not "
    "confirmed, the port is in use, the store is unreachable or served by another farm): retrying later "
    "may help; 2 a usage or configuration error (an unknown option, a missing or invalid farm.yml, bot "
    "project or file): fix it first. `test stories` keeps `rasa test`'s statuses (switchboard test --help)."
)

app = typer.Typer(
    name="switchboard",
    help="Switchboard: a customer-service bot farm (Telegram, WhatsApp, web chat; Slack handoff).",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    add_completion=False,
)
log = structlog.get_logger("switchboard")

DEFAULT_CONFIG = Path("config/farm.yml")
ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="farm.yml to use.", envvar="SWITCHBOARD_CONFIG")]


class StartupFailed(SwitchboardError):
    """The farm did not start; the message is one line that says what to do.

    ``status``: 2 when the configuration must change (a bot project, --host), 1 otherwise.
    """

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def _config_errors(exc: ConfigError, prefix: str, config: Path) -> list[str]:
    """One line per problem (all of them for an invalid farm.yml)."""
    if isinstance(exc, FarmConfigInvalid):
        return [f"{prefix}{problem}" for problem in exc.problems]
    if config == DEFAULT_CONFIG and not config.exists():  # run from elsewhere than the repository's root
        return [f"{prefix}{exc} — run from the folder that holds config/, or pass --config FILE"]
    return [f"{prefix}{exc}"]


def _load(config: Path) -> FarmConfig:
    try:
        return load_farm_config(config)
    except ConfigError as exc:
        for line in _config_errors(exc, "config error: ", config):
            typer.echo(line, err=True)
        raise typer.Exit(2) from exc


@app.command(epilog="Exit status: 0 after a clean stop (Ctrl-C or SIGTERM); 1 the farm cannot start: the port "
                    "is in use, the store is unreachable or served by another farm; 2 farm.yml, a bot project or "
                    "--host/--port is invalid; 130 interrupted while starting. One line says why and what to do.")
def run(
    config: ConfigOption = DEFAULT_CONFIG,
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default from farm.yml: 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="Port (default from farm.yml: 8080).")] = None,
    actions: Annotated[str | None, typer.Option(
        "--actions", help="auto | in-process | endpoint, for every bot (default: farm.yml's bots.<name>.actions, auto).",
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
    try:
        env = EnvSettings()
    except ConfigError as exc:
        typer.echo(f"config error: {exc}", err=True)
        raise typer.Exit(2) from exc
    masker = LogMasker(Masker.for_bots(b.privacy for b in farm_config.bots.values()))
    sb_logging.configure(env.log_level or farm_config.log_level, env.log_format or farm_config.log_format, masker)
    listen_host = host or farm_config.server.host
    listen_port = port if port is not None else farm_config.server.port
    try:
        busy = listen_problem(listen_host, listen_port)  # before seconds of loading, not after
        if busy:
            raise busy
        asyncio.run(_serve(farm_config, listen_host, listen_port))
    except StartupFailed as exc:
        typer.echo(f"cannot start: {exc}", err=True)
        raise typer.Exit(exc.status) from exc
    except KeyboardInterrupt as exc:  # Ctrl-C while the bots still load
        typer.echo("stopped before the farm was up", err=True)
        raise typer.Exit(130) from exc


def _listen_failure(exc: OSError, host: str, port: int) -> StartupFailed:
    if exc.errno == errno.EADDRINUSE:
        return StartupFailed(f"port {port} on {host} is in use — stop the other process or pass --port")
    if exc.errno == errno.EACCES:
        return StartupFailed(
            f"no permission to listen on port {port} on {host} — ports below 1024 need privileges; pass --port 8080", 2)
    if exc.errno == errno.EADDRNOTAVAIL:
        return StartupFailed(
            f"{host} is not an address of this machine — pass --host 127.0.0.1 (or 0.0.0.0 for every interface)", 2)
    return StartupFailed(f"cannot listen on {host}:{port} ({exc.strerror or exc}) — pass another --host or --port")


def listen_problem(host: str, port: int) -> StartupFailed | None:
    """Why the web app could not listen on ``host:port``, or None; bound as aiohttp binds."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return StartupFailed(
            f"host '{host}' is not a known address — pass --host 127.0.0.1 (or 0.0.0.0 for every interface)", 2)
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's create_server
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                return _listen_failure(exc, host, port)
    return None


def _startup_failure(exc: Exception, host: str, port: int) -> StartupFailed:
    if isinstance(exc, StoreUnavailable):  # unreachable, or served by another farm: the message says what to do
        return StartupFailed(str(exc))
    if isinstance(exc, SwitchboardError):  # a bot project that does not load, a channel's settings
        return StartupFailed(str(exc), 2)
    if isinstance(exc, OSError) and exc.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
        return _listen_failure(exc, host, port)
    if isinstance(exc, OSError) and exc.filename:
        return StartupFailed(f"{exc.strerror}: {exc.filename} — check the paths in farm.yml (relative to farm.yml)")
    log.debug("farm.start_failed", exc_info=exc)
    return StartupFailed(f"{type(exc).__name__}: {exc} — SWITCHBOARD_LOG_LEVEL=debug shows where")


async def _serve(config: FarmConfig, host: str, port: int) -> None:
    from core.farm import Farm, channels_summary, serve

    farm = Farm(config)
    try:
        runner = await serve(farm, host, port)
    except Exception as exc:
        if farm.app is not None:  # started, then could not listen: stop what runs
            try:
                await farm.stop()
            except Exception:
                log.exception("farm.stop_failed")
        raise _startup_failure(exc, host, port) from exc
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    if port == 0 and runner.addresses:  # --port 0: the port the system chose
        port = int(runner.addresses[0][1])
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


@app.command(epilog="Exit status: 0 valid (warnings allowed); 1 errors found in farm.yml or a project; "
                    "2 the file or directory named does not exist.")
def check(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="farm.yml to check (default config/farm.yml).",
                                                envvar="SWITCHBOARD_CONFIG")] = None,
    project: Annotated[Path | None, typer.Option("--project", help="Check one Rasa 3.x project directory.")] = None,
) -> None:
    """Validate farm.yml and every bot project (or one --project); list every error, each with file:line.

    Warnings (what Rasa accepts, components Switchboard replaces) are printed too.
    """
    from core.rasa.validate import Review, review_project

    if project is not None and not project.is_dir():
        typer.echo(f"error: {project}: project directory not found", err=True)
        raise typer.Exit(2)
    farm_file = config or (DEFAULT_CONFIG if project is None else None)
    reviews: list[tuple[str, Review]] = []
    errors: list[str] = []
    if project is not None:
        reviews.append(("", review_project(project)))
    if farm_file is not None:
        try:
            farm_config = load_farm_config(farm_file)
            project_dirs = {bot: farm_config.project_dir(bot) for bot in farm_config.bots}
        except FarmConfigInvalid as exc:  # every problem of the file; still review the projects that exist
            errors += [str(problem) for problem in exc.problems]
            project_dirs = exc.project_dirs
        except ConfigError as exc:  # the file is not there
            typer.echo(_config_errors(exc, "error: ", farm_file)[0], err=True)
            raise typer.Exit(2) from exc
        reviews += [(f"bots.{bot}: ", review_project(folder)) for bot, folder in project_dirs.items()]
    errors += [f"{prefix}{problem}" for prefix, result in reviews for problem in result.errors]
    for prefix, result in reviews:
        for note in result.notes:
            typer.echo(f"{prefix}note: {note}", err=True)
        for warning in result.warnings:
            typer.echo(f"{prefix}warning: {warning}", err=True)
    if errors:
        for problem in errors:
            typer.echo(f"error: {problem}", err=True)
        if len(errors) > 1:
            typer.echo(f"{len(errors)} errors", err=True)
        raise typer.Exit(1)
    warned = sum(len(r.warnings) for _, r in reviews)
    what = f"project {project}" if farm_file is None else f"{farm_file}"
    names = [prefix.removeprefix("bots.").removesuffix(": ") for prefix, _ in reviews if prefix]
    bots = f" ({len(names)} bot(s): {', '.join(names)})" if names else ""
    typer.echo(f"{what}: OK{bots}" + (f", {warned} warning(s)" if warned else ""))


@app.command("hash-password", epilog="Exit status: 0 printed; 1 the input ended before two entries matched.")
def hash_password(
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Print an argon2 hash for a web-desk agent's password (put it in farm.yml)."""
    from argon2 import PasswordHasher

    typer.echo(PasswordHasher().hash(password))


def _mount_subcommands() -> None:
    from core import bench_cli, dead_letters_cli, privacy_cli, rasa_cli, review_cli
    from core.analytics import cli as analytics_cli

    project_errors = "2 the project, farm.yml or a file named is missing or invalid."
    app.command("train", epilog=f"Exit status: 0 the model is ready; {project_errors}")(rasa_cli.train)
    app.add_typer(rasa_cli.test_app, name="test", epilog=(
        f"Exit status: test nlu: 0 the report is written; {project_errors} test stories keeps `rasa test`'s: "
        "0 the stories ran, also when some fail; 1 a story failed with --fail-on-prediction-errors, or a "
        "missing project or stories file; 2 an invalid option."))
    app.command("shell", epilog=f"Exit status: 0 at Ctrl-D; {project_errors}")(rasa_cli.shell)
    unreachable, invalid = "the store is unreachable", "2 farm.yml is missing or invalid."
    app.command("export", epilog=f"Exit status: 0 (also for an unknown contact: {{}}); 1 {unreachable}; {invalid}")(
        privacy_cli.export_command)
    app.command("forget", epilog=f"Exit status: 0 erased; 1 unknown contact, not confirmed, or {unreachable}; {invalid}")(
        privacy_cli.forget_command)
    app.command("unlink", epilog=f"Exit status: 0 split off; 1 unknown contact, no such identity, or {unreachable}; "
                                 f"{invalid}")(privacy_cli.unlink_command)
    app.command("report", epilog=f"Exit status: 0 printed; 1 {unreachable}; 2 a bad option, {invalid[2:]}")(
        analytics_cli.report_command)
    app.add_typer(dead_letters_cli.app, name="dead-letters", epilog=(
        "Exit status: 0 done; 1 no such dead letter or the store is unreachable; 2 farm.yml is missing or invalid."))
    app.add_typer(review_cli.app, name="review", epilog=(
        "Exit status: 0 done; 1 the store is unreachable; 2 farm.yml, the bot or the file is missing or invalid."))
    for command in bench_cli.app.registered_commands:
        command.epilog = command.epilog or "Exit status: 0 measured; 2 not run from a source checkout."
        app.registered_commands.append(command)


_mount_subcommands()


def main() -> None:
    """The ``switchboard`` console script: quiet logs (SWITCHBOARD_LOG_LEVEL to see more), one-line errors."""
    try:
        sb_logging.configure(EnvSettings().log_level or "warning")
        app(prog_name="switchboard")
    except ConfigError as exc:
        typer.echo(f"config error: {exc}", err=True)
        sys.exit(2)
    except StoreUnavailable as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except SwitchboardError as exc:  # any other user-facing error a command let through: one line
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
