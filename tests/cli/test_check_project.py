"""`switchboard check --project DIR`: errors with file:line, warnings for what Rasa 3.6 accepts."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from core.cli import app

REPO = Path(__file__).resolve().parents[2]
MOODBOT = REPO / "tests" / "rasa_projects" / "moodbot"
runner = CliRunner()

RASA_DEFAULT_CONFIG = """\
recipe: default.v1
language: en
pipeline:
  - name: SpacyNLP
    model: en_core_web_md
  - name: SpacyTokenizer
  - name: SpacyFeaturizer
  - name: RegexFeaturizer
  - name: LexicalSyntacticFeaturizer
  - name: CountVectorsFeaturizer
  - name: DIETClassifier
    epochs: 100
  - name: SpacyEntityExtractor
    dimensions: [PERSON]
  - name: DucklingEntityExtractor
    url: http://localhost:8000
    dimensions: [time, number]
  - name: EntitySynonymMapper
  - name: ResponseSelector
    epochs: 100
  - name: LanguageModelFeaturizer
    model_name: bert
  - name: FallbackClassifier
    threshold: 0.3
policies:
  - name: MemoizationPolicy
  - name: RulePolicy
  - name: UnexpecTEDIntentPolicy
    max_history: 5
  - name: TEDPolicy
    max_history: 5
    epochs: 100
"""


def _moodbot(tmp_path: Path) -> Path:
    project = tmp_path / "bot"
    shutil.copytree(MOODBOT, project, ignore=shutil.ignore_patterns(".switchboard-models"))
    return project


def test_ted_duckling_and_spacy_are_each_named_with_what_happens_instead_and_check_passes(tmp_path: Path) -> None:
    project = _moodbot(tmp_path)
    (project / "config.yml").write_text(RASA_DEFAULT_CONFIG)
    result = runner.invoke(app, ["check", "--project", str(project)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()

    def said(line: int, name: str, *words: str) -> bool:
        return any(f"warning: config.yml:{line}: {name} " in out and all(w in out for w in words) for out in lines)

    assert said(4, "SpacyNLP", "not supported", "ignored")
    assert said(6, "SpacyTokenizer", "not supported")
    assert said(7, "SpacyFeaturizer", "no word vectors")
    assert said(11, "DIETClassifier", "linear intent classifier", "CRF-like entity extractor")
    assert said(13, "SpacyEntityExtractor", "PERSON", "not extracted")
    assert said(19, "ResponseSelector", "retrieval intents")
    assert said(21, "LanguageModelFeaturizer", "no pretrained language model")
    assert said(28, "UnexpecTEDIntentPolicy", "machine-learned dialogue policy")
    assert said(30, "TEDPolicy", "machine-learned dialogue policy")
    assert ("note: config.yml:15: DucklingEntityExtractor is supported: each message is sent to the Duckling server "
            "at http://localhost:8000 (time, number); when it is unreachable the turn goes on without Duckling "
            "entities and a warning is logged") in lines
    assert not any("RegexFeaturizer" in line or "RulePolicy" in line or "MemoizationPolicy" in line for line in lines)
    assert lines[-1] == f"project {project}: OK, 9 warning(s)"


def test_slot_mapping_naming_a_form_as_intent_is_a_warning_not_an_error(tmp_path: Path) -> None:
    project = _moodbot(tmp_path)
    domain = (project / "domain.yml").read_text().replace("responses:", (
        "slots:\n  mood:\n    type: text\n    mappings:\n    - type: from_text\n      intent: mood_form\n"
        "      conditions:\n      - active_loop: mood_form\n\nforms:\n  mood_form:\n    required_slots:\n    - mood\n\n"
        "responses:\n  utter_ask_mood:\n  - text: How do you feel?\n"))
    (project / "domain.yml").write_text(domain)
    result = runner.invoke(app, ["check", "--project", str(project)])
    assert result.exit_code == 0, result.output
    assert "warning: domain.yml:16: slot 'mood' mapping names intent 'mood_form', which is a form, not an intent" in result.output


def test_project_errors_name_file_and_line_and_exit_1(tmp_path: Path) -> None:
    project = _moodbot(tmp_path)
    (project / "domain.yml").write_text("intents:\n  - greet\nresponses:\n  utter_greet:\n  - text: \"Hey\n")
    result = runner.invoke(app, ["check", "--project", str(project)])
    assert result.exit_code == 1
    assert result.output.startswith("error: domain.yml:") and "invalid YAML" in result.output
    assert len(result.output.splitlines()) == 1


def test_project_and_config_together_check_both(tmp_path: Path) -> None:
    farm = tmp_path / "farm.yml"
    farm.write_text(f"bots:\n  mood:\n    project: {MOODBOT}\n")
    result = runner.invoke(app, ["check", "--project", str(MOODBOT), "--config", str(farm)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == f"{farm}: OK (1 bot(s): mood)"


def test_what_rasa_accepts_in_the_domain_is_a_warning(tmp_path: Path) -> None:
    project = _moodbot(tmp_path)
    domain = (project / "domain.yml").read_text().replace(
        '  utter_greet:\n  - text: "Hey! How are you?"\n', '  utter_greet:\n  - text: "Hey! How are you?"\n    delay: 2\n'
    ).replace("responses:", "slots:\n  tier:\n    type: categorical\n    mappings:\n    - type: custom\n\nresponses:")
    (project / "domain.yml").write_text(domain)
    result = runner.invoke(app, ["check", "--project", str(project)])
    assert result.exit_code == 0, result.output
    assert "warning: domain.yml:13: slot 'tier' is categorical but has no 'values'" in result.output
    assert "warning: domain.yml:20: response 'utter_greet': unknown key(s) ['delay'], ignored" in result.output
