"""farm.yml through `switchboard check`: every problem at once with file:line, closed sets enforced,
paths relative to the file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.cli import app

REPO = Path(__file__).resolve().parents[2]
MOODBOT = REPO / "tests" / "rasa_projects" / "moodbot"
runner = CliRunner()


def farm_file(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "farm.yml"
    path.write_text(body, encoding="utf-8")
    return path


def errors_of(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error: ")]


def test_every_problem_is_reported_at_once_each_with_its_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SB_TEST_UNSET", raising=False)
    broken = tmp_path / "broken"
    shutil.copytree(MOODBOT, broken, ignore=shutil.ignore_patterns(".switchboard-models"))
    rules = broken / "data" / "rules.yml"
    rules.write_text(rules.read_text(encoding="utf-8") + (
        "\n- rule: remembered\n  steps:\n  - intent: greet\n  - slot_was_set:\n    - mood: sad\n  - action: utter_greet\n"),
        encoding="utf-8")
    path = farm_file(tmp_path, (
        "log_level: verbose\n"                      # 1
        "server:\n"                                 # 2
        "  port: 99999\n"                           # 3
        "store:\n"                                  # 4
        "  kind: postgres\n"                        # 5
        "desk:\n"                                   # 6
        "  web:\n"                                  # 7
        "    agents:\n"                             # 8
        "      - id: anna\n"                        # 9
        "        name: Anna\n"                      # 10
        "bots:\n"                                   # 11
        "  mood:\n"                                 # 12
        f"    project: {MOODBOT}\n"                 # 13
        "    langauges: [en]\n"                     # 14
        "  broken:\n"                               # 15
        "    project: broken\n"                     # 16
        "  gone:\n"                                 # 17
        "    project: nowhere\n"                    # 18
        "    name: ${SB_TEST_UNSET}\n"              # 19
    ))
    result = runner.invoke(app, ["check", "--config", str(path)])
    assert result.exit_code == 1, result.output
    rules_line = len(rules.read_text(encoding="utf-8").splitlines()) - 1
    assert errors_of(result.output) == [
        f"error: {path}:1: log_level: Input should be 'debug', 'info', 'warning', 'error' or 'critical', not 'verbose'",
        f"error: {path}:3: server.port: Input should be less than or equal to 65535, not 99999",
        f"error: {path}:5: store.kind: Input should be 'sqlite' or 'mongodb', not 'postgres'",
        f"error: {path}:9: desk.web.agents[0].password_hash: Field required",
        f"error: {path}:14: bots.mood.langauges: Extra inputs are not permitted",
        f"error: {path}:18: bots.gone.project: project directory {tmp_path / 'nowhere'} not found",
        f"error: {path}:19: bots.gone.name: environment variable SB_TEST_UNSET is not set",
        f"error: bots.broken: data/rules.yml:{rules_line}: slot 'mood' is not in domain.yml slots",
    ]
    assert result.output.splitlines()[-1] == "8 errors"


def test_channel_settings_are_checked_by_their_adapter_before_anything_starts(tmp_path: Path) -> None:
    path = farm_file(tmp_path, (
        "bots:\n"                                            # 1
        "  mood:\n"                                          # 2
        f"    project: {MOODBOT}\n"                          # 3
        "    channels:\n"                                    # 4
        "      webchat: {titel: Support}\n"                  # 5
        "      telegram:\n"                                  # 6
        "        tokn: '123:abc'\n"                          # 7
        "      whatsapp: {enabled: false, tokn: x}\n"        # 8: switched off, as `run` skips it
        "      fax: {}\n"                                    # 9
    ))
    result = runner.invoke(app, ["check", "--config", str(path)])
    assert result.exit_code == 1, result.output
    *found, unknown = errors_of(result.output)
    assert found == [
        f"error: {path}:5: bots.mood.channels.webchat.titel: Extra inputs are not permitted",
        f"error: {path}:6: bots.mood.channels.telegram.token: Field required",
        f"error: {path}:7: bots.mood.channels.telegram.tokn: Extra inputs are not permitted",
    ]
    assert unknown.startswith(f"error: {path}:9: bots.mood.channels.fax: unknown channel 'fax' (installed: ")
    assert "telegram" in unknown and "webchat" in unknown


@pytest.mark.parametrize(("line", "key", "allowed"), [
    ("log_level: verbose", "log_level", "'debug', 'info', 'warning', 'error' or 'critical'"),
    ("log_format: xml", "log_format", "'console' or 'json'"),
    ("store: {kind: postgres}", "store.kind", "'sqlite' or 'mongodb'"),
    ("bots: {mood: {project: MOODBOT, actions: remote}}", "bots.mood.actions", "'auto', 'in-process' or 'endpoint'"),
])
def test_a_value_outside_a_closed_set_is_rejected_with_the_allowed_values(
    tmp_path: Path, line: str, key: str, allowed: str,
) -> None:
    body = line.replace("MOODBOT", str(MOODBOT)) + "\n"
    if not line.startswith("bots:"):
        body += f"bots:\n  mood:\n    project: {MOODBOT}\n"
    path = farm_file(tmp_path, body)
    result = runner.invoke(app, ["check", "--config", str(path)])
    assert result.exit_code == 1, result.output
    given = line.rsplit(" ", 1)[-1].strip("{}")
    assert errors_of(result.output) == [f"error: {path}:1: {key}: Input should be {allowed}, not '{given}'"]


def test_log_level_in_capitals_is_accepted(tmp_path: Path) -> None:
    path = farm_file(tmp_path, f"log_level: DEBUG\nbots:\n  mood:\n    project: {MOODBOT}\n")
    result = runner.invoke(app, ["check", "--config", str(path)])
    assert result.exit_code == 0, result.output


def test_a_duplicate_key_is_an_error_with_its_line(tmp_path: Path) -> None:
    path = farm_file(tmp_path, f"bots:\n  mood:\n    project: {MOODBOT}\nlog_level: info\nlog_level: debug\n")
    result = runner.invoke(app, ["check", "--config", str(path)])
    assert result.exit_code == 1
    assert errors_of(result.output) == [f"error: {path}:5: duplicate key 'log_level'"]


def test_a_missing_farm_yml_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", "--config", str(tmp_path / "nope.yml")])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {tmp_path / 'nope.yml'}: file not found"


def test_the_same_config_from_another_working_directory_opens_the_same_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    config_dir = tmp_path / "deploy" / "config"
    path = farm_file(config_dir, "store:\n  path: ../data/farm.db\nbots:\n  mood:\n    project: mood\n")
    shutil.copytree(MOODBOT, config_dir / "mood", ignore=shutil.ignore_patterns(".switchboard-models"))
    database = tmp_path / "deploy" / "data" / "farm.db"
    runs = [(tmp_path / "somewhere", str(path)), (config_dir, "farm.yml"), (database.parent / "x", "../../config/farm.yml")]
    for cwd, config in runs:
        cwd.mkdir(parents=True, exist_ok=True)
        monkeypatch.chdir(cwd)
        result = runner.invoke(app, ["export", "--contact", "ct_nobody", "--config", config])
        assert result.exit_code == 0, result.output
        assert sorted(tmp_path.rglob("*.db")) == [database]
    monkeypatch.chdir(config_dir)
    result = runner.invoke(app, ["check", "--config", "farm.yml"])
    assert result.exit_code == 0, result.output


def test_the_shipped_farm_yml_keeps_the_database_in_the_repositorys_data_folder() -> None:
    from core.config import load_farm_config

    config = load_farm_config(REPO / "config" / "farm.yml")
    assert Path(config.store.path) == REPO / "data" / "switchboard.db"


@pytest.mark.parametrize("command", ["check", "run"])
def test_without_config_outside_the_repository_the_error_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SWITCHBOARD_CONFIG", raising=False)
    result = runner.invoke(app, [command])
    assert result.exit_code == 2
    assert result.output.strip().endswith(
        "config/farm.yml: file not found — run from the folder that holds config/, or pass --config FILE")
