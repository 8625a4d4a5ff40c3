"""Slot filling (Rasa 3's ``action_extract_slots``) and form bookkeeping helpers."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from core.rasa.domain import REQUESTED_SLOT, Domain, Form, SlotMapping

_PAYLOAD = re.compile(r"^/(?P<intent>[^{@\s]+)(?:@(?P<confidence>[0-9.]+))?(?P<entities>\{.*\})?\s*$", re.DOTALL)


def parse_payload(payload: str) -> tuple[str, float, dict[str, Any]] | None:
    """``/intent``, ``/intent@0.9`` or ``/intent{"slot": "value"}`` → (intent, confidence, entities)."""
    match = _PAYLOAD.match(payload.strip())
    if not match:
        return None
    entities: dict[str, Any] = {}
    if match.group("entities"):
        try:
            loaded = json.loads(match.group("entities"))
        except json.JSONDecodeError:
            return None
        if not isinstance(loaded, dict):
            return None
        entities = loaded
    confidence = float(match.group("confidence")) if match.group("confidence") else 1.0
    return match.group("intent"), confidence, entities


def _conditions_hold(mapping: SlotMapping, active_loop: str | None, slots: Mapping[str, Any]) -> bool:
    if not mapping.conditions:
        return True
    for loop, requested in mapping.conditions:
        if loop is not None and loop != active_loop:
            continue
        if requested is not None and slots.get(REQUESTED_SLOT) != requested:
            continue
        return True
    return False


def _intent_allowed(mapping: SlotMapping, intent: str | None) -> bool:
    if mapping.intent and intent not in mapping.intent:
        return False
    return not (mapping.not_intent and intent in mapping.not_intent)


def _entity_value(mapping: SlotMapping, entities: list[dict[str, Any]], list_slot: bool) -> Any:
    values = [
        e.get("value") for e in entities
        if e.get("entity") == mapping.entity
        and (mapping.role is None or e.get("role") == mapping.role)
        and (mapping.group is None or e.get("group") == mapping.group)
    ]
    if not values:
        return None
    return values if list_slot else values[0]


def _form_slots(domain: Domain, form_name: str | None) -> set[str]:
    form = domain.forms.get(form_name or "")
    return set(form.required_slots) if form else set()


def extract_slots(
    domain: Domain,
    *,
    slots: Mapping[str, Any],
    active_loop: str | None,
    intent: str | None,
    entities: list[dict[str, Any]],
    text: str | None,
    is_payload: bool,
) -> dict[str, Any]:
    """Slot values the user's message fills, by the domain's slot mappings.

    As in Rasa 3: mappings apply on every message unless their ``conditions`` restrict
    them; a form's slots with unconditioned ``from_text`` mappings only fill while that
    form asks for them (otherwise every message would fill them).
    """
    filled: dict[str, Any] = {}
    requested = slots.get(REQUESTED_SLOT)
    for slot in domain.slots.values():
        for mapping in slot.mappings:
            if not _conditions_hold(mapping, active_loop, slots) or not _intent_allowed(mapping, intent):
                continue
            value: Any = None
            if mapping.type == "from_entity":
                value = _entity_value(mapping, entities, slot.type == "list")
            elif mapping.type == "from_text":
                if is_payload or not text:
                    continue
                in_some_form = any(slot.name in f.required_slots for f in domain.forms.values())
                if not mapping.conditions and in_some_form and not (active_loop and requested == slot.name):
                    continue
                value = text
            elif mapping.type == "from_intent" and mapping.intent and intent in mapping.intent:
                value = mapping.value
            if value is not None:
                filled[slot.name] = value
                break
    return {name: value for name, value in filled.items() if slots.get(name) != value}


def trigger_values(domain: Domain, form: Form, intent: str | None) -> dict[str, Any]:
    """``from_trigger_intent`` values when ``form`` is activated by ``intent``."""
    values: dict[str, Any] = {}
    for name in form.required_slots:
        slot = domain.slots.get(name)
        for mapping in slot.mappings if slot else ():
            if mapping.type == "from_trigger_intent" and _intent_allowed(mapping, intent) and mapping.intent and intent in mapping.intent:
                values[name] = mapping.value
    return values


def next_missing(form: Form, slots: Mapping[str, Any]) -> str | None:
    return next((s for s in form.required_slots if slots.get(s) is None), None)


def ask_action(domain: Domain, form: str, slot: str) -> tuple[str, str] | None:
    """How to ask for ``slot``: ("action", name) or ("response", name), or None."""
    for name in (f"action_ask_{form}_{slot}", f"action_ask_{slot}"):
        if name in domain.actions:
            return "action", name
    for name in (f"utter_ask_{form}_{slot}", f"utter_ask_{slot}"):
        if name in domain.responses:
            return "response", name
    return None
