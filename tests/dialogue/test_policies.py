"""Rule, memoization and ML policies on hand-made stories, checked against Rasa 3.x behaviour."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from core.dialogue.dialogue_model import build_ensemble
from core.dialogue.ensemble import PolicyEnsemble
from core.dialogue.featurize import slot_feature, slots_sub_state, user_sub_state
from core.dialogue.ml import MlPolicy
from core.dialogue.policies import MemoizationPolicy, RulePolicy
from core.dialogue.state import DialogueState
from core.dialogue.training import examples, rule_trackers, story_trackers
from core.errors import DialogueError
from core.model import Event
from core.rasa.domain import Domain, Slot, parse_domain
from core.rasa.nlu_data import NluData
from core.rasa.project import ProjectConfig, RasaProject
from core.rasa.stories import StoryData, parse_story_doc
from core.rasa.yamlio import parse_yaml

DOMAIN = parse_domain(parse_yaml(textwrap.dedent("""
    intents: [greet, ask, inform, stop, thanks, chitchat, affirm]
    entities: [city]
    slots:
      vip: {type: bool, mappings: [{type: custom}]}
      size: {type: categorical, values: [small, large], mappings: [{type: custom}]}
      city: {type: text, mappings: [{type: from_entity, entity: city}]}
      note: {type: text, influence_conversation: false, mappings: [{type: custom}]}
    forms:
      city_form: {required_slots: [city]}
    responses:
      utter_hi: [{text: hi}]
      utter_vip: [{text: vip}]
      utter_a: [{text: a}]
      utter_b: [{text: b}]
      utter_c: [{text: c}]
      utter_chitchat: [{text: chat}]
      utter_welcome: [{text: welcome}]
      utter_ask_city: [{text: which city?}]
      utter_done: [{text: done}]
    """), file="domain.yml"), file="domain.yml")


def blocks(text: str) -> StoryData:
    return parse_story_doc(parse_yaml(textwrap.dedent(text), file="data.yml"), file="data.yml")


def user(intent: str, *entities: dict[str, Any]) -> Event:
    return Event("user", {"text": intent, "parse_data": {"intent": {"name": intent, "confidence": 1.0}, "entities": list(entities)}})


def action(name: str) -> Event:
    return Event("action", {"name": name})


def slot(name: str, value: Any) -> Event:
    return Event("slot", {"name": name, "value": value})


def loop(name: str | None) -> Event:
    return Event("active_loop", {"name": name})


def state_after(*events: Event) -> DialogueState:
    return DialogueState.from_history(DOMAIN, events)


def ensemble(data: str, policies: tuple[dict[str, Any], ...]) -> PolicyEnsemble:
    stories = blocks(data)
    project = RasaProject(root=__import__("pathlib").Path("."), domain=DOMAIN, config=ProjectConfig(policies=policies),
                          nlu=NluData(), stories=stories)
    built, _ = build_ensemble(project, intent_of=None, model_dir=None)
    return built


RULES = """
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
    - rule: welcome only at the start
      conversation_start: true
      steps:
      - intent: thanks
      - action: utter_welcome
    - rule: activate form
      steps:
      - intent: inform
      - action: city_form
      - active_loop: city_form
    - rule: submit form
      condition:
      - active_loop: city_form
      steps:
      - action: city_form
      - active_loop: null
      - slot_was_set:
        - requested_slot: null
      - action: utter_done
    - rule: chitchat inside the form
      condition:
      - active_loop: city_form
      steps:
      - intent: chitchat
      - action: utter_chitchat
    """
RULE_ONLY = ({"name": "RulePolicy"},)


def test_slots_are_featurised_as_rasa_does() -> None:
    assert slot_feature(Slot("b", "bool", influence_conversation=True), True) == (1.0, 1.0)
    assert slot_feature(Slot("b", "bool", influence_conversation=True), None) == (0.0, 0.0)
    categorical = Slot("c", "categorical", influence_conversation=True, values=("Small", "large"))
    assert slot_feature(categorical, "small") == (1.0, 0.0, 0.0)
    assert slot_feature(categorical, "medium") == (0.0, 0.0, 1.0)  # __other__
    assert slot_feature(Slot("t", "text", influence_conversation=True), "x") == (1.0,)
    assert slot_feature(Slot("l", "list", influence_conversation=True), []) == (0.0,)
    assert slot_feature(Slot("f", "float", influence_conversation=True), 0.25) == (1.0, 0.25)
    assert slots_sub_state(DOMAIN, {"vip": None, "size": "large", "note": "x", "city": None}) == {"size": (0.0, 1.0, 0.0)}


def test_entities_with_roles_and_groups_are_featurised() -> None:
    parse = {"intent": {"name": "inform"}, "entities": [{"entity": "city", "role": "from", "group": "1"}, {"entity": "unknown"}]}
    assert user_sub_state(DOMAIN, parse) == {"intent": "inform", "entities": ("city", "city#1", "city#from")}


def test_state_history_is_rasas_past_states() -> None:
    state = state_after(user("greet"), action("utter_hi"), action("action_listen"), user("ask"))
    assert state.states() == [
        {},
        {"user": {"intent": "greet"}, "prev_action": {"action_name": "action_listen"}},
        {"user": {"intent": "greet"}, "prev_action": {"action_name": "utter_hi"}},
        {"user": {"intent": "ask"}, "prev_action": {"action_name": "action_listen"}},
    ]


def test_rule_predicts_next_action_then_listen_with_confidence_one() -> None:
    policies = ensemble(RULES, RULE_ONLY)
    first = policies.predict(state_after(user("greet")))
    assert (first.action, first.policy, first.confidence) == ("utter_hi", "RulePolicy", 1.0)
    assert policies.predict(state_after(user("greet"), action("utter_hi"))).action == "action_listen"


def test_rule_condition_on_a_slot_picks_the_longer_rule() -> None:
    policies = ensemble(RULES, RULE_ONLY)
    assert policies.predict(state_after(slot("vip", True), user("greet"))).action == "utter_vip"
    assert policies.predict(state_after(slot("vip", True), user("greet"), action("utter_vip"))).action == "utter_hi"
    assert policies.predict(state_after(slot("vip", False), user("greet"))).action == "utter_hi"


def test_rule_without_wait_for_user_input_leaves_the_next_action_open() -> None:
    policies = ensemble(RULES, RULE_ONLY)
    after = policies.predict(state_after(user("ask"), action("utter_a")))
    assert (after.action, after.confidence) == ("action_default_fallback", 0.3)


def test_conversation_start_rule_applies_only_at_the_start() -> None:
    policies = ensemble(RULES, RULE_ONLY)
    assert policies.predict(state_after(user("thanks"))).action == "utter_welcome"
    later = state_after(user("greet"), action("utter_hi"), action("action_listen"), user("thanks"))
    assert policies.predict(later).action == "action_default_fallback"


def test_core_fallback_threshold_and_action_are_configurable() -> None:
    policies = ensemble(RULES, ({"name": "RulePolicy", "core_fallback_threshold": 0.4, "core_fallback_action_name": "utter_c"},))
    prediction = policies.predict(state_after(user("stop")))
    assert (prediction.action, prediction.confidence) == ("utter_c", 0.4)
    quiet = ensemble(RULES, ({"name": "RulePolicy", "enable_fallback_prediction": False},))
    assert quiet.predict(state_after(user("stop"))).action == "action_listen"


def test_restrict_rules_rejects_a_rule_with_two_user_messages() -> None:
    data = RULES + """
    - rule: two turns
      steps: [{intent: greet}, {action: utter_hi}, {intent: ask}, {action: utter_a}]
    """
    with pytest.raises(DialogueError, match="two turns"):
        ensemble(data, RULE_ONLY)
    assert ensemble(data, ({"name": "RulePolicy", "restrict_rules": False},)).predict(
        state_after(user("greet"), action("utter_hi"), action("action_listen"), user("ask"))).action == "utter_a"


def test_default_actions_overrule_rules() -> None:
    policies = ensemble(RULES, RULE_ONLY)
    assert policies.predict(state_after(user("restart"))).action == "action_restart"


def form_started() -> list[Event]:
    return [user("inform"), action("city_form"), loop("city_form"), slot("requested_slot", "city"), action("action_listen")]


def test_active_loop_happy_path_runs_the_loop_then_listens() -> None:
    policies = ensemble(RULES, RULE_ONLY)
    assert policies.predict(state_after(*form_started(), user("inform", {"entity": "city", "value": "Bern"}))).action == "city_form"
    assert policies.predict(state_after(*form_started(), user("inform"), action("city_form"))).action == "action_listen"


def test_rejected_loop_gives_way_to_a_general_rule_then_resumes() -> None:
    policies = ensemble(RULES, RULE_ONLY)
    events = [*form_started(), user("greet"), Event("action_execution_rejected", {"name": "city_form"})]
    assert policies.predict(state_after(*events)).action == "utter_hi"
    resumed = policies.predict(state_after(*events, action("utter_hi")))
    assert (resumed.action, resumed.policy) == ("city_form", "RulePolicy")


def test_a_rule_conditioned_on_the_loop_that_ends_in_listen_does_not_resume_it() -> None:
    policies = ensemble(RULES, RULE_ONLY)
    events = [*form_started(), user("chitchat"), Event("action_execution_rejected", {"name": "city_form"})]
    assert policies.predict(state_after(*events)).action == "utter_chitchat"
    assert policies.predict(state_after(*events, action("utter_chitchat"))).action == "action_listen"


def test_deactivated_form_runs_the_submit_rule() -> None:
    policies = ensemble(RULES, RULE_ONLY)
    events = [*form_started(), user("inform"), action("city_form"), slot("city", "Bern"), loop(None), slot("requested_slot", None)]
    assert policies.predict(state_after(*events)).action == "utter_done"


STORIES = """
    stories:
    - story: one
      steps:
      - intent: greet
      - action: utter_hi
      - intent: ask
      - action: utter_a
    - story: two
      steps:
      - intent: stop
      - action: utter_b
      - checkpoint: after_b
    - story: three
      steps:
      - checkpoint: after_b
      - or:
        - intent: ask
        - intent: chitchat
      - action: utter_c
    """
MEMO = ({"name": "MemoizationPolicy", "max_history": 5},)


def test_memoization_matches_recent_history_exactly_across_checkpoints_and_or() -> None:
    policies = ensemble(STORIES, MEMO)
    assert policies.predict(state_after(user("greet"), action("utter_hi"), user("ask"))).action == "utter_a"
    assert policies.predict(state_after(user("stop"), action("utter_b"), user("ask"))).action == "utter_c"
    assert policies.predict(state_after(user("stop"), action("utter_b"), user("chitchat"))).action == "utter_c"
    assert policies.predict(state_after(user("ask"))).action == "action_listen"  # nothing memorised


def test_memoization_memorises_a_whole_story_and_listens_after_its_end() -> None:
    policies = ensemble(STORIES, MEMO)
    first = policies.predict(state_after(user("greet")))
    assert (first.action, first.policy) == ("utter_hi", "MemoizationPolicy")
    assert policies.predict(state_after(user("greet"), action("utter_hi"), user("ask"), action("utter_a"))).action == "action_listen"


def test_augmented_memoization_forgets_old_history() -> None:
    events = [user("greet"), action("utter_hi"), action("action_listen"), user("thanks"), action("utter_welcome"),
              action("action_listen"), user("stop"), action("utter_b"), action("action_listen"), user("ask")]
    assert ensemble(STORIES, MEMO).predict(state_after(*events)).action == "action_listen"
    augmented = ensemble(STORIES, ({"name": "AugmentedMemoizationPolicy", "max_history": 5},))
    prediction = augmented.predict(state_after(*events))
    assert (prediction.action, prediction.policy) == ("utter_c", "AugmentedMemoizationPolicy")


def test_contradicting_stories_are_not_memorised() -> None:
    data = """
        stories:
        - story: a
          steps: [{intent: greet}, {action: utter_a}]
        - story: b
          steps: [{intent: greet}, {action: utter_b}]
        """
    assert ensemble(data, MEMO).predict(state_after(user("greet"))).action == "action_listen"


def test_rules_beat_stories_on_a_tie() -> None:
    data = RULES.replace("rules:", "rules:", 1) + """
    stories:
    - story: greet differently
      steps: [{intent: greet}, {action: utter_b}]
    """
    policies = ensemble(data, (*RULE_ONLY, *MEMO))
    assert policies.predict(state_after(user("greet"))).policy == "RulePolicy"


ML_STORIES = """
    stories:
    - story: vip greeting
      steps:
      - intent: greet
      - slot_was_set: [{vip: true}]
      - action: utter_vip
    - story: plain greeting
      steps:
      - intent: greet
      - slot_was_set: [{vip: false}]
      - action: utter_hi
    - story: ask then chitchat
      steps:
      - intent: ask
      - action: utter_a
      - intent: chitchat
      - action: utter_chitchat
    - story: stop
      steps:
      - intent: stop
      - action: utter_b
    """


def test_ml_policy_generalises_to_a_history_no_story_spells_out() -> None:
    policies = ensemble(ML_STORIES, ({"name": "TEDPolicy", "max_history": 3},))
    # no story has stop before a vip greeting
    unseen = state_after(user("stop"), action("utter_b"), action("action_listen"), slot("vip", True), user("greet"))
    prediction = policies.predict(unseen)
    assert (prediction.action, prediction.policy) == ("utter_vip", "TEDPolicy") and prediction.confidence > 0.5
    plain = policies.predict(state_after(user("stop"), action("utter_b"), action("action_listen"), slot("vip", False), user("greet")))
    assert plain.action == "utter_hi"
    # after its action the model predicts listening
    assert policies.predict(state_after(user("stop"), action("utter_b"))).action == "action_listen"


def test_ml_policy_learns_a_form_unhappy_path_from_stories() -> None:
    data = RULES + """
    stories:
    - story: stop inside the form ends it
      steps:
      - intent: inform
      - action: city_form
      - active_loop: city_form
      - intent: stop
      - action: utter_b
      - action: action_deactivate_loop
      - active_loop: null
    """
    policies = ensemble(data, (*RULE_ONLY, {"name": "TEDPolicy"}))
    events = [user("greet"), action("utter_hi"), action("action_listen"), *form_started(), user("stop"),
              Event("action_execution_rejected", {"name": "city_form"}), action("utter_b")]
    prediction = policies.predict(state_after(*events))
    assert (prediction.action, prediction.policy) == ("action_deactivate_loop", "TEDPolicy")
    # a greeting inside the form still resumes it (general rule)
    chat = [*form_started(), user("greet"), Event("action_execution_rejected", {"name": "city_form"}), action("utter_hi")]
    assert policies.predict(state_after(*chat)).action == "city_form"


def test_training_trackers_glue_checkpoints_and_augment() -> None:
    stories = blocks(STORIES).stories
    trackers = story_trackers(stories, DOMAIN, augmentation_factor=2)
    originals = [t for t in trackers if not t.is_augmented]
    assert len(originals) == 3 and len(trackers) == 3 + 20
    rules = rule_trackers(blocks(RULES).rules, DOMAIN)
    assert rules[0].events[0].data["name"] == "..." and rules[0].events[-1].data["name"] == "action_listen"
    assert [e.action for e in examples(originals[0], DOMAIN)] == ["action_listen", "utter_hi", "action_listen", "utter_a", "action_listen"]


def test_ml_policy_predicts_quickly() -> None:
    import time

    policy = MlPolicy(max_history=5)
    stories = blocks(ML_STORIES).stories
    policy.train(e for t in story_trackers(stories, DOMAIN, augmentation_factor=5) for e in examples(t, DOMAIN))
    states = state_after(user("stop"), action("utter_b"), action("action_listen"), user("greet")).states()
    started = time.perf_counter()
    for _ in range(200):
        policy.predict(states)
    assert (time.perf_counter() - started) / 200 < 0.001


def test_domain_fixture_is_a_domain() -> None:
    assert isinstance(DOMAIN, Domain) and isinstance(RulePolicy, type) and isinstance(MemoizationPolicy, type)


def run_turn(policies: PolicyEnsemble, state: DialogueState) -> list[str]:
    """Predict and apply actions until listening, logging hide_rule_turn as the live turn does."""
    done = []
    while True:
        prediction = policies.predict(state)
        data: dict[str, Any] = {"name": prediction.action}
        if prediction.hide_rule_turn:
            data["hide_rule_turn"] = True
        state.apply(Event("action", data))
        done.append(prediction.action)
        if prediction.action == "action_listen" or len(done) > 5:
            return done


def test_rule_only_turns_are_hidden_from_story_policies() -> None:
    data = """
    rules:
    - rule: chitchat
      steps: [{intent: chitchat}, {action: utter_chitchat}]
    stories:
    - story: ask then inform
      steps: [{intent: ask}, {action: utter_a}, {intent: inform}, {action: utter_b}]
    """
    policies = ensemble(data, (*RULE_ONLY, *MEMO))
    state = DialogueState.initial(DOMAIN)
    for intent, expected in (("ask", ["utter_a", "action_listen"]), ("chitchat", ["utter_chitchat", "action_listen"]),
                             ("inform", ["utter_b", "action_listen"])):
        state.apply(user(intent))
        assert run_turn(policies, state) == expected
    # the chitchat turn (utter_chitchat and the listen after it) is hidden, nothing else
    assert state.hidden == [False, False, False, True, True, False, False]


def test_user_texts_in_stories_get_their_intent_from_the_nlu() -> None:
    data = blocks("""
        stories:
        - story: in words
          steps:
          - user: |
              hi there, I come from [Bern]{"entity": "city", "role": "from"}
          - action: utter_hi
        """)
    seen: list[str] = []

    def intent_of(text: str) -> tuple[str | None, list[dict[str, object]]]:
        seen.append(text)
        return "greet", []

    [tracker] = story_trackers(data.stories, DOMAIN, intent_of=intent_of)
    assert seen == ["hi there, I come from Bern"]
    [first, *_] = examples(tracker, DOMAIN)[1:]
    assert first.states[-1]["user"] == {"intent": "greet", "entities": ("city", "city#from")}
    # as Rasa's slots_for_entities: a mapping without a role does not take an entity with one
    assert "slots" not in first.states[-1] and first.action == "utter_hi"


def test_trained_ml_policy_is_saved_and_reused_until_the_stories_change(tmp_path: Any) -> None:
    def build(data: str) -> tuple[PolicyEnsemble, bool]:
        project = RasaProject(root=tmp_path, domain=DOMAIN, config=ProjectConfig(policies=({"name": "TEDPolicy"},)),
                              nlu=NluData(), stories=blocks(data))
        return build_ensemble(project, intent_of=None, model_dir=tmp_path / "models")

    first, trained = build(ML_STORIES)
    again, retrained = build(ML_STORIES)
    assert trained and not retrained and len(list((tmp_path / "models").glob("dialogue-*.npz"))) == 1
    state = state_after(user("greet"))
    assert first.ml is not None and again.ml is not None
    assert first.ml.probabilities(state.states()) == again.ml.probabilities(state.states())
    _, changed = build(ML_STORIES.replace("utter_b", "utter_c"))
    assert changed
