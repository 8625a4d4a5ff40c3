"""Exit status as `switchboard --help` documents it, for every command's failure path:
0 success; 1 a failure that is no mistake in the command line or configuration (errors found,
a failing story, an unknown contact, an unreachable store, a busy port); 2 a usage or configuration error."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core import logging as sb_logging
from core.cli import app

REPO = Path(__file__).resolve().parents[2]
MOODBOT = REPO / "tests" / "rasa_projects" / "moodbot"
COMMAND = [sys.executable, "-c", "from core.cli import main; main()"]  # what the `switchboard` script runs
runner = CliRunner()

@pytest.fixture(autouse=True)
def _logging_back_on_real_stderr() -> Iterator[None]:
    """``run`` configures logging onto the runner's captured stderr, which closes after the call."""
    yield
    sb_logging.configure("warning")


COMMANDS = ["run", "check", "hash-password", "train", "shell", "export", "forget", "unlink", "bench", "test"]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("exits")
    failing = base / "failing"
    shutil.copytree(MOODBOT, failing, ignore=shutil.ignore_patterns(".switchboard-models"))
    (failing / "tests" / "test_stories.yml").write_text(
        "stories:\n- story: wrong answer\n  steps:\n  - user: hello there!\n    intent: greet\n  - action: utter_goodbye\n",
        encoding="utf-8")
    farm = base / "farm.yml"
    farm.write_text(f"store:\n  path: farm.db\nbots:\n  mood:\n    project: {MOODBOT}\n", encoding="utf-8")
    unreachable = base / "unreachable.yml"  # a MongoDB port nothing listens on
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"mongodb://127.0.0.1:{sock.getsockname()[1]}/?serverSelectionTimeoutMS=300"
    unreachable.write_text(f"store:\n  kind: mongodb\n  url: '{url}'\nbots:\n  mood:\n    project: {MOODBOT}\n",
                           encoding="utf-8")
    invalid = base / "invalid.yml"
    invalid.write_text(f"log_level: verbose\nbots:\n  mood:\n    project: {MOODBOT}\n", encoding="utf-8")
    return {"failing": failing, "farm": farm, "invalid": invalid, "missing": base / "missing", "unreachable": unreachable}


# (arguments, standard input, exit status)
CASES: list[tuple[list[str], str | None, int]] = [
    (["run", "--config", "{invalid}"], None, 2),
    (["run", "--config", "{missing}"], None, 2),
    (["run", "--config", "{unreachable}", "--port", "0"], None, 1),
    (["run", "--config", "{farm}", "--host", "192.0.2.1", "--port", "0"], None, 2),
    (["check", "--config", "{invalid}"], None, 1),
    (["check", "--project", "{failing}"], None, 0),  # failing stories are not the check's business
    (["check", "--config", "{missing}"], None, 2),
    (["check", "--project", "{missing}"], None, 2),
    (["train", "--project", "{missing}"], None, 2),
    (["train", "--bot", "mood", "--config", "{invalid}"], None, 2),
    (["test", "nlu", "--project", "{missing}"], None, 2),
    # test stories keeps `rasa test`'s statuses, as `switchboard test --help` says
    (["test", "stories", "--project", "{failing}"], None, 0),
    (["test", "stories", "--project", "{failing}", "--fail-on-prediction-errors"], None, 1),
    (["test", "stories", "--project", "{missing}"], None, 1),
    (["test", "stories", "--project", "{failing}", "--mode", "nonsense"], None, 2),
    (["shell", "--project", "{missing}"], None, 2),
    (["export", "--contact", "ct_x", "--config", "{invalid}"], None, 2),
    (["export", "--contact", "ct_x", "--config", "{unreachable}"], None, 1),
    (["forget", "--contact", "ct_nobody", "--config", "{farm}", "--yes"], None, 1),
    (["forget", "--contact", "ct_nobody", "--config", "{farm}"], "n\n", 1),
    (["forget", "--contact", "ct_x", "--config", "{invalid}", "--yes"], None, 2),
    (["forget", "--contact", "ct_x", "--config", "{unreachable}", "--yes"], None, 1),
    (["unlink", "--contact", "ct_nobody", "--channel", "telegram", "--config", "{farm}"], None, 1),
    (["unlink", "--contact", "ct_x", "--channel", "telegram", "--config", "{invalid}"], None, 2),  # through main()
    (["unlink", "--contact", "ct_x", "--channel", "telegram", "--config", "{unreachable}"], None, 1),  # through main()
    (["hash-password"], "a\nb\n", 1),
    (["bench", "--duration", "soon"], None, 2),
]


@pytest.mark.parametrize(("args", "stdin", "status"), CASES, ids=[" ".join(a[:2]) + f" #{i}" for i, (a, _, _) in enumerate(CASES)])
def test_each_failure_exits_with_the_documented_status(
    files: dict[str, Path], args: list[str], stdin: str | None, status: int, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(files["farm"].parent)
    result = runner.invoke(app, [a.format(**files) for a in args], input=stdin)
    if not isinstance(result.exception, SystemExit):  # a SwitchboardError left to the console script's main()
        done = subprocess.run([*COMMAND, *(a.format(**files) for a in args)], input=stdin or "", capture_output=True,
                              text=True, timeout=300, check=False, cwd=files["farm"].parent)
        assert done.returncode == status, done.stderr
        assert "Traceback" not in done.stderr
        return
    assert result.exit_code == status, result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unknown_option_is_a_usage_error(command: str) -> None:
    result = runner.invoke(app, [command, "--no-such-option"])
    assert result.exit_code == 2


def test_the_help_states_the_convention() -> None:
    result = runner.invoke(app, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "0 success; 1 a failure that is not a mistake in the command line or the configuration" in text
    assert "2 a usage or configuration error" in text


@pytest.mark.parametrize("command", COMMANDS)
def test_every_commands_help_names_its_exit_statuses(command: str) -> None:
    result = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "Exit status: " in " ".join(result.output.split())


def test_switchboard_config_names_the_farm_for_bot_commands(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["train", "--bot", "nope"], env={"SWITCHBOARD_CONFIG": str(files["farm"])})
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {files['farm']}: bot 'nope' is not in bots"
