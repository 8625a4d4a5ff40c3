"""``switchboard test stories`` with ``rasa test`` semantics, through the CLI (and the gold-event builder)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.dialogue.story_eval import gold_events, slots_for_entities, story_paths
from core.rasa.nlu_data import EntitySpan
from core.rasa.project import load_project
from core.rasa.stories import load_story_file
from core.rasa_cli import app

ROOT = Path(__file__).parents[2]
CORPUS = ROOT / "tests" / "rasa_projects"
MOODBOT = CORPUS / "moodbot"
FORMS = CORPUS / "forms_unhappy"
runner = CliRunner()

WRONG_THEN_RIGHT = """\
stories:
- story: wrong answer, then a right one
  steps:
  - user: |
      hello there!
    intent: greet
  - action: utter_goodbye
  - user: |
      are you a bot?
    intent: bot_challenge
  - action: utter_iamabot
"""

MISREAD = """\
stories:
- story: the text says goodbye, the story says greet
  steps:
  - user: |
      bye bye
    intent: greet
  - action: utter_greet
"""

SKIPS_THE_FORM = """\
stories:
- story: the form's questions are skipped over
  steps:
  - user: |
      book a table please
    intent: book_table
  - action: booking_form
  - active_loop: booking_form
  - user: |
      are you open on sunday
    intent: ask_hours
  - action: utter_hours
  - action: booking_form
  - slot_was_set:
    - cuisine: thai
  - slot_was_set:
    - party_size: "2"
  - active_loop: null
  - action: utter_booked
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("story-eval-models")


