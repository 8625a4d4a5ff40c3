"""The compatibility corpus: every Rasa 3 project in tests/rasa_projects/ passes its own test
stories through ``switchboard test stories``, in text and in intent mode (each project is
trained once per session into a temporary model directory).

Rasa 3.6 passes every one of these stories too (``python -m bench.rasa_oracle``).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.rasa_cli import app
from tests.support.action_server import rasa_sdk_server

ROOT = Path(__file__).parents[2]
CORPUS = ROOT / "tests" / "rasa_projects"
PROJECTS = sorted(p.name for p in CORPUS.iterdir() if (p / "domain.yml").is_file())
runner = CliRunner()


@pytest.fixture(scope="session")
def corpus_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corpus-models")


def test_the_corpus_covers_every_feature_class() -> None:
    assert {"forms_unhappy", "fragments", "checkpoints_or", "slot_branches", "entity_roles",
            "response_conditions", "actions_package", "action_server"} <= set(PROJECTS)


@pytest.mark.parametrize("mode", ["text", "intent"])
@pytest.mark.parametrize("name", PROJECTS)
def test_corpus_project_passes_its_own_test_stories(name: str, mode: str, corpus_models: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    result = runner.invoke(app, [
        "test", "stories", "--project", str(CORPUS / name), "--mode", mode, "--model-dir", str(corpus_models / name),
        "--out", str(out),
    ])
    assert result.exit_code == 0, result.output
    assert " 0 failed" in result.output, result.output
    report = json.loads((out / "story_report.json").read_text())
    assert report["conversation_accuracy"]["accuracy"] == 1.0, result.output
    assert (out / "failed_test_stories.yml").read_text().startswith("# None of the test stories failed")


@pytest.fixture(scope="module")
def stock_action_server() -> Iterator[str]:
    """``python -m rasa_sdk --actions actions`` in the action_server project, as a Rasa user starts it."""
    project = CORPUS / "action_server"
    with rasa_sdk_server(project, ["-m", "rasa_sdk", "--actions", "actions", "--port", "{port}"], pythonpath=project) as url:
        yield url


def test_endpoints_yml_project_runs_its_actions_on_the_action_server(stock_action_server: str, tmp_path: Path, corpus_models: Path) -> None:
    # The copy has no actions/ package at all: only the server can answer.
    project = tmp_path / "action_server"
    shutil.copytree(CORPUS / "action_server", project, ignore=shutil.ignore_patterns("actions", ".switchboard-models"))
    (project / "endpoints.yml").write_text(f'action_endpoint:\n  url: "{stock_action_server}"\n')
    result = runner.invoke(app, ["shell", "--project", str(project), "--model-dir", str(corpus_models / "action_server")],
                           input="is the toaster available\ndo you still have mixers\n")
    assert result.exit_code == 0, result.output
    assert "bot> Good news: toaster is in stock." in result.output
    assert "bot> Sorry, mixers is sold out. Shall I tell you when it is back?" in result.output
