"""`switchboard check`: validates farm.yml and every bot project with precise messages."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.cli import app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def farm_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "farm.yml"
    path.write_text(body, encoding="utf-8")
    return path


def test_shipped_configuration_is_valid() -> None:
    result = runner.invoke(app, ["check", "--config", str(REPO / "config" / "farm.yml")])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output and "demo" in result.output


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = farm_file(tmp_path, f"bots:\n  demo:\n    project: {REPO / 'config' / 'demo'}\n    langauges: [de]\n")
    result = runner.invoke(app, ["check", "--config", str(path)])
    assert result.exit_code == 2
    assert f"{path}:bots.demo.langauges" in result.output and "Extra inputs are not permitted" in result.output


def test_missing_environment_variable_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SB_TEST_TOKEN", raising=False)
    path = farm_file(tmp_path, f"bots:\n  demo:\n    project: {REPO / 'config' / 'demo'}\n"
                               "    channels:\n      telegram:\n        token: ${SB_TEST_TOKEN}\n")
    result = runner.invoke(app, ["check", "--config", str(path)])
    assert result.exit_code == 2
    assert "bots.demo.channels.telegram.token" in result.output and "SB_TEST_TOKEN is not set" in result.output


def test_malformed_yaml_reports_the_line(tmp_path: Path) -> None:
    path = farm_file(tmp_path, "bots:\n  demo:\n    project: [unclosed\n")
    result = runner.invoke(app, ["check", "--config", str(path)])
    assert result.exit_code == 2
    assert str(path) in result.output and "line 4" in result.output


def test_rule_with_an_intent_missing_from_the_domain_is_a_warning_with_file_and_line(tmp_path: Path) -> None:
    project = tmp_path / "bot"
    shutil.copytree(REPO / "config" / "demo", project, ignore=shutil.ignore_patterns(".switchboard-models"))
    (project / "config.yml").write_text((project / "config.yml").read_text(encoding="utf-8").replace(
        "actions: ../../actions", f"actions: {REPO / 'actions'}"), encoding="utf-8")
    rules = project / "data" / "rules.yml"
    rules.write_text(rules.read_text(encoding="utf-8") + (
        "\n- rule: pizza\n  steps:\n  - intent: order_pizza\n  - action: utter_greet\n"), encoding="utf-8")
    path = farm_file(tmp_path, f"bots:\n  demo:\n    project: {project}\n")
    result = runner.invoke(app, ["check", "--config", str(path)])
    assert result.exit_code == 0, result.output  # Rasa 3.6 trains with a warning too
    line = len(rules.read_text(encoding="utf-8").splitlines()) - 1
    assert f"warning: data/rules.yml:{line}: intent 'order_pizza' is not in domain.yml intents" in result.output


def test_story_slot_missing_from_the_domain_fails_with_file_and_line(tmp_path: Path) -> None:
    project = tmp_path / "bot"
    shutil.copytree(REPO / "tests" / "rasa_projects" / "moodbot", project, ignore=shutil.ignore_patterns(".switchboard-models"))
    rules = project / "data" / "rules.yml"
    rules.write_text(rules.read_text(encoding="utf-8") + (
        "\n- rule: remembered\n  steps:\n  - intent: greet\n  - slot_was_set:\n    - mood: sad\n  - action: utter_greet\n"),
        encoding="utf-8")
    result = runner.invoke(app, ["check", "--project", str(project)])
    assert result.exit_code == 1
    line = len(rules.read_text(encoding="utf-8").splitlines()) - 1
    assert f"error: data/rules.yml:{line}: slot 'mood' is not in domain.yml slots" in result.output