def _stories(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "test_stories.yml"
    path.write_text(text)
    return path


def _test(project: Path, models: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["test", "stories", "--project", str(project), "--model-dir", str(models / project.name), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_story_that_skips_over_a_form_passes_because_its_own_events_are_applied(tmp_path: Path, models: Path) -> None:
    code, output = _test(FORMS, models, "--stories", str(_stories(tmp_path, SKIPS_THE_FORM)), "--fail-on-prediction-errors")
    assert code == 0, output
    assert "PASS  the form's questions are skipped over" in output and "1 passed, 0 failed" in output


def test_wrong_action_is_written_with_the_prediction_as_a_comment_and_the_run_goes_on(tmp_path: Path, models: Path) -> None:
    out = tmp_path / "results"
    code, output = _test(MOODBOT, models, "--stories", str(_stories(tmp_path, WRONG_THEN_RIGHT)), "--out", str(out))
    assert code == 0, output  # rasa test exits 0 when stories fail
    assert "FAIL  wrong answer, then a right one" in output and "0 passed, 1 failed" in output
    assert "predicted 'utter_greet'" in output and "the story has 'utter_goodbye'" in output
    failed = (out / "failed_test_stories.yml").read_text()
    head, steps = failed.split("\n  steps:\n")
    assert head.startswith('version: "3.1"\nstories:\n- story: wrong answer, then a right one (') and head.endswith("test_stories.yml)")
    assert steps == (  # the story's own action is applied after the mistake: the rest is predicted right, no comment
        "  - intent: greet\n"
        "  - action: utter_goodbye  # predicted: utter_greet\n"
        "  - intent: bot_challenge\n"
        "  - action: utter_iamabot\n"
    )
    report = json.loads((out / "story_report.json").read_text())
    assert report["utter_goodbye"] == {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 1}
    assert report["utter_iamabot"]["recall"] == 1.0
    assert report["action_listen"] == {"precision": 1.0, "recall": 1.0, "f1-score": 1.0, "support": 2}
    assert {"accuracy", "micro avg", "macro avg", "weighted avg"} <= set(report)
    assert report["conversation_accuracy"] == {"accuracy": 0.0, "correct": 0, "with_warnings": 0, "total": 1}


def test_fail_on_prediction_errors_stops_at_the_first_mistake_with_exit_status_1(tmp_path: Path, models: Path) -> None:
    out = tmp_path / "results"
    code, output = _test(MOODBOT, models, "--stories", str(_stories(tmp_path, WRONG_THEN_RIGHT)), "--out", str(out),
                         "--fail-on-prediction-errors")
    assert code == 1
    assert "wrong action" in output and "  - action: utter_goodbye  # predicted: utter_greet" in output
    assert "utter_iamabot" not in output and "Traceback" not in output
    assert not out.exists()  # like Rasa, nothing is written when the test is stopped


def test_text_mode_compares_the_intent_and_intent_mode_takes_the_story_intent(tmp_path: Path, models: Path) -> None:
    stories, out = _stories(tmp_path, MISREAD), tmp_path / "results"
    code, output = _test(MOODBOT, models, "--stories", str(stories), "--out", str(out))
    assert code == 0 and "'bye bye' was understood as 'goodbye', the story has 'greet'" in output
    failed = (out / "failed_test_stories.yml").read_text()
    assert "  - intent: greet  # predicted: goodbye: bye bye\n  - action: utter_greet\n" in failed
    report = json.loads((out / "story_report.json").read_text())
    assert report["greet"]["recall"] == 0.0  # intents are part of the text-mode report
    code, output = _test(MOODBOT, models, "--stories", str(stories), "--mode", "intent", "--out", str(out))
    assert code == 0 and "1 passed, 0 failed" in output
    assert (out / "failed_test_stories.yml").read_text() == "# None of the test stories failed - all good!"
    assert "greet" not in json.loads((out / "story_report.json").read_text())  # only actions in intent mode


@pytest.mark.parametrize("args", [
    ["--stories", "/no/such/stories.yml"],
    ["--stories", "{tmp}/empty.yml"],
])
def test_user_errors_are_one_line_and_exit_status_1(args: list[str], tmp_path: Path, models: Path) -> None:
    (tmp_path / "empty.yml").write_text("stories: []\n")
    code, output = _test(MOODBOT, models, *[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert code == 1
    assert output.startswith("error: ") and len(output.strip().splitlines()) == 1 and "Traceback" not in output


def test_unknown_mode_is_a_usage_error_with_exit_status_2_as_with_rasas_argparse(models: Path) -> None:
    code, output = _test(MOODBOT, models, "--mode", "e2e")
    assert code == 2 and "Invalid value for '--mode'" in output and "Traceback" not in output


def test_missing_project_is_a_one_line_error() -> None:
    result = runner.invoke(app, ["test", "stories", "--project", "/no/such/project"])
    assert result.exit_code == 1 and "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_gold_events_have_rasas_implicit_listens_and_entity_slots() -> None:
    project = load_project(CORPUS / "entity_roles")
    story = load_story_file(CORPUS / "entity_roles" / "tests" / "test_stories.yml").stories[1]
    events, _ = gold_events(project.domain, story_paths(story)[0])
    kinds = [(e.kind, e.name) for e in events]
    assert kinds[:4] == [("action", "action_listen"), ("user", "book_flight"), ("slot", "destination"), ("slot", "destination")]
    assert kinds[-1] == ("action", "action_listen") and kinds.count(("action", "action_listen")) == 3
    spans = (EntitySpan("city", 5, 11, "Berlin", "Berlin", role="departure"), EntitySpan("city", 15, 21, "London", "London"))
    assert slots_for_entities(project.domain, spans) == [("origin", "Berlin")]  # a city without a role fills neither slot


def test_slot_named_without_a_value_gets_rasas_default(tmp_path: Path) -> None:
    path = _stories(tmp_path, "stories:\n- story: s\n  steps:\n  - intent: greet\n  - slot_was_set:\n    - cuisine\n  - action: utter_greet\n")
    events, _ = gold_events(load_project(FORMS).domain, load_story_file(path).stories[0].steps)
    assert [(e.name, e.value) for e in events if e.kind == "slot"] == [("cuisine", "filled")]


def test_or_step_makes_one_conversation_per_alternative() -> None:
    stories = load_story_file(CORPUS / "checkpoints_or" / "tests" / "test_stories.yml").stories
    assert [len(story_paths(s)) for s in stories] == [1, 1, 2, 1]


def test_bot_text_step_is_predicted_like_an_action_as_rasa_does(tmp_path: Path, models: Path) -> None:
    # Rasa 3.6 fails this story the same way: `bot:` is an end-to-end action its policies must predict.
    stories = _stories(tmp_path, "stories:\n- story: bot text\n  steps:\n  - user: |\n      hello there!\n    intent: greet\n"
                                 "  - bot: Hey! How are you?\n  - user: |\n      are you a bot?\n    intent: bot_challenge\n"
                                 "  - action: utter_iamabot\n")
    out = tmp_path / "results"
    code, output = _test(MOODBOT, models, "--stories", str(stories), "--mode", "intent", "--out", str(out))
    assert code == 0 and "predicted 'utter_greet'" in output and "the story has 'Hey! How are you?'" in output
    steps = (out / "failed_test_stories.yml").read_text().split("\n  steps:\n")[1]
    assert steps == ("  - intent: greet\n  - bot: Hey! How are you?  # predicted: utter_greet\n"
                     "  - intent: bot_challenge\n  - action: utter_iamabot\n")
