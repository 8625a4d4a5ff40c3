"""Training trackers from stories and rules, as Rasa's ``TrainingDataGenerator`` makes them.

Stories are cut at checkpoints into pieces and glued back together (``or`` steps
expanded); the resulting original trackers feed memoization and rules, and
``augmentation_factor`` extra trackers (story ends glued to story starts) feed the
machine-learned policy. Rule trackers start with the rule-snippet action ``...``
(unless ``conversation_start``), carry their conditions, and end with
``action_listen`` (or ``...`` when ``wait_for_user_input: false``).
Each tracker is turned into (states, action) examples with `DialogueState`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.dialogue.featurize import SHOULD_NOT_BE_SET, State
from core.dialogue.state import LISTEN, DialogueState
from core.model import Event
from core.rasa.domain import Domain
from core.rasa.stories import ANY_VALUE, Block, Step

RULE_SNIPPET = "..."
FILLED = "filled"  # Rasa's value for `slot_was_set: [name]` without a value
MAX_OR_PATHS = 64
MAX_TRACKERS = 5000
MAX_CHECKPOINT_DEPTH = 6

IntentOf = Callable[[str], tuple[str | None, list[dict[str, object]]]]


@dataclass(frozen=True, slots=True)
class Tracker:
    name: str
    events: tuple[Event, ...]
    is_rule: bool = False
    is_augmented: bool = False


@dataclass(frozen=True, slots=True)
class Example:
    states: tuple[State, ...]  # the whole history up to this action
    action: str
    tracker: Tracker


def expand_or(steps: Sequence[Step]) -> list[list[Step]]:
    """Every path through ``or`` alternatives (bounded)."""
    paths: list[list[Step]] = [[]]
    for step in steps:
        if step.kind == "or":
            paths = [[*p, alt] for p in paths for alt in step.alternatives][:MAX_OR_PATHS]
        else:
            for path in paths:
                path.append(step)
    return paths


def _entities(step: Step, domain: Domain) -> list[dict[str, object]]:
    """Story entities with their roles and groups."""
    spans = getattr(step, "spans", ())
    if spans:
        found: list[dict[str, object]] = []
        for span in spans:
            entity: dict[str, object] = {"entity": span.entity, "value": span.value}
            if span.role:
                entity["role"] = span.role
            if span.group:
                entity["group"] = span.group
            found.append(entity)
        return found
    out: list[dict[str, object]] = []
    for name, value in step.entities:
        if name in ("role", "group") and name not in domain.entities and out:
            out[-1][name] = value
            continue
        item: dict[str, object] = {"entity": name}
        if value is not ANY_VALUE:
            item["value"] = value
        out.append(item)
    return out


def entity_slots(entities: Sequence[dict[str, object]], domain: Domain) -> list[Event]:
    """Rasa's ``Domain.slots_for_entities``: unconditioned ``from_entity`` mappings fill their slots."""
    events: list[Event] = []
    for slot in domain.slots.values():
        values = [
            e.get("value") for mapping in slot.mappings if mapping.type == "from_entity" and not mapping.conditions
            for e in entities
            if e.get("entity") == mapping.entity and e.get("role") == mapping.role and e.get("group") == mapping.group
        ]
        values = [FILLED if v is None else v for v in values]
        if values:
            events.append(Event("slot", {"name": slot.name, "value": values if slot.type == "list" else values[-1]}))
    return events


def step_events(step: Step, domain: Domain, *, rule: bool, intent_of: IntentOf | None) -> list[Event]:
    """The Rasa events of one story step (user texts without intent go through the NLU)."""
    if step.kind == "intent":
        intent, entities = step.name, _entities(step, domain)
        if intent is None and step.text is not None and intent_of is not None:
            intent, found = intent_of(step.text)
            entities = entities or found
        parse = {"intent": {"name": intent, "confidence": 1.0}, "entities": entities, "text": step.text}
        return [Event("user", {"text": step.text, "parse_data": parse}), *entity_slots(entities, domain)]
    if step.kind == "action" and step.name:
        return [Event("action", {"name": step.name})]
    if step.kind == "bot":
        return [Event("bot", {"text": step.text})]
    if step.kind == "slot" and step.name:
        value = FILLED if step.value is ANY_VALUE else step.value
        if value is None and rule:
            value = SHOULD_NOT_BE_SET
        return [Event("slot", {"name": step.name, "value": value})]
    if step.kind == "active_loop":
        name = step.name if step.name is not None else (SHOULD_NOT_BE_SET if rule else None)
        return [Event("active_loop", {"name": name})]
    return []


