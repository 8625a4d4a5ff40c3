"""A user's mistake is one clear line and a non-zero exit, never a traceback, in every command."""

from __future__ import annotations

import shutil
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
runner = CliRunner()


@pytest.fixture(autouse=True)
def _logging_back_on_real_stderr() -> Iterator[None]:
    """``run`` configures logging onto the runner's captured stderr, which closes after the call."""
    yield
    sb_logging.configure("warning")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("mistakes")
    bad = base / "bad"
    shutil.copytree(MOODBOT, bad, ignore=shutil.ignore_patterns(".switchboard-models"))
    (bad / "domain.yml").write_text("intents:\n  - greet\nresponses: [\n")
    bad_config = base / "bad_config"
    shutil.copytree(MOODBOT, bad_config, ignore=shutil.ignore_patterns(".switchboard-models"))
    (bad_config / "config.yml").write_text("language: en\npolicies:\n  - name: RulePolicy\n    core_fallback_threshold: high\n")
    no_domain = base / "no_domain"
    no_domain.mkdir()
    bad_farm = base / "bad_farm.yml"
    bad_farm.write_text("bots:\n  x: [\n")
    farm = base / "farm.yml"
    farm.write_text(f"store:\n  path: {base / 'sb.db'}\nbots:\n  bad:\n    project: {bad}\n")
    bad_nlu = base / "nlu.yml"
    bad_nlu.write_text("nlu:\n- intent: x\n  examples: |\n    - a\n   - [b\n")
    return {"bad": bad, "bad_config": bad_config, "no_domain": no_domain, "bad_farm": bad_farm, "farm": farm,
            "bad_nlu": bad_nlu, "missing": base / "missing"}


CASES = [
    (["train", "--project", "{missing}"], "{missing}: project directory not found"),
    (["test", "nlu", "--project", "{missing}"], "{missing}: project directory not found"),
    (["test", "stories", "--project", "{missing}"], "{missing}: project directory not found"),
    (["shell", "--project", "{missing}"], "{missing}: project directory not found"),
    (["check", "--project", "{missing}"], "{missing}: project directory not found"),
    (["train", "--project", "{no_domain}"], "no domain.yml in the project"),
    (["train", "--project", "{bad}"], "domain.yml:4: invalid YAML"),
    (["test", "stories", "--project", "{bad}"], "domain.yml:4: invalid YAML"),
    (["shell", "--project", "{bad}"], "domain.yml:4: invalid YAML"),
    (["check", "--project", "{bad}"], "domain.yml:4: invalid YAML"),
    (["train", "--project", "{bad_config}"], "config.yml:4: RulePolicy: 'core_fallback_threshold' must be a number, not 'high'"),
    (["train", "--bot", "x", "--config", "{bad_farm}"], "{bad_farm}:3: invalid YAML"),
    (["shell", "--bot", "nope", "--config", "{farm}"], "{farm}: bot 'nope' is not in bots"),
    (["test", "nlu", "--bot", "x", "--config", "{missing}"], "{missing}: file not found"),
    (["test", "nlu", "--project", str(MOODBOT), "--nlu", "{missing}"], "{missing}: file not found"),
    (["test", "nlu", "--project", str(MOODBOT), "--nlu", "{bad_nlu}"], "{bad_nlu}:5: invalid YAML"),
    (["test", "stories", "--project", str(MOODBOT), "--stories", "{missing}"], "{missing}: file not found"),
    (["check", "--config", "{bad_farm}"], "{bad_farm}:3: invalid YAML"),
    (["run", "--config", "{bad_farm}"], "{bad_farm}:3: invalid YAML"),
    (["run", "--config", "{farm}", "--port", "0"], "cannot start: bots.bad ({bad}): domain.yml:4: invalid YAML"),
]


@pytest.mark.parametrize(("args", "expected"), CASES, ids=[" ".join(a[:2]) + f" #{i}" for i, (a, _) in enumerate(CASES)])
def test_a_users_mistake_is_one_clear_line(files: dict[str, Path], args: list[str], expected: str) -> None:
    result = runner.invoke(app, [a.format(**files) for a in args])
    assert isinstance(result.exception, SystemExit), result.exception  # not an uncaught exception
    assert result.exit_code in (1, 2)
    assert expected.format(**files) in result.output
    problem_lines = [line for line in result.output.splitlines() if "[info" not in line and "[warning" not in line]
    assert len(problem_lines) == 1, result.output


def test_the_installed_command_prints_no_traceback_for_a_missing_project(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", "from core.cli import main; main()", "train", "--project", str(tmp_path / "nope")],
                          check=False, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {tmp_path / 'nope'}: project directory not found"
    assert done.stdout == ""
