"""``switchboard train | test nlu | test stories | shell`` for bot projects and plain Rasa 3.x projects.

Each command takes ``--project DIR``; without it, ``--bot NAME`` picks the bot's project
from ``--config`` (default ``config/farm.yml``); with neither, the current directory.
``--actions in-process|endpoint`` chooses how custom actions run (default as Rasa: the
action server of endpoints.yml, or of farm.yml's ``bots.<name>.action_endpoint``, when
one is named). A user's mistake (missing project, bad YAML, ...) is one line on stderr
and exit status 2, never a traceback.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from contextvars import ContextVar
from enum import Enum
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer

from core.errors import ConfigError, DialogueError, SwitchboardError

app = typer.Typer(help="Train, test and chat with Rasa-style bots.", no_args_is_help=True)
test_app = typer.Typer(help="Evaluate NLU or dialogue.", no_args_is_help=True)
app.add_typer(test_app, name="test")

ProjectOpt = typer.Option(None, "--project", help="A Rasa 3.x project directory.")
BotOpt = typer.Option(None, "--bot", help="A bot of the farm config; its project is used.")
ConfigOpt = typer.Option(Path("config/farm.yml"), "--config", help="The farm config (for --bot).",
                         envvar="SWITCHBOARD_CONFIG")
ModelDirOpt = typer.Option(None, "--model-dir", help="Where trained models are kept (default: <project>/.switchboard-models).")
NluFileOpt = typer.Option(None, "--nlu", help="NLU test data (default: the project's data/).")
NluOutOpt = typer.Option(Path("results"), "--out", help="Directory for intent_report.json.")
StoriesOpt = typer.Option(None, "--stories", help="Test stories (default: the project's tests/).")
StoriesOutOpt = typer.Option(None, "--out", help="Write story_report.json and failed_test_stories.yml here.")
FailOnErrorsOpt = typer.Option(False, "--fail-on-prediction-errors",
                               help="Stop at the first wrong prediction and exit with status 1.")


class ActionsChoice(str, Enum):
    auto = "auto"
    in_process = "in-process"
    endpoint = "endpoint"


ActionsOpt = typer.Option(
    ActionsChoice.auto, "--actions",
    help="Run custom actions in-process or on the action server (default: the server when endpoints.yml "
         "or farm.yml names one, else in-process).",
)
_ACTIONS_MODE: ContextVar[str] = ContextVar("actions_mode", default="auto")

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(command: F) -> F:
    """A user's mistake (SwitchboardError, unreadable file) becomes one line and exit 2.

    Also records the command's ``--actions`` for `_engine`.
    """

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        mode = kwargs.get("actions")
        _ACTIONS_MODE.set(mode.value if isinstance(mode, ActionsChoice) else str(mode or "auto"))
        try:
            return command(*args, **kwargs)
        except SwitchboardError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
        except OSError as exc:  # e.g. an unreadable --nlu file or a model directory we cannot write
            typer.echo(f"error: {exc.filename or ''}: {exc.strerror or exc}", err=True)
            raise typer.Exit(2) from exc

    return run  # type: ignore[return-value]


def _resolve(project: Path | None, bot: str | None, config: Path) -> tuple[Path, str, list[str], str, str | None]:
    """(project dir, bot name, languages, default language, farm.yml's action_endpoint)."""
    if project is not None:
        return _project_languages(project, project.resolve().name)
    if bot is not None:
        from core.config import load_farm_config

        farm = load_farm_config(config)
        if bot not in farm.bots:
            raise ConfigError(f"bot '{bot}' is not in bots", file=str(config))
        settings = farm.bots[bot]
        return farm.project_dir(bot), bot, list(settings.languages), settings.default_language, settings.action_endpoint
    return _project_languages(Path("."), Path.cwd().name)


def _project_languages(project: Path, name: str) -> tuple[Path, str, list[str], str, str | None]:
    from core.rasa.project import load_project

    loaded = load_project(project)
    languages = sorted({e.language for e in loaded.nlu.examples if e.language}) or [loaded.config.language]
    default = loaded.config.language if loaded.config.language in languages else languages[0]
    return project, name, languages, default, None


def _engine(project: Path | None, bot: str | None, config: Path, model_dir: Path | None):  # type: ignore[no-untyped-def]
    """The loaded engine; ``--actions`` is read from the running command's options."""
    from core.dialogue.engine import RasaEngine

    actions = _ACTIONS_MODE.get()
    try:
        path, name, languages, default, endpoint = _resolve(project, bot, config)
        return RasaEngine.load(path, bot=name, languages=languages, default_language=default, model_dir=model_dir,
                               action_endpoint=endpoint, actions=actions)
    except (DialogueError, ConfigError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@app.command()
@user_errors
def train(
    project: Path | None = ProjectOpt, bot: str | None = BotOpt, config: Path = ConfigOpt,
    model_dir: Path | None = ModelDirOpt,
    force: bool = typer.Option(False, "--force", help="Retrain even if the saved model is up to date."),
    actions: ActionsChoice = ActionsOpt,
) -> None:
    """Train the NLU model (skipped when the saved model matches the training data)."""
    from core.dialogue.engine import MODEL_DIR_NAME
    from core.rasa.project import load_project

    path, _, _, _, _ = _resolve(project, bot, config)
    if force:
        import shutil

        target = model_dir or load_project(path).root / MODEL_DIR_NAME
        shutil.rmtree(target, ignore_errors=True)
    started = time.perf_counter()
    engine = _engine(project, bot, config, model_dir)
    typer.echo(f"model nlu-{engine.nlu.fingerprint} ready in {time.perf_counter() - started:.1f}s "
               f"({len(engine.project.nlu.examples)} examples, {len(engine.nlu.classifier.labels) if engine.nlu.classifier else 0} intents)")


@test_app.command("nlu")
@user_errors
def test_nlu(
    nlu: Path | None = NluFileOpt,
    out: Path = NluOutOpt,
    project: Path | None = ProjectOpt, bot: str | None = BotOpt, config: Path = ConfigOpt,
    model_dir: Path | None = ModelDirOpt,
    actions: ActionsChoice = ActionsOpt,
) -> None:
    """Classify every example and write a Rasa-style intent report."""
    from core.dialogue.testing import evaluate_nlu, write_nlu_report
    from core.rasa.nlu_data import load_nlu_file

    engine = _engine(project, bot, config, model_dir)
    try:
        data = load_nlu_file(nlu) if nlu else engine.project.nlu
    except DialogueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    report = evaluate_nlu(engine, data)
    path = write_nlu_report(report, out)
    typer.echo(f"accuracy {report['accuracy']:.4f}, macro f1 {report['macro avg']['f1-score']:.4f}, "
               f"{len(report['misclassified'])} misclassified; report: {path}")


class StoryMode(str, Enum):
    text = "text"
    intent = "intent"


ModeOpt = typer.Option(StoryMode.text, "--mode", help="text: user texts go through the NLU (rasa test); "
                       "intent: the stories' intents are taken as given (rasa test core).")


@test_app.command("stories")
@user_errors
def test_stories(
    stories: Path | None = StoriesOpt,
    project: Path | None = ProjectOpt, bot: str | None = BotOpt, config: Path = ConfigOpt,
    model_dir: Path | None = ModelDirOpt,
    out: Path | None = StoriesOutOpt,
    mode: StoryMode = ModeOpt,
    fail_on_prediction_errors: bool = FailOnErrorsOpt,
    actions: ActionsChoice = ActionsOpt,
) -> None:
    """Run test stories as ``rasa test`` does; exit status 0 even if stories fail, unless --fail-on-prediction-errors."""
    from core.dialogue.story_eval import WrongPrediction
    from core.dialogue.story_report import story_yaml, write_story_results
    from core.dialogue.testing import run_test_stories
    from core.rasa.stories import load_story_file

    def fail(message: str) -> NoReturn:  # rasa test's user errors: one line, exit status 1
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(1)

    if stories is not None and not stories.exists():
        fail(f"{stories}: file not found")
    try:
        engine = _engine(project, bot, config, model_dir)
    except typer.Exit as exc:
        raise typer.Exit(1 if exc.exit_code else 0) from exc
    if stories is None:
        files = engine.project.test_files
    elif stories.is_dir():
        files = sorted(p for p in stories.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())
    else:
        files = [stories]
    blocks = []
    try:
        for file in files:
            blocks.extend(load_story_file(file, display=engine.project.display(file.resolve())).stories)
    except DialogueError as exc:
        fail(str(exc))
    if not blocks:
        fail("no test stories found" + (f" in {stories}" if stories else " in the project's tests/"))
    try:
        outcomes = run_test_stories(engine, blocks, mode="text" if mode is StoryMode.text else "intent",
                                    fail_on_prediction_errors=fail_on_prediction_errors)
    except WrongPrediction as exc:
        typer.echo(f"{exc}\nFailed story:\n\n{story_yaml(exc.outcome)}", err=True)
        raise typer.Exit(1) from exc
    for outcome in outcomes:
        typer.echo(f"{'PASS' if outcome.passed else 'FAIL'}  {outcome.name}")
        for failure in outcome.failures():
            typer.echo(f"      {failure}")
    failed = sum(not o.passed for o in outcomes)
    typer.echo(f"{len(outcomes) - failed} passed, {failed} failed")
    if out:
        report, failed_file = write_story_results(outcomes, out)
        typer.echo(f"report: {report}; failed stories: {failed_file}")


@app.command()
@user_errors
def shell(
    project: Path | None = ProjectOpt, bot: str | None = BotOpt, config: Path = ConfigOpt,
    model_dir: Path | None = ModelDirOpt,
    debug: bool = typer.Option(False, "--debug", help="Show intent, confidence and actions."),
    actions: ActionsChoice = ActionsOpt,
) -> None:
    """Chat with the bot in the terminal (``/restart`` starts over, Ctrl-D quits)."""
    from core.dialogue.testing import Conversator, actions_of

    engine = _engine(project, bot, config, model_dir)
    talk = Conversator(engine, "shell", channel="shell")

    async def loop() -> None:
        while True:
            try:
                text = input("you> ").strip()
            except EOFError:
                typer.echo("")
                return
            if not text:
                continue
            output = await talk.say(payload=text if text.startswith("/") else None, text=text)
            if debug and output.understanding:
                u = output.understanding
                typer.echo(f"  [{u.intent} {u.confidence:.2f}, {u.language}] {actions_of(output)}")
            for reply in output.replies:
                typer.echo(f"bot> {reply.text}")
                for number, button in enumerate(reply.buttons, 1):
                    typer.echo(f"     {number}. {button.title}  ({button.payload})")
            if output.handoff:
                typer.echo(f"  [handoff: {output.handoff.reason}]")
            if output.meta:
                typer.echo(f"  [{output.meta}]")

    asyncio.run(loop())


def main() -> None:  # pragma: no cover - console entry for standalone use
    app(prog_name="switchboard")


if __name__ == "__main__":  # pragma: no cover
    main()
