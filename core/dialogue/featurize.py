"""Rasa's dialogue states: what a policy sees at each point an action is predicted.

A state is a dict of sub-states as Rasa's ``Domain.get_active_state`` builds it:
``user`` (intent, entities with ``entity#role`` / ``entity#group``), ``prev_action``
(``action_name``), ``active_loop`` (``name``) and ``slots`` (only slots that influence
the conversation, featurised by type as Rasa's ``Slot.as_feature``). Empty sub-states
are left out. In rules, ``null`` values mean "must not be set" (`SHOULD_NOT_BE_SET`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from core.rasa.domain import Domain, Slot

State = dict[str, dict[str, Any]]
SHOULD_NOT_BE_SET = "should_not_be_set"
OTHER_VALUE = "__other__"
ROLE_SEPARATOR = "#"
USER, PREV_ACTION, ACTIVE_LOOP, SLOTS = "user", "prev_action", "active_loop", "slots"


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "y", "on")
    return bool(value)


def slot_feature(slot: Slot, value: Any) -> tuple[float, ...]:
    """Rasa's ``Slot.as_feature()``: empty for slots that do not influence the conversation."""
    if not slot.influence_conversation:
        return ()
    kind = slot.type
    if kind == "bool":
        return (0.0, 0.0) if value is None else (1.0, float(_truthy(value)))
    if kind == "text":
        return (1.0 if value is not None else 0.0,)
    if kind == "list":
        return (1.0 if value is not None and len(value) > 0 else 0.0,)
    if kind == "float":
        low, high = float(getattr(slot, "min_value", 0.0)), float(getattr(slot, "max_value", 1.0))  # Rasa's defaults
        try:
            capped = max(low, min(high, float(value)))
        except (TypeError, ValueError):
            return (0.0, 0.0)
        return (1.0, (capped - low) / (abs(high - low) or 1.0))
    if kind == "categorical":
        values = categorical_values(slot)
        feature = [0.0] * len(values)
        if value is None:
            return tuple(feature)
        text = str(value).lower()
        index = values.index(text) if text in values else values.index(OTHER_VALUE)
        feature[index] = 1.0
        return tuple(feature)
    return ()  # any and custom slot types are not featurised


def categorical_values(slot: Slot) -> list[str]:
    values = [str(v).lower() for v in slot.values]
    return values if OTHER_VALUE in values else [*values, OTHER_VALUE]


def slots_sub_state(domain: Domain, slots: Mapping[str, Any], only: set[str] | None = None) -> dict[str, Any]:
    """Featurised slots; ``only`` keeps the slots set so far (Rasa's ``omit_unset_slots``)."""
    out: dict[str, Any] = {}
    for name, slot in domain.slots.items():
        if not slot.influence_conversation or (only is not None and name not in only):
            continue
        value = slots.get(name)
        if value == SHOULD_NOT_BE_SET:
            out[name] = SHOULD_NOT_BE_SET
            continue
        feature = slot_feature(slot, value)
        if any(feature):
            out[name] = feature
    return out


def user_sub_state(domain: Domain, parse: Mapping[str, Any]) -> dict[str, Any]:
    """Intent and featurised entities of a user message (roles and groups as ``entity#role``)."""
    intent = (parse.get("intent") or {}).get("name")
    out: dict[str, Any] = {}
    if intent:
        out["intent"] = intent
    names: set[str] = set()
    known = set(domain.entities)
    for entity in parse.get("entities") or []:
        name = entity.get("entity")
        if not name or (known and name not in known):
            continue
        names.add(str(name))
        for extra in ("role", "group"):
            if entity.get(extra):
                names.add(f"{name}{ROLE_SEPARATOR}{entity[extra]}")
    if names:
        out["entities"] = tuple(sorted(names))
    return out


def make_state(user: Mapping[str, Any], prev_action: str | None, active_loop: str | None,
               slots: Mapping[str, Any]) -> State:
    state: State = {}
    if user:
        state[USER] = dict(user)
    if slots:
        state[SLOTS] = dict(slots)
    if prev_action:
        state[PREV_ACTION] = {"action_name": prev_action}
    if active_loop:
        state[ACTIVE_LOOP] = {"name": active_loop}
    return state


def state_key(states: Sequence[State]) -> str:
    """A stable text key for a sequence of states (Rasa's JSON with sorted keys; orjson, which
    is ~10x faster than json here: two keys a turn, 37 us of CPU with json in the bench)."""
    return orjson.dumps(list(states), default=list, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()


def prev_action_of(state: Mapping[str, Any]) -> str | None:
    return (state.get(PREV_ACTION) or {}).get("action_name")


def loop_of(state: Mapping[str, Any]) -> str | None:
    name = (state.get(ACTIVE_LOOP) or {}).get("name")
    return None if name == SHOULD_NOT_BE_SET else name
