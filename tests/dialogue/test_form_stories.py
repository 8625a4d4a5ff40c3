"""Form unhappy paths learned from stories alone (Rasa's formbot stories), through the engine."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from core.dialogue.engine import RasaEngine
from core.dialogue.testing import Conversator, actions_of

DOMAIN = """
version: "3.1"
intents: [greet, request_restaurant, inform, stop, affirm, deny, chitchat, thanks]
entities: [cuisine, num_people]
slots:
  cuisine:
    type: text
    influence_conversation: false
    mappings:
    - type: from_entity
      entity: cuisine
  num_people:
    type: text
    influence_conversation: false
    mappings:
    - type: from_entity
      entity: num_people
forms:
  restaurant_form:
    required_slots: [cuisine, num_people]
responses:
  utter_greet: [{text: "Hello!"}]
  utter_ask_cuisine: [{text: "What cuisine?"}]
  utter_ask_num_people: [{text: "How many people?"}]
  utter_ask_continue: [{text: "Do you want to continue?"}]
  utter_chitchat: [{text: "Chitchat answer."}]
  utter_submit: [{text: "All done!"}]
  utter_slots_values: [{text: "{cuisine} for {num_people}"}]
  utter_noworries: [{text: "You're welcome :)"}]
"""

NLU = """
version: "3.1"
nlu:
- intent: greet
  examples: |
    - hello
    - hi there
- intent: request_restaurant
  examples: |
    - book a table
    - I need a restaurant
- intent: inform
  examples: |
    - [thai](cuisine) food
    - for [4](num_people)
- intent: stop
  examples: |
    - stop
    - never mind
- intent: affirm
  examples: |
    - yes
    - sure
- intent: deny
  examples: |
    - no
    - nope
- intent: chitchat
  examples: |
    - how is the weather
    - tell me a joke
- intent: thanks
  examples: |
    - thanks
    - thank you
"""

RULES = """
version: "3.1"
rules:
- rule: greet
  steps:
  - intent: greet
  - action: utter_greet
- rule: activate restaurant form
  steps:
  - intent: request_restaurant
  - action: restaurant_form
  - active_loop: restaurant_form
- rule: submit form
  condition:
  - active_loop: restaurant_form
  steps:
  - action: restaurant_form
  - active_loop: null
  - slot_was_set:
    - requested_slot: null
  - action: utter_submit
  - action: utter_slots_values
"""

STORIES = """
version: "3.1"
stories:
- story: chitchat inside the form, then it goes on
  steps:
  - intent: request_restaurant
  - action: restaurant_form
  - active_loop: restaurant_form
  - intent: chitchat
  - action: utter_chitchat
  - action: restaurant_form
- story: stop, then continue
  steps:
  - intent: request_restaurant
  - action: restaurant_form
  - active_loop: restaurant_form
  - intent: stop
  - action: utter_ask_continue
  - intent: affirm
  - action: restaurant_form
- story: stop, then stop
  steps:
  - intent: request_restaurant
  - action: restaurant_form
  - active_loop: restaurant_form
  - intent: stop
  - action: utter_ask_continue
  - intent: deny
  - action: action_deactivate_loop
  - active_loop: null
- story: thanks at any time
  steps:
  - intent: thanks
  - action: utter_noworries
"""

CONFIG = """
recipe: default.v1
language: en
policies:
- name: MemoizationPolicy
- name: RulePolicy
- name: TEDPolicy
  max_history: 5
  epochs: 100
"""


@pytest.fixture(scope="module")
def formbot(tmp_path_factory: pytest.TempPathFactory) -> RasaEngine:
    root = tmp_path_factory.mktemp("formbot")
    (root / "data").mkdir()
    for name, text in (("domain.yml", DOMAIN), ("config.yml", CONFIG), ("data/nlu.yml", NLU),
                       ("data/rules.yml", RULES), ("data/stories.yml", STORIES)):
        (root / name).write_text(textwrap.dedent(text))
    return RasaEngine.load(Path(root), bot="formbot", languages=["en"], default_language="en", seed=5)


async def start_form(talk: Conversator) -> None:
    await talk.say("hello")
    out = await talk.say(payload="/request_restaurant")
    assert actions_of(out) == ["restaurant_form"] and out.replies[-1].text == "What cuisine?"


async def test_chitchat_mid_form_is_answered_and_the_form_asks_again(formbot: RasaEngine) -> None:
    talk = Conversator(formbot, "fb-1")
    await start_form(talk)
    out = await talk.say(payload="/chitchat")
    assert actions_of(out) == ["utter_chitchat", "restaurant_form"]
    assert [r.text for r in out.replies] == ["Chitchat answer.", "What cuisine?"]
    done = await talk.say(payload='/inform{"cuisine": "thai"}')
    assert done.replies[-1].text == "How many people?"
    final = await talk.say(payload='/inform{"num_people": "4"}')
    assert actions_of(final) == ["restaurant_form", "utter_submit", "utter_slots_values"]
    assert final.replies[-1].text == "thai for 4"


async def test_stop_then_continue_resumes_the_form(formbot: RasaEngine) -> None:
    talk = Conversator(formbot, "fb-2")
    await start_form(talk)
    asked = await talk.say(payload="/stop")
    assert actions_of(asked) == ["utter_ask_continue"]
    assert any(e.type == "action_execution_rejected" for e in asked.events)
    resumed = await talk.say(payload="/affirm")
    assert actions_of(resumed) == ["restaurant_form"] and resumed.replies[-1].text == "What cuisine?"
    assert resumed.conversation.active_form == "restaurant_form"


async def test_stop_then_stop_ends_the_form(formbot: RasaEngine) -> None:
    talk = Conversator(formbot, "fb-3")
    await start_form(talk)
    await talk.say(payload="/stop")
    ended = await talk.say(payload="/deny")
    assert actions_of(ended) == ["action_deactivate_loop"]
    assert ended.conversation.active_form is None


async def test_a_fragment_story_applies_mid_conversation(formbot: RasaEngine) -> None:
    talk = Conversator(formbot, "fb-4")
    await talk.say("hello")
    await talk.say(payload="/chitchat")  # nothing answers chitchat outside the form
    out = await talk.say(payload="/thanks")
    assert actions_of(out) == ["utter_noworries"]


async def test_slot_older_than_the_history_window_still_steers_the_dialogue() -> None:
    engine = RasaEngine.load(Path(__file__).parents[1] / "rasa_projects" / "slot_branches", bot="slots",
                             languages=["en"], default_language="en", seed=2)
    talk = Conversator(engine, "window-slots")
    await talk.say(payload="/greet")
    await talk.say(payload='/tell_tier{"tier": "premium"}')
    assert talk.conversation.slots["tier"] == "premium"
    talk.history = talk.history[-3:]  # the runner's window starts after the slot was set
    assert not any(e.type == "slot" and e.data.get("name") == "tier" for e in talk.history)
    out = await talk.say(payload="/ask_discount")
    assert actions_of(out) == ["utter_premium_discount"]
