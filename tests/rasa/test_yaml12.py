"""YAML 1.2, as Rasa reads it: unquoted yes/no/on/off stay strings in projects and farm.yml."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.config import load_farm_config
from core.dialogue.engine import RasaEngine
from core.dialogue.testing import Conversator
from core.rasa.yamlio import RasaFileError, parse_yaml, plain

MOODBOT = Path(__file__).parents[1] / "rasa_projects" / "moodbot"


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "y", "n", "Yes", "NO", "On", "OFF", "Y", "N"])
def test_yaml_11_booleans_are_strings(word: str) -> None:
    assert plain(parse_yaml(f"value: {word}\n{word}: key", file="x.yml")) == {"value": word, word: "key"}


@pytest.mark.parametrize(("text", "value"), [
    ("true", True), ("True", True), ("TRUE", True), ("false", False), ("False", False), ("FALSE", False),
    ("0o17", 15), ("0755", 755), ("0x1F", 31), ("-12", -12), ("+3", 3), ("1.5e3", 1500.0), (".5", 0.5),
    ("~", None), ("null", None), ("", None),
    ("1_000", "1_000"), ("12:30", "12:30"), ("2024-01-31", "2024-01-31"), ("0b101", "0b101"), ("tRue", "tRue"),
])
def test_scalars_resolve_by_the_yaml_12_core_schema(text: str, value: object) -> None:
    assert parse_yaml(f"v: {text}\n", file="x.yml")["v"] == value


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=12))
def test_plain_words_other_than_true_false_null_stay_strings(word: str) -> None:
    parsed = parse_yaml(f"v: {word}\n", file="x.yml")["v"]
    if word in ("true", "True", "TRUE", "false", "False", "FALSE"):
        assert parsed is (word.lower() == "true")
    elif word in ("null", "Null", "NULL"):
        assert parsed is None
    else:
        assert parsed == word and isinstance(parsed, str)


def test_bad_yaml_still_names_file_and_line() -> None:
    with pytest.raises(RasaFileError, match=r"^x.yml:3: invalid YAML"):
        parse_yaml("a: 1\nb: [2\nc: 3\n", file="x.yml")


def test_farm_yml_reads_yes_as_a_string(tmp_path: Path) -> None:
    farm = tmp_path / "farm.yml"
    farm.write_text(f"bots:\n  no:\n    name: Yes\n    project: {MOODBOT}\n    languages: [en, no]\n")
    config = load_farm_config(farm)
    assert list(config.bots) == ["no"] and config.bots["no"].name == "Yes" and config.bots["no"].languages == ["en", "no"]


DOMAIN_ADDITIONS = """
slots:
  answer:
    type: categorical
    values: [yes, no]
    mappings:
    - type: from_intent
      intent: affirm
      value: yes
    - type: from_intent
      intent: deny
      value: no

responses:
  utter_greet:
  - text: "Hey! How are you?"
    buttons:
    - title: Yes
      payload: /affirm
    - title: No
      payload: /deny
"""


async def test_slot_mapping_value_yes_matches_and_a_button_titled_yes_shows_yes(tmp_path: Path) -> None:
    project = tmp_path / "bot"
    shutil.copytree(MOODBOT, project, ignore=shutil.ignore_patterns(".switchboard-models"))
    domain = (project / "domain.yml").read_text()
    domain = domain.replace('responses:\n  utter_greet:\n  - text: "Hey! How are you?"\n', DOMAIN_ADDITIONS.lstrip())
    domain = domain.replace('  utter_happy:\n  - text: "Great, carry on!"\n',
                            '  utter_happy:\n  - text: "You said yes, great!"\n    condition:\n'
                            '    - type: slot\n      name: answer\n      value: yes\n  - text: "Great, carry on!"\n')
    (project / "domain.yml").write_text(domain)
    engine = RasaEngine.load(project, bot="yes", languages=["en"], default_language="en", model_dir=tmp_path / "m")
    talk = Conversator(engine, "c")
    greeting = await talk.say("hello")
    assert [b.title for b in greeting.replies[0].buttons] == ["Yes", "No"]
    await talk.say("I am sad")
    answer = await talk.say(payload="/affirm")
    assert answer.conversation.slots["answer"] == "yes"
    assert answer.replies[-1].text == "You said yes, great!"
