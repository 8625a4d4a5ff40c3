"""The Rasa 3.x domain: intents, entities, slots with mappings, responses, actions, forms.

`load_domain` accepts ``domain.yml`` or a ``domain/`` directory of YAML files (merged,
as Rasa does). Structural problems raise `RasaFileError` with file and line; reference
checks across files live in ``core.rasa.validate``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.rasa.yamlio import LDict, LList, RasaFileError, line_of, load_yaml, plain

DEFAULT_INTENTS = ("restart", "back", "out_of_scope", "session_start", "nlu_fallback")
DEFAULT_ACTIONS = (
    "action_listen", "action_restart", "action_session_start", "action_default_fallback",
    "action_deactivate_loop", "action_revert_fallback_events", "action_default_ask_affirmation",
    "action_default_ask_rephrase", "action_two_stage_fallback", "action_unlikely_intent",
    "action_back", "action_extract_slots",
    # Switchboard's own: report a handoff / a privacy request to the layers around the engine.
    "action_handoff", "action_forget_contact",
)
SLOT_TYPES = {"text", "bool", "categorical", "float", "list", "any"}
MAPPING_TYPES = {"from_entity", "from_text", "from_intent", "from_trigger_intent", "custom"}
RESPONSE_KEYS = {
    "text", "image", "buttons", "quick_replies", "custom", "attachment", "elements",
    "condition", "channel", "metadata", "id", "button_type",
}
REQUESTED_SLOT = "requested_slot"


@dataclass(frozen=True, slots=True)
class SlotMapping:
    type: str
    entity: str | None = None
    intent: tuple[str, ...] = ()
    not_intent: tuple[str, ...] = ()
    value: Any = None
    role: str | None = None
    group: str | None = None
    action: str | None = None
    conditions: tuple[tuple[str | None, str | None], ...] = ()  # (active_loop, requested_slot)
    line: int = 0


@dataclass(frozen=True, slots=True)
class Slot:
    name: str
    type: str = "any"
    initial_value: Any = None
    influence_conversation: bool = False
    mappings: tuple[SlotMapping, ...] = ()
    values: tuple[Any, ...] = ()
    line: int = 0


@dataclass(frozen=True, slots=True)
class Form:
    name: str
    required_slots: tuple[str, ...]
    ignored_intents: tuple[str, ...] = ()
    line: int = 0


@dataclass(slots=True)
class Domain:
    intents: list[str] = field(default_factory=list)
    entities: list[str] = field(default_factory=list)
    slots: dict[str, Slot] = field(default_factory=dict)
    responses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)
    forms: dict[str, Form] = field(default_factory=dict)
    session_expiration_minutes: float = 60.0
    carry_over_slots: bool = True
    files: list[str] = field(default_factory=list)
    # name -> (file, line) for messages that point back into the domain
    where: dict[str, tuple[str, int]] = field(default_factory=dict)
    # ``file:line: what`` for what Rasa accepts but is likely a mistake (``check`` prints them)
    warnings: list[str] = field(default_factory=list)

    @property
    def all_intents(self) -> set[str]:
        return set(self.intents) | set(DEFAULT_INTENTS)

    @property
    def all_actions(self) -> set[str]:
        forms = set(self.forms)
        validators = {f"validate_{name}" for name in forms}
        return set(self.actions) | set(self.responses) | forms | set(DEFAULT_ACTIONS) | validators

    def is_custom_action(self, name: str) -> bool:
        return name in self.actions and name not in self.responses and name not in DEFAULT_ACTIONS

    def as_rasa_dict(self) -> dict[str, Any]:
        """The domain as rasa-sdk actions receive it (``Domain.as_dict()`` shape)."""
        return {
            "version": "3.1",
            "intents": list(self.intents),
            "entities": list(self.entities),
            "slots": {
                s.name: {
                    "type": s.type, "initial_value": s.initial_value,
                    "influence_conversation": s.influence_conversation,
                    "mappings": [_mapping_dict(m) for m in s.mappings],
                    **({"values": list(s.values)} if s.values else {}),
                }
                for s in self.slots.values()
            },
            "responses": plain(self.responses),
            "actions": list(self.actions),
            "forms": {
                f.name: {"required_slots": list(f.required_slots), **({"ignored_intents": list(f.ignored_intents)} if f.ignored_intents else {})}
                for f in self.forms.values()
            },
            "session_config": {
                "session_expiration_time": self.session_expiration_minutes,
                "carry_over_slots_to_new_session": self.carry_over_slots,
            },
        }


def _mapping_dict(mapping: SlotMapping) -> dict[str, Any]:
    data: dict[str, Any] = {"type": mapping.type}
    for key in ("entity", "role", "group", "action"):
        if getattr(mapping, key):
            data[key] = getattr(mapping, key)
    if mapping.intent:
        data["intent"] = list(mapping.intent)
    if mapping.not_intent:
        data["not_intent"] = list(mapping.not_intent)
    if mapping.value is not None:
        data["value"] = mapping.value
    if mapping.conditions:
        data["conditions"] = [
            {k: v for k, v in (("active_loop", loop), ("requested_slot", req)) if v is not None}
            for loop, req in mapping.conditions
        ]
    return data


def _names(value: Any, *, file: str, key: str, line: int) -> list[tuple[str, int]]:
    """A list of names, where items may be ``- name`` or ``- name: {options}``."""
    if value is None:
        return []
    if not isinstance(value, LList):
        raise RasaFileError(f"'{key}' must be a list", file=file, line=line)
    names = []
    for index, item in enumerate(value):
        if isinstance(item, str):
            names.append((str(item), value.line_of(index)))
        elif isinstance(item, LDict) and len(item) == 1:
            names.append((str(next(iter(item))), value.line_of(index)))
        else:
            raise RasaFileError(f"'{key}' items must be names", file=file, line=value.line_of(index))
    return names


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return (str(value),)


def _parse_mapping(raw: Any, *, file: str, slot: str, line: int) -> SlotMapping:
    if not isinstance(raw, LDict) or "type" not in raw:
        raise RasaFileError(f"slot '{slot}': each mapping needs a 'type'", file=file, line=line)
    kind = str(raw["type"])
    if kind not in MAPPING_TYPES:
        raise RasaFileError(f"slot '{slot}': unknown mapping type '{kind}' (expected one of {sorted(MAPPING_TYPES)})", file=file, line=raw.line_of("type"))
    if kind == "from_entity" and not raw.get("entity"):
        raise RasaFileError(f"slot '{slot}': from_entity mapping needs 'entity'", file=file, line=raw.line)
    if kind in ("from_intent", "from_trigger_intent") and "value" not in raw:
        raise RasaFileError(f"slot '{slot}': {kind} mapping needs 'value'", file=file, line=raw.line)
    conditions = []
    for cond in raw.get("conditions") or []:
        if not isinstance(cond, dict):
            raise RasaFileError(f"slot '{slot}': mapping conditions must be mappings", file=file, line=raw.line)
        conditions.append((cond.get("active_loop"), cond.get("requested_slot")))
    return SlotMapping(
        type=kind, entity=raw.get("entity"), intent=_as_tuple(raw.get("intent")),
        not_intent=_as_tuple(raw.get("not_intent")), value=plain(raw.get("value")),
        role=raw.get("role"), group=raw.get("group"), action=raw.get("action"),
        conditions=tuple(conditions), line=raw.line,
    )


def _parse_slots(raw: Any, *, file: str, line: int, warnings: list[str]) -> dict[str, Slot]:
    if raw is None:
        return {}
    if not isinstance(raw, LDict):
        raise RasaFileError("'slots' must be a mapping of slot names", file=file, line=line)
    slots: dict[str, Slot] = {}
    for name, spec in raw.items():
        where = raw.line_of(name)
        if not isinstance(spec, LDict):
            raise RasaFileError(f"slot '{name}' must be a mapping with a 'type'", file=file, line=where)
        kind = str(spec.get("type", "any"))
        if kind not in SLOT_TYPES and "." not in kind:
            raise RasaFileError(f"slot '{name}': unknown type '{kind}' (expected one of {sorted(SLOT_TYPES)})", file=file, line=spec.line_of("type"))
        mappings_raw = spec.get("mappings")
        if mappings_raw is not None and not isinstance(mappings_raw, LList):
            raise RasaFileError(f"slot '{name}': 'mappings' must be a list", file=file, line=spec.line_of("mappings"))
        mapping_items: LList = mappings_raw if mappings_raw is not None else LList()
        mappings = tuple(
            _parse_mapping(m, file=file, slot=name, line=mapping_items.line_of(i) if mapping_items.lines else where)
            for i, m in enumerate(mapping_items)
        )
        if kind == "categorical" and not spec.get("values"):
            warnings.append(f"{file}:{where}: slot '{name}' is categorical but has no 'values'")
        influence = spec.get("influence_conversation", kind != "any")
        slots[name] = Slot(
            name=name, type=kind, initial_value=plain(spec.get("initial_value")),
            influence_conversation=bool(influence), mappings=mappings,
            values=tuple(plain(spec.get("values") or ())), line=where,
        )
    return slots


def _parse_responses(raw: Any, *, file: str, line: int, warnings: list[str]) -> dict[str, list[dict[str, Any]]]:
    if raw is None:
        return {}
    if not isinstance(raw, LDict):
        raise RasaFileError("'responses' must be a mapping of response names", file=file, line=line)
    responses: dict[str, list[dict[str, Any]]] = {}
    for name, variations in raw.items():
        where = raw.line_of(name)
        if not isinstance(variations, LList) or not variations:
            raise RasaFileError(f"response '{name}' must be a non-empty list of variations", file=file, line=where)
        for index, variation in enumerate(variations):
            vline = variations.line_of(index)
            if not isinstance(variation, LDict):
                raise RasaFileError(f"response '{name}': each variation must be a mapping (e.g. '- text: ...')", file=file, line=vline)
            unknown = set(variation) - RESPONSE_KEYS
            if unknown:  # Rasa's schema allows them; Switchboard does not use them
                warnings.append(f"{file}:{vline}: response '{name}': unknown key(s) {sorted(unknown)}, ignored")
            if not ({"text", "image", "custom", "attachment", "buttons", "elements", "quick_replies"} & set(variation)):
                raise RasaFileError(f"response '{name}': a variation needs text, image, custom, buttons or attachment", file=file, line=vline)
            for button in variation.get("buttons") or []:
                if not isinstance(button, dict) or "title" not in button or "payload" not in button:
                    raise RasaFileError(f"response '{name}': each button needs 'title' and 'payload'", file=file, line=line_of(button, vline))
            for cond in variation.get("condition") or []:
                if not isinstance(cond, dict) or cond.get("type") != "slot" or "name" not in cond:
                    raise RasaFileError(f"response '{name}': conditions must be '{{type: slot, name: ..., value: ...}}'", file=file, line=line_of(cond, vline))
        responses[name] = [dict(plain(v), _line=variations.line_of(i)) for i, v in enumerate(variations)]
    return responses


def _parse_forms(raw: Any, *, file: str, line: int) -> dict[str, Form]:
    if raw is None:
        return {}
    if not isinstance(raw, LDict):
        raise RasaFileError("'forms' must be a mapping of form names", file=file, line=line)
    forms: dict[str, Form] = {}
    for name, spec in raw.items():
        where = raw.line_of(name)
        if spec is None:
            spec = LDict()
        if not isinstance(spec, LDict):
            raise RasaFileError(f"form '{name}' must be a mapping with 'required_slots'", file=file, line=where)
        required = spec.get("required_slots", [])
        if isinstance(required, dict):  # Rasa 2 shape: slot -> mappings
            raise RasaFileError(f"form '{name}': 'required_slots' must be a list of slot names (Rasa 3); move mappings to the slots", file=file, line=spec.line_of("required_slots"))
        if not isinstance(required, list):
            raise RasaFileError(f"form '{name}': 'required_slots' must be a list", file=file, line=spec.line_of("required_slots"))
        forms[name] = Form(name, tuple(str(s) for s in required), _as_tuple(spec.get("ignored_intents")), where)
    return forms


def parse_domain(doc: Any, *, file: str, into: Domain | None = None) -> Domain:
    """Parse one domain document and merge it into ``into`` (a new Domain by default)."""
    domain = into or Domain()
    domain.files.append(file)
    if doc is None:
        return domain
    if not isinstance(doc, LDict):
        raise RasaFileError("expected a mapping at the top level", file=file, line=line_of(doc, 1))
    if "templates" in doc and "responses" not in doc:
        raise RasaFileError("'templates' is Rasa 1; rename it to 'responses'", file=file, line=doc.line_of("templates"))
    for name, line in _names(doc.get("intents"), file=file, key="intents", line=doc.line_of("intents")):
        if name not in domain.intents:
            domain.intents.append(name)
            domain.where[f"intent:{name}"] = (file, line)
    for name, line in _names(doc.get("entities"), file=file, key="entities", line=doc.line_of("entities")):
        if name not in domain.entities:
            domain.entities.append(name)
            domain.where[f"entity:{name}"] = (file, line)
    for name, line in _names(doc.get("actions"), file=file, key="actions", line=doc.line_of("actions")):
        if name not in domain.actions:
            domain.actions.append(name)
            domain.where[f"action:{name}"] = (file, line)
    for name, slot in _parse_slots(doc.get("slots"), file=file, line=doc.line_of("slots"), warnings=domain.warnings).items():
        domain.slots[name] = slot
        domain.where[f"slot:{name}"] = (file, slot.line)
    responses = _parse_responses(doc.get("responses"), file=file, line=doc.line_of("responses"), warnings=domain.warnings)
    for name, variations in responses.items():
        domain.responses[name] = variations
        domain.where[f"response:{name}"] = (file, variations[0].get("_line", 0))
    for name, form in _parse_forms(doc.get("forms"), file=file, line=doc.line_of("forms")).items():
        domain.forms[name] = form
        domain.where[f"form:{name}"] = (file, form.line)
    session = doc.get("session_config")
    if session is not None:
        if not isinstance(session, LDict):
            raise RasaFileError("'session_config' must be a mapping", file=file, line=doc.line_of("session_config"))
        minutes = session.get("session_expiration_time", 60)
        if not isinstance(minutes, int | float) or minutes < 0:
            raise RasaFileError("session_config.session_expiration_time must be minutes (a number >= 0)", file=file, line=session.line_of("session_expiration_time"))
        domain.session_expiration_minutes = float(minutes)
        domain.carry_over_slots = bool(session.get("carry_over_slots_to_new_session", True))
    if domain.forms and REQUESTED_SLOT not in domain.slots:
        domain.slots[REQUESTED_SLOT] = Slot(REQUESTED_SLOT, "any", None, False)
    return domain


def load_domain(path: Path, *, root: Path | None = None) -> Domain:
    """Load ``domain.yml`` or every YAML file of a ``domain/`` directory."""
    files = sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml")) if path.is_dir() else [path]
    domain = Domain()
    for file in files:
        display = str(file.relative_to(root)) if root and file.is_relative_to(root) else str(file)
        parse_domain(load_yaml(file, display=display), file=display, into=domain)
    return domain
