"""Rasa 3.x file loading: annotations, synonyms, regexes, lookups, and file:line errors."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.rasa.domain import parse_domain
from core.rasa.nlu_data import load_nlu_file, parse_annotated
from core.rasa.project import load_project
from core.rasa.stories import ANY_VALUE, load_story_file
from core.rasa.validate import review_project, validate_project
from core.rasa.yamlio import RasaFileError, parse_yaml

MOODBOT = Path(__file__).parents[1] / "rasa_projects" / "moodbot"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def test_round_bracket_annotation_becomes_plain_text_and_span() -> None:
    text, spans = parse_annotated("I live in [Berlin](city) now")
    assert text == "I live in Berlin now"
    assert spans[0].entity == "city" and text[spans[0].start:spans[0].end] == "Berlin" and spans[0].value == "Berlin"


def test_json_annotation_carries_value_role_and_group() -> None:
    text, spans = parse_annotated('fly from [Hamburg]{"entity": "city", "value": "HAM", "role": "from"} today')
    assert text == "fly from Hamburg today"
    assert (spans[0].entity, spans[0].value, spans[0].role) == ("city", "HAM", "from")


def test_legacy_colon_annotation_sets_the_value() -> None:
    _, spans = parse_annotated("[NYC](city:New York)")
    assert spans[0].value == "New York"


@given(st.text(alphabet=st.characters(blacklist_characters="[]{}()"), max_size=60))
def test_text_without_annotations_is_unchanged(text: str) -> None:
    plain, spans = parse_annotated(text)
    assert plain == text and spans == ()


def test_nlu_file_reads_synonyms_regexes_lookups_and_example_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "nlu.yml", """
        version: "3.1"
        nlu:
        - intent: inform
          examples: |
            - to [Munich]{"entity": "city", "value": "München"}
            - from [Berlin](city)
        - synonym: München
          examples: |
            - muenchen
        - regex: zipcode
          examples: |
            - \\b\\d{5}\\b
        - lookup: city
          examples: |
            - Hamburg
            - Köln
        """)
    data = load_nlu_file(path, display="nlu.yml")
    assert [e.text for e in data.examples] == ["to Munich", "from Berlin"]
    assert [e.line for e in data.examples] == [5, 6]
    assert data.synonyms == {"munich": "München", "muenchen": "München"}
    assert data.regexes == [("zipcode", r"\b\d{5}\b")]
    assert data.lookups == {"city": ["Hamburg", "Köln"]}


def test_intent_metadata_language_is_kept(tmp_path: Path) -> None:
    path = write(tmp_path / "nlu.yml", """
        nlu:
        - intent: greet
          metadata:
            language: de
          examples: |
            - Hallo
        """)
    assert load_nlu_file(path).examples[0].language == "de"


def test_malformed_yaml_names_file_and_line() -> None:
    with pytest.raises(RasaFileError) as caught:
        parse_yaml("nlu:\n- intent: greet\n  examples: |\n    - hi\n  bad: [unclosed\n", file="data/nlu.yml")
    assert str(caught.value).startswith("data/nlu.yml:")
    assert caught.value.line is not None and caught.value.line >= 5


def test_example_without_dash_is_an_error_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "nlu.yml", """
        nlu:
        - intent: greet
          examples: |
            - hi
            hello
        """)
    with pytest.raises(RasaFileError, match=r"nlu.yml:5: example 'hello' must start with '- '"):
        load_nlu_file(path, display="nlu.yml")


def test_bad_entity_json_is_reported_with_line(tmp_path: Path) -> None:
    path = write(tmp_path / "nlu.yml", """
        nlu:
        - intent: inform
          examples: |
            - to [Munich]{"entity": city}
        """)
    with pytest.raises(RasaFileError, match=r"nlu.yml:4: invalid entity annotation"):
        load_nlu_file(path, display="nlu.yml")


def test_domain_reads_slots_mappings_responses_forms_and_session() -> None:
    doc = parse_yaml(textwrap.dedent("""
        intents: [greet, {inform: {use_entities: true}}]
        entities: [number]
        slots:
          number:
            type: text
            mappings:
            - type: from_entity
              entity: number
              conditions:
              - active_loop: f
                requested_slot: number
        forms:
          f:
            required_slots: [number]
        responses:
          utter_greet:
          - text: "Hallo {name}"
            condition: [{type: slot, name: language, value: de}]
          - text: "Hi"
            channel: telegram
            buttons: [{title: Yes, payload: /affirm}]
        session_config:
          session_expiration_time: 30
          carry_over_slots_to_new_session: false
        """), file="domain.yml")
    domain = parse_domain(doc, file="domain.yml")
    assert domain.intents == ["greet", "inform"]
    assert domain.slots["number"].mappings[0].conditions == (("f", "number"),)
    assert "requested_slot" in domain.slots
    assert domain.forms["f"].required_slots == ("number",)
    assert domain.responses["utter_greet"][1]["channel"] == "telegram"
    assert (domain.session_expiration_minutes, domain.carry_over_slots) == (30.0, False)


def test_rasa2_form_shape_is_rejected_with_line() -> None:
    doc = parse_yaml("forms:\n  f:\n    required_slots:\n      a:\n      - type: from_text\n", file="domain.yml")
    with pytest.raises(RasaFileError, match=r"domain.yml:3: form 'f'"):
        parse_domain(doc, file="domain.yml")


def test_stories_read_conditions_slots_loops_and_test_user_text(tmp_path: Path) -> None:
    path = write(tmp_path / "rules.yml", """
        rules:
        - rule: submit
          condition:
          - active_loop: f
          steps:
          - action: f
          - active_loop: null
          - slot_was_set:
            - requested_slot: null
            - number
          - action: utter_done
          wait_for_user_input: false
        stories:
        - story: test
          steps:
          - user: |
              send it to [Berlin](city)
            intent: inform
          - action: utter_ok
        """)
    data = load_story_file(path, display="rules.yml")
    rule = data.rules[0]
    assert rule.condition[0].kind == "active_loop" and rule.condition[0].name == "f"
    assert [s.kind for s in rule.steps] == ["action", "active_loop", "slot", "slot", "action"]
    assert rule.steps[3].value is ANY_VALUE and not rule.wait_for_user_input
    user = data.stories[0].steps[0]
    assert (user.text, user.name, user.entities) == ("send it to Berlin", "inform", (("city", "Berlin"),))


def test_moodbot_project_loads_as_rasa_init_creates_it() -> None:
    project = load_project(MOODBOT)
    assert project.domain.intents[:2] == ["greet", "goodbye"]
    assert (project.config.fallback_threshold, project.config.ambiguity_threshold) == (0.3, 0.1)
    assert len(project.stories.rules) == 2 and len(project.stories.stories) == 3
    assert [p.name for p in project.test_files] == ["test_stories.yml"]
    assert validate_project(MOODBOT) == []


def test_rule_with_unknown_action_fails_and_unknown_intent_warns_with_file_and_line(tmp_path: Path) -> None:
    project = tmp_path / "bot"
    shutil.copytree(MOODBOT, project, ignore=shutil.ignore_patterns(".switchboard-models"))
    rules = project / "data" / "rules.yml"
    rules.write_text(rules.read_text() + "\n- rule: unknown\n  steps:\n  - intent: order_pizza\n  - action: utter_pizza\n")
    result = review_project(project)
    line = rules.read_text().splitlines().index("  - intent: order_pizza") + 1
    assert f"data/rules.yml:{line}: intent 'order_pizza' is not in domain.yml intents" in result.warnings
    assert result.errors == [f"data/rules.yml:{line + 1}: action 'utter_pizza' is not in domain.yml (actions, responses or forms)"]


def test_malformed_domain_fails_validation_with_file_and_line(tmp_path: Path) -> None:
    project = tmp_path / "bot"
    shutil.copytree(MOODBOT, project, ignore=shutil.ignore_patterns(".switchboard-models"))
    (project / "domain.yml").write_text("intents:\n  - greet\nresponses:\n  utter_greet:\n  - text: \"Hey\n")
    errors = validate_project(project)
    assert len(errors) == 1 and errors[0].startswith("domain.yml:") and "invalid YAML" in errors[0]


def test_endpoints_yml_action_endpoint_expands_environment_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "bot"
    shutil.copytree(MOODBOT, project, ignore=shutil.ignore_patterns(".switchboard-models"))
    (project / "endpoints.yml").write_text('action_endpoint:\n  url: "http://${ACTIONS_HOST}:5055/webhook"\n')
    monkeypatch.setenv("ACTIONS_HOST", "actions.internal")
    assert load_project(project).action_endpoint == "http://actions.internal:5055/webhook"
    monkeypatch.delenv("ACTIONS_HOST")
    with pytest.raises(RasaFileError, match=r"^endpoints.yml:2: environment variable ACTIONS_HOST is not set$"):
        load_project(project)
