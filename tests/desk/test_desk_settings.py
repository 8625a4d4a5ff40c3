"""``desk.<name>`` blocks of installed desks are checked by the desk that owns them, with their lines."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from core.cli import app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def errors_of(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error: ")]


def test_slack_desk_settings_are_checked_by_the_slack_desk_and_an_unknown_desk_is_named(tmp_path: Path) -> None:
    path = tmp_path / "farm.yml"
    path.write_text(
        "desk:\n"                                              # 1
        "  slack:\n"                                           # 2
        "    enabled: true\n"                                  # 3
        "    bot_tokn: xoxb-1\n"                               # 4
        "    agents: U1\n"                                     # 5
        "  teams: {enabled: true}\n"                           # 6
        "bots:\n"                                              # 7
        f"  demo: {{project: {REPO / 'config' / 'demo'}}}\n",  # 8
        encoding="utf-8")
    result = runner.invoke(app, ["check", "--config", str(path)])
    assert result.exit_code == 1, result.output
    assert errors_of(result.output) == [
        f"error: {path}:4: desk.slack.bot_tokn: Extra inputs are not permitted",
        f"error: {path}:5: desk.slack.agents: Input should be a valid list, not 'U1'",
        f"error: {path}:6: desk.teams: unknown desk 'teams' (installed: web, slack)",
    ]


def test_a_disabled_slack_block_needs_no_token(tmp_path: Path) -> None:
    path = tmp_path / "farm.yml"
    path.write_text(f"desk:\n  slack: {{enabled: false}}\nbots:\n  demo: {{project: {REPO / 'config' / 'demo'}}}\n",
                    encoding="utf-8")
    result = runner.invoke(app, ["check", "--config", str(path)])
    assert not errors_of(result.output), result.output
