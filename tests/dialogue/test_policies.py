"""Rule and memoization policies on hand-made anchors and stories."""

from __future__ import annotations

import textwrap

from core.dialogue.policies import MemoizationPolicy, RulePolicy, compile_rules
from core.dialogue.state import DialogueState
from core.model import Event
from core.rasa.domain import parse_domain
from core.rasa.stories import parse_story_doc
from core.rasa.yamlio import parse_yaml

DOMAIN = parse_domain(parse_yaml(textwrap.dedent("""
    intents: [greet, ask, inform, stop]
    slots:
      vip: {type: bool, mappings: [{type: custom}]}
    responses:
      utter_hi: [{text: hi}]
      utter_vip: [{text: vip}]
      utter_a: [{text: a}]
      utter_b: [{text: b}]
      utter_c: [{text: c}]
    """), file="domain.yml"), file="domain.yml")


def blocks(text: str):  # type: ignore[no-untyped-def]
    return parse_story_doc(parse_yaml(textwrap.dedent(text), file="data.yml"), file="data.yml")


def state_after(*events: tuple[str, dict]) -> DialogueState:  # type: ignore[type-arg]
    state = DialogueState.initial(DOMAIN)
    for kind, data in events:
        state.apply(Event(kind, data))
    return state


def user(intent: str) -> tuple[str, dict]:  # type: ignore[type-arg]
    return ("user", {"text": intent, "parse_data": {"intent": {"name": intent, "confidence": 1.0}, "entities": []}})


def action(name: str) -> tuple[str, dict]:  # type: ignore[type-arg]
    return ("action", {"name": name})


RULES = compile_rules(blocks("""
    rules:
    - rule: greet
      steps:
      - intent: greet
      - action: utter_hi
    - rule: greet a vip
      condition:
      - slot_was_set:
        - vip: true
      steps:
      - intent: greet
      - action: utter_vip
      - action: utter_hi
    - rule: chain without waiting
      steps:
      - intent: ask
      - action: utter_a
      wait_for_user_input: false
    """).rules)


def test_rule_predicts_next_action_then_listen() -> None:
    policy = RulePolicy(RULES)
    assert policy.predict(state_after(user("greet")).anchors)[0] == "utter_hi"
    assert policy.predict(state_after(user("greet"), action("utter_hi")).anchors)[0] == "action_listen"


def test_slot_condition_selects_the_longer_rule() -> None:
    policy = RulePolicy(RULES)
    state = state_after(("slot", {"name": "vip", "value": True}), user("greet"))
    assert policy.predict(state.anchors)[0] == "utter_vip"
    state.apply(Event("action", {"name": "utter_vip"}))
    assert policy.predict(state.anchors)[0] == "utter_hi"


def test_rule_without_wait_for_user_input_does_not_predict_listen() -> None:
    policy = RulePolicy(RULES)
    assert policy.predict(state_after(user("ask"), action("utter_a")).anchors)[0] is None


STORIES = blocks("""
    stories:
    - story: one
      steps:
      - intent: greet
      - action: utter_hi
      - intent: ask
      - action: utter_a
    - story: two
      steps:
      - intent: inform
      - action: utter_b
      - checkpoint: after_b
    - story: three
      steps:
      - checkpoint: after_b
      - intent: ask
      - action: utter_c
    """).stories


def test_memoization_matches_recent_history_exactly() -> None:
    memo = MemoizationPolicy(STORIES, max_history=5)
    assert memo.predict(state_after(user("greet"), action("utter_hi"), user("ask")).anchors) == "utter_a"
    assert memo.predict(state_after(user("inform"), action("utter_b"), user("ask")).anchors) == "utter_c"
    assert memo.predict(state_after(user("ask")).anchors) is None  # not at a story's start


def test_memoization_learns_listen_after_a_story_ends() -> None:
    memo = MemoizationPolicy(STORIES, max_history=5)
    assert memo.predict(state_after(user("greet"), action("utter_hi"), user("ask"), action("utter_a")).anchors) == "action_listen"


def test_augmented_memoization_forgets_old_history() -> None:
    plain = MemoizationPolicy(STORIES, max_history=5)
    augmented = MemoizationPolicy(STORIES, max_history=5, augmented=True)
    anchors = state_after(user("stop"), action("utter_hi"), user("inform"), action("utter_b"), user("ask")).anchors
    assert plain.predict(anchors) is None
    assert augmented.predict(anchors) == "utter_c"


def test_contradicting_stories_are_not_memorised() -> None:
    stories = blocks("""
        stories:
        - story: a
          steps: [{intent: greet}, {action: utter_a}]
        - story: b
          steps: [{intent: greet}, {action: utter_b}]
        """).stories
    assert MemoizationPolicy(stories).predict(state_after(user("greet")).anchors) is None
