"""The ensemble's incremental view of the states story-trained policies see equals `ml_states`."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from core.dialogue.ensemble import PolicyEnsemble
from core.dialogue.featurize import ACTIVE_LOOP, PREV_ACTION, SLOTS, USER, State
from core.dialogue.policies import MlStateWalk, ml_states
from core.dialogue.state import LISTEN, DialogueState
from core.rasa.domain import parse_domain
from core.rasa.yamlio import parse_yaml

ACTIONS = [LISTEN, "utter_a", "utter_b", "city_form", "action_x"]
LOOPS = ["city_form", "other_form"]


@st.composite
def a_state(draw: Any) -> State:
    state: State = {}
    action = draw(st.sampled_from([None, *ACTIONS]))
    if action:
        state[PREV_ACTION] = {"action_name": action}
    if draw(st.booleans()):
        state[USER] = {"intent": draw(st.sampled_from(["greet", "inform", "stop"]))}
    slots = {name: (1.0,) for name in ("vip", "city", "size") if draw(st.booleans())}
    if slots:
        state[SLOTS] = slots
    if draw(st.booleans()):
        state[ACTIVE_LOOP] = {"name": draw(st.sampled_from(LOOPS))}
    return state


RULE_ONLY = st.tuples(st.frozensets(st.sampled_from(["vip", "city", "size"])), st.frozensets(st.sampled_from(LOOPS)))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(a_state(), st.booleans()), max_size=12), RULE_ONLY)
def test_feeding_states_one_at_a_time_gives_ml_states_of_every_prefix(
    steps: list[tuple[State, bool]], rule_only: tuple[frozenset[str], frozenset[str]],
) -> None:
    # `ml_states` returns the states unchanged when nothing is rule-only and nothing hidden (the
    # ensemble checks that first); the walk is what it does otherwise: force that path with a
    # rule-only slot no state has
    rule_only = (rule_only[0] | {"never_set"}, rule_only[1])
    walk = MlStateWalk(*rule_only)
    states = [s for s, _ in steps]
    hidden = [h for _, h in steps]
    for index, (state, flag) in enumerate(steps):
        # the current state (its hidden flag False, as `DialogueState.hidden_turns` gives it) without feeding it
        assert walk.with_last(state, False) == ml_states(states[:index + 1], *rule_only, [*hidden[:index], False])
        walk.feed(state, flag)
        assert walk.out == ml_states(states[:index + 1], *rule_only, hidden[:index + 1])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(a_state(), st.booleans()), min_size=1, max_size=12), RULE_ONLY)
def test_the_ensemble_sees_ml_states_while_a_turn_appends_to_the_past(
    steps: list[tuple[State, bool]], rule_only: tuple[frozenset[str], frozenset[str]],
) -> None:
    state = DialogueState.initial(parse_domain(parse_yaml("intents: [greet]\n", file="d.yml"), file="d.yml"))
    for past_state, flag in steps[:-1]:
        state.past.append(past_state)  # as `DialogueState._executed` does
        state.hidden.append(flag)
        states, hidden = state.states(), state.hidden_turns()
        assert PolicyEnsemble._seen(state, states, hidden, rule_only) == ml_states(states, *rule_only, hidden)
    state.past = [s for s, _ in steps]  # history rewritten (a restart, a reverted fallback): walked afresh
    state.hidden = [h for _, h in steps]
    states, hidden = state.states(), state.hidden_turns()
    assert PolicyEnsemble._seen(state, states, hidden, rule_only) == ml_states(states, *rule_only, hidden)
