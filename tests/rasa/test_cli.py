"""``train``, ``test nlu``, ``test stories`` and ``shell`` on plain Rasa projects."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.rasa_cli import app

ROOT = Path(__file__).parents[2]
MOODBOT = ROOT / "tests" / "rasa_projects" / "moodbot"
runner = CliRunner()


def test_moodbot_from_rasa_init_passes_all_its_test_stories() -> None:
    result = runner.invoke(app, ["test", "stories", "--project", str(MOODBOT)])
    assert result.exit_code == 0, result.output
    assert "7 passed, 0 failed" in result.output


@pytest.mark.parametrize("mode", ["text", "intent"])
def test_demo_bot_passes_its_test_stories_in_both_modes(mode: str) -> None:
    result = runner.invoke(app, ["test", "stories", "--project", str(ROOT / "config" / "demo"), "--mode", mode,
                                 "--fail-on-prediction-errors"])
    assert result.exit_code == 0, result.output
    assert "0 failed" in result.output


def test_nlu_report_has_rasa_keys_and_misclassified_examples(tmp_path: Path) -> None:
    data = tmp_path / "nlu_test.yml"
    data.write_text(
        'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hello friend\n    - good morning to you\n'
        "- intent: goodbye\n  examples: |\n    - see you tomorrow\n    - I am sad\n"
    )
    out = tmp_path / "results"
    result = runner.invoke(app, ["test", "nlu", "--project", str(MOODBOT), "--nlu", str(data), "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "intent_report.json").read_text())
    assert {"accuracy", "macro avg", "weighted avg", "greet", "goodbye"} <= set(report)
    assert {"precision", "recall", "f1-score", "support"} <= set(report["greet"])
    assert report["greet"]["support"] == 2
    wrong = [e for e in report["misclassified"] if e["text"] == "I am sad"]
    assert wrong and wrong[0]["intent"] == "goodbye" and wrong[0]["intent_prediction"]["name"] == "mood_unhappy"
    assert (out / "intent_errors.json").is_file()


def test_train_reuses_the_saved_model(tmp_path: Path) -> None:
    project = tmp_path / "bot"
    shutil.copytree(MOODBOT, project, ignore=shutil.ignore_patterns(".switchboard-models"))
    first = runner.invoke(app, ["train", "--project", str(project)])
    assert first.exit_code == 0, first.output
    models = list((project / ".switchboard-models").glob("nlu-*"))
    assert len(models) == 1
    again = runner.invoke(app, ["train", "--project", str(project)])
    assert again.exit_code == 0 and list((project / ".switchboard-models").glob("nlu-*")) == models


def test_invalid_project_exits_with_file_and_line(tmp_path: Path) -> None:
    project = tmp_path / "bot"
    shutil.copytree(MOODBOT, project, ignore=shutil.ignore_patterns(".switchboard-models"))
    (project / "data" / "rules.yml").write_text(
        "rules:\n- rule: x\n  steps:\n  - intent: greet\n  - slot_was_set:\n    - nope: 1\n  - action: utter_greet\n")
    result = runner.invoke(app, ["train", "--project", str(project)])
    assert result.exit_code == 2
    assert "data/rules.yml:6: slot 'nope' is not in domain.yml slots" in result.output
    assert "Traceback" not in result.output


def test_shell_answers_typed_messages() -> None:
    result = runner.invoke(app, ["shell", "--project", str(MOODBOT), "--debug"], input="hello\nare you a bot?\n")
    assert result.exit_code == 0, result.output
    assert "bot> Hey! How are you?" in result.output and "bot> I am a bot, powered by Rasa." in result.output