@dataclass(slots=True)
class _Piece:
    name: str
    starts: list[str]
    events: list[Event]
    ends: list[str]


def _pieces(stories: Sequence[Block], domain: Domain, intent_of: IntentOf | None) -> list[_Piece]:
    """Stories cut at checkpoints: a checkpoint after steps ends a piece and starts the next."""
    pieces: list[_Piece] = []
    for story in stories:
        for path in expand_or(story.steps):
            current = _Piece(story.name, [], [], [])
            closed: _Piece | None = None
            for step in path:
                if step.kind == "checkpoint":
                    name = step.name or ""
                    if current.events:
                        current.ends.append(name)
                        pieces.append(current)
                        closed, current = current, _Piece(story.name, [name], [], [])
                    else:
                        current.starts.append(name)
                        if closed is not None:
                            closed.ends.append(name)
                    continue
                current.events.extend(step_events(step, domain, rule=False, intent_of=intent_of))
                closed = None
            if current.events or closed is None:
                pieces.append(current)
    return pieces


def _first_action_unpredictable(events: list[Event]) -> list[Event]:
    """Rasa does not learn a story's first action when it comes before any user message: it has no history."""
    for index, event in enumerate(events):
        if event.type == "user":
            break
        if event.type == "action":
            return [*events[:index], Event("action", {**event.data, "unpredictable": True}), *events[index + 1:]]
    return list(events)


def story_trackers(stories: Sequence[Block], domain: Domain, *, intent_of: IntentOf | None = None,
                   augmentation_factor: int = 0, seed: int = 42) -> list[Tracker]:
    """Original trackers (checkpoints joined) plus up to ``augmentation_factor * 10`` glued ones."""
    pieces = _pieces(stories, domain, intent_of)
    by_start: dict[str, list[_Piece]] = {}
    for piece in pieces:
        for start in piece.starts:
            by_start.setdefault(start, []).append(piece)
    trackers: list[Tracker] = []

    def walk(name: str, events: list[Event], ends: list[str], depth: int) -> None:
        following = [p for end in ends for p in by_start.get(end, [])]
        if not following or depth >= MAX_CHECKPOINT_DEPTH or len(trackers) >= MAX_TRACKERS:
            if not ends:  # a story's end: Rasa appends the final action_listen
                events = [*events, Event("action", {"name": LISTEN})]
            trackers.append(Tracker(name, tuple(events)))
            return
        for piece in following:
            walk(name if piece.name == name else f"{name} > {piece.name}", events + piece.events, piece.ends, depth + 1)

    for piece in pieces:
        if not piece.starts:
            walk(piece.name, _first_action_unpredictable(piece.events), piece.ends, 0)
    if augmentation_factor > 0 and len(trackers) > 1:
        rng = random.Random(seed)
        limit = augmentation_factor * 10
        originals = list(trackers)
        for _ in range(limit):
            first, second = rng.choice(originals), rng.choice(originals)
            trackers.append(Tracker(f"{first.name} + {second.name}", first.events + second.events, is_augmented=True))
    return trackers


def rule_trackers(rules: Sequence[Block], domain: Domain, *, intent_of: IntentOf | None = None) -> list[Tracker]:
    trackers: list[Tracker] = []
    for rule in rules:
        conditions = [e for step in rule.condition for e in step_events(step, domain, rule=True, intent_of=intent_of)]
        for path in expand_or(rule.steps):
            events = list(conditions)
            if not rule.conversation_start:
                events.append(Event("action", {"name": RULE_SNIPPET}))
            for step in path:
                events.extend(step_events(step, domain, rule=True, intent_of=intent_of))
            if rule.wait_for_user_input:
                events.append(Event("action", {"name": LISTEN}))
            else:
                events.append(Event("action", {"name": RULE_SNIPPET}))
            trackers.append(Tracker(rule.name, tuple(events), is_rule=True))
    return trackers


def examples(tracker: Tracker, domain: Domain) -> list[Example]:
    """(states so far, action) for every action of the tracker, as Rasa's featurizer labels them."""
    state = DialogueState.initial(domain)
    state.keep_events = False
    if tracker.is_rule:
        state.omit_unset_slots = True
        state.slots = dict.fromkeys(domain.slots)
    out: list[Example] = []
    for event in tracker.events:
        if event.type == "action" and not event.data.get("unpredictable"):
            out.append(Example(tuple(state.states()), event.data["name"], tracker))
        elif event.type == "user" and state.prev_action != LISTEN:
            out.append(Example(tuple(state.states()), LISTEN, tracker))
        state.apply(event)
    return out
