"""Test stories evaluated as ``rasa test`` (Rasa 3.6 ``rasa/core/test.py``) does.

Each story becomes the gold event list Rasa's story reader makes of it (an
``action_listen`` before every user message and at the end, the slots its entities
fill), and the dialogue state is built from those gold events only: at every action
step the policies predict the next action on the state so far, the prediction is
compared with the story, and then the story's own action is applied, right or wrong.
``slot_was_set``, ``active_loop`` and ``bot:`` steps are applied as events, so a
story that skips over a form's questions passes as under Rasa.

``text`` mode (``rasa test``) runs every user text through the NLU and compares intent
and entities with the story; the state still gets the story's own intent and
entities. ``intent`` mode (``rasa test core``) takes the story's intents as given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from core.dialogue.forms import parse_payload
from core.dialogue.state import DialogueState
from core.errors import DialogueError
from core.model import Event
from core.nlu.model import Parse
from core.rasa.domain import Domain
from core.rasa.nlu_data import EntitySpan
from core.rasa.stories import ANY_VALUE, Block, Step

Mode = Literal["text", "intent"]
LISTEN = "action_listen"
SESSION_START = "action_session_start"
CIRCUIT_BREAKER = "circuit breaker tripped"
MAX_PREDICTIONS = 10  # Rasa's max_number_of_predictions per user message
DEFAULT_TEXT_VALUE = "filled"  # what Rasa sets for `slot_was_set: [name]` on text / list slots


@dataclass(frozen=True, slots=True)
class Predicted:
    """One prediction of the policies (the dialogue ensemble's ``Prediction`` reduced to what a test reads)."""

    action: str
    policy: str | None
    confidence: float | None


Predictor = Callable[[DialogueState], Predicted]
Parser = Callable[[str], Parse]


@dataclass(frozen=True, slots=True)
class GoldEvent:
    """One event of a story as Rasa's story reader and training-data generator make it."""

    kind: str  # user | action | slot | active_loop
    name: str | None = None  # intent, action, slot or loop name
    value: Any = None  # slot value
    text: str | None = None  # user text, or the text of a `bot:` step
    entities: tuple[EntitySpan, ...] = ()
    line: int = 0

    @property
    def target(self) -> str:
        """What an action step expects: the action's name, or a `bot:` step's text."""
        return self.name if self.name is not None else self.text or ""


@dataclass(frozen=True, slots=True)
class ActionCheck:
    expected: str
    predicted: str
    policy: str | None
    confidence: float | None

    @property
    def ok(self) -> bool:
        return self.expected == self.predicted


@dataclass(frozen=True, slots=True)
class EntityLabel:
    """An entity as ``rasa test`` compares it: text, offsets, type, value (roles and groups are not compared)."""

    text: str
    start: int
    end: int
    entity: str
    value: str

    def annotated(self) -> str:
        """The entity as Rasa writes it inline, e.g. ``[Berlin](city)``."""
        surface = self.text[self.start:self.end]
        if surface == self.value:
            return f"[{surface}]({self.entity})"
        return f'[{surface}]{{"entity": "{self.entity}", "value": "{self.value}"}}'


@dataclass(frozen=True, slots=True)
class UserCheck:
    text: str
    expected_intent: str | None
    predicted_intent: str | None
    expected_entities: tuple[EntityLabel, ...] = ()
    predicted_entities: tuple[EntityLabel, ...] = ()

    @property
    def intent_ok(self) -> bool:
        return self.expected_intent == self.predicted_intent

    @property
    def entities_ok(self) -> bool:
        return set(self.expected_entities) == set(self.predicted_entities)

    @property
    def ok(self) -> bool:
        return self.intent_ok and self.entities_ok


@dataclass(frozen=True, slots=True)
class Traced:
    """A gold event with what the test found at it (``None``: applied without a check)."""

    event: GoldEvent
    check: ActionCheck | UserCheck | None = None


@dataclass(slots=True)
class StoryOutcome:
    name: str
    file: str
    line: int
    trace: list[Traced] = field(default_factory=list)
    end_checkpoint: bool = False

    @property
    def action_checks(self) -> list[ActionCheck]:
        return [t.check for t in self.trace if isinstance(t.check, ActionCheck)]

    @property
    def user_checks(self) -> list[UserCheck]:
        return [t.check for t in self.trace if isinstance(t.check, UserCheck)]

    @property
    def passed(self) -> bool:
        return all(t.check.ok for t in self.trace if t.check is not None)

    def failures(self) -> list[str]:
        """One ``file:line: what`` line per wrong prediction."""
        lines = []
        for traced in self.trace:
            check, where = traced.check, f"{self.file}:{traced.event.line}"
            if isinstance(check, ActionCheck) and not check.ok:
                by = f" by {check.policy}" if check.policy else ""
                lines.append(f"{where}: predicted '{check.predicted}'{by}, the story has '{check.expected}'")
            elif isinstance(check, UserCheck) and not check.intent_ok:
                wanted = f"the story has '{check.expected_intent}'" if check.expected_intent else "the story gives no intent"
                lines.append(f"{where}: '{check.text}' was understood as '{check.predicted_intent}', {wanted}")
            elif isinstance(check, UserCheck) and not check.entities_ok:
                found = ", ".join(e.annotated() for e in check.predicted_entities) or "none"
                wanted = ", ".join(e.annotated() for e in check.expected_entities) or "none"
                lines.append(f"{where}: entities in '{check.text}' were {found}, the story has {wanted}")
        return lines


class WrongPrediction(DialogueError):
    """``--fail-on-prediction-errors``: the first wrong prediction ends the test (``str()`` holds the story so far)."""

    def __init__(self, message: str, outcome: StoryOutcome) -> None:
        self.outcome = outcome
        super().__init__(message)


# ---- gold events ------------------------------------------------------------------------


def story_paths(story: Block) -> list[list[Step]]:
    """Every path through a story's ``or`` steps (one conversation each, as Rasa generates them)."""
    paths: list[list[Step]] = [[]]
    for step in story.steps:
        if step.kind == "or":
            paths = [path + [alternative] for path in paths for alternative in step.alternatives]
        else:
            for path in paths:
                path.append(step)
    return paths


def _story_slot_value(domain: Domain, name: str, value: Any) -> Any:
    if value is not ANY_VALUE:
        return value
    slot = domain.slots.get(name)
    if slot is not None and slot.type == "text":
        return DEFAULT_TEXT_VALUE
    if slot is not None and slot.type == "list":
        return [DEFAULT_TEXT_VALUE]
    return None


def slots_for_entities(domain: Domain, entities: Iterable[EntitySpan]) -> list[tuple[str, Any]]:
    """The slots Rasa's story reader fills from a user step's entities (``from_entity`` mappings outside forms)."""
    entities = list(entities)
    filled: list[tuple[str, Any]] = []
    for slot in domain.slots.values():
        values: list[Any] = []
        for mapping in slot.mappings:
            if mapping.type != "from_entity" or (mapping.conditions and mapping.conditions[0][0] is not None):
                continue
            values.extend(e.value for e in entities
                          if e.entity == mapping.entity and e.role == mapping.role and e.group == mapping.group)
        if values:
            filled.append((slot.name, values if slot.type == "list" else values[-1]))
    return filled


def gold_events(domain: Domain, steps: Iterable[Step]) -> tuple[list[GoldEvent], bool]:
    """(events, ends in a checkpoint): the story's steps with the implicit listens and entity slots."""
    events: list[GoldEvent] = []
    steps = list(steps)
    ends_in_checkpoint = bool(steps) and steps[-1].kind == "checkpoint"

    def listen() -> None:
        if not events or events[-1].kind != "action" or events[-1].name != LISTEN:
            events.append(GoldEvent("action", LISTEN))

    for step in steps:
        if step.kind == "intent":
            listen()
            events.append(GoldEvent("user", step.name, text=step.text, entities=step.spans, line=step.line))
            events.extend(GoldEvent("slot", name, value, line=step.line) for name, value in slots_for_entities(domain, step.spans))
        elif step.kind == "action":
            events.append(GoldEvent("action", step.name, line=step.line))
        elif step.kind == "bot":
            events.append(GoldEvent("action", None, text=step.text, line=step.line))
        elif step.kind == "slot" and step.name:
            events.append(GoldEvent("slot", step.name, _story_slot_value(domain, step.name, step.value), line=step.line))
        elif step.kind == "active_loop":
            events.append(GoldEvent("active_loop", step.name, line=step.line))
    if not ends_in_checkpoint:
        listen()
    return events, ends_in_checkpoint


# ---- applying events to the state ----------------------------------------------------------


class _Tracker:
    """The partial tracker: a `DialogueState` fed with transcript events on a test clock."""

    def __init__(self, domain: Domain) -> None:
        self.state = DialogueState.initial(domain)
        self.clock = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)
        self.count = 0
        self.actions_since_listen = 0

    def apply(self, kind: str, data: dict[str, Any]) -> None:
        self.clock += timedelta(milliseconds=10)
        self.state.apply(Event(kind, data, channel="test", timestamp=self.clock))

    def apply_gold(self, event: GoldEvent) -> None:
        if event.kind == "user":
            self.count += 1
            entities = [span.as_rasa("story") for span in event.entities]
            parse = {"intent": {"name": event.name, "confidence": 1.0}, "entities": entities, "text": event.text}
            self.apply("user", {"text": event.text, "parse_data": parse, "input_channel": "test",
                                "message_id": f"test:{self.count}", "metadata": {}})
        elif event.kind == "action" and event.name is not None:
            self.actions_since_listen = 0 if event.name in (LISTEN, SESSION_START) else self.actions_since_listen + 1
            self.apply("action", {"name": event.name, "policy": None, "confidence": 1.0})
        elif event.kind == "action":  # a `bot:` step: Rasa applies it as an action named by its text
            self.actions_since_listen += 1
            self.apply("action", {"name": event.text, "action_text": event.text, "policy": None, "confidence": 1.0})
        elif event.kind == "slot":
            self.apply("slot", {"name": event.name, "value": event.value})
        elif event.kind == "active_loop":
            self.apply("active_loop", {"name": event.name})


# ---- predictions ---------------------------------------------------------------------------


def _predict_action(tracker: _Tracker, predict: Predictor, domain: Domain, expected: str) -> Predicted:
    """Rasa's ``_run_action_prediction``: a form that might have been rejected is rejected, then asked again."""
    if tracker.actions_since_listen >= MAX_PREDICTIONS and tracker.state.latest_action != LISTEN:
        return Predicted(CIRCUIT_BREAKER, None, None)
    predicted = predict(tracker.state)
    loop = tracker.state.active_loop
    if predicted.policy and predicted.action != expected and predicted.action == loop and loop in domain.forms:
        tracker.apply("action_execution_rejected", {"name": loop, "policy": predicted.policy})
        predicted = predict(tracker.state)
    return predicted


def entity_labels(text: str, entities: Iterable[dict[str, Any]]) -> tuple[EntityLabel, ...]:
    return tuple(
        EntityLabel(text, int(e.get("start", 0)), int(e.get("end", 0)), str(e.get("entity", "")), str(e.get("value", "")))
        for e in entities
    )


def parse_user_text(parse: Parser, text: str) -> tuple[str | None, tuple[dict[str, Any], ...]]:
    """(intent, entities) of a user text as the bot would read it (``/intent{...}`` payloads included)."""
    if text.startswith("/"):
        payload = parse_payload(text)
        if payload is not None:
            intent, _, values = payload
            return intent, tuple({"entity": k, "value": v, "start": 0, "end": len(text)} for k, v in values.items())
    result = parse(text)
    return result.intent, result.entities


def _check_user(event: GoldEvent, parse: Parser) -> UserCheck:
    text = event.text or ""
    expected = entity_labels(text, (span.as_rasa() for span in event.entities)) if event.text is not None else ()
    if event.text is None:  # an intent without a text: Rasa takes the story's parse as the prediction
        return UserCheck(text, event.name, event.name, expected, expected)
    intent, entities = parse_user_text(parse, text)
    if text.startswith("/"):  # Rasa reads a payload's entities out of the story text the same way
        expected = entity_labels(text, parse_user_text(parse, text)[1])
    return UserCheck(text, event.name, intent, expected, entity_labels(text, entities))


def evaluate_story(
    name: str, file: str, line: int, steps: list[Step], *, domain: Domain, predict: Predictor,
    parse: Parser, mode: Mode = "text", fail_on_prediction_errors: bool = False,
) -> StoryOutcome:
    """One conversation of a test story; raises `WrongPrediction` at the first mistake when asked to."""
    events, ends_in_checkpoint = gold_events(domain, steps)
    outcome = StoryOutcome(name, file, line, end_checkpoint=ends_in_checkpoint)
    tracker = _Tracker(domain)
    for index, event in enumerate(events):
        check: ActionCheck | UserCheck | None = None
        if index > 0 and event.kind == "action":
            predicted = _predict_action(tracker, predict, domain, event.target)
            check = ActionCheck(event.target, predicted.action, predicted.policy, predicted.confidence)
        elif event.kind == "user" and mode == "text":
            check = _check_user(event, parse)
        outcome.trace.append(Traced(event, check))
        if fail_on_prediction_errors and check is not None and not check.ok:
            what = "action" if isinstance(check, ActionCheck) else "intent or entities"
            raise WrongPrediction(f"the model predicted a wrong {what}: {outcome.failures()[-1]}", outcome)
        tracker.apply_gold(event)
    return outcome


def evaluate_stories(
    stories: Iterable[Block], *, domain: Domain, predict: Predictor, parse: Parser,
    mode: Mode = "text", fail_on_prediction_errors: bool = False,
) -> Iterator[StoryOutcome]:
    for story in stories:
        for steps in story_paths(story):
            yield evaluate_story(story.name, story.file, story.line, steps, domain=domain, predict=predict, parse=parse,
                                 mode=mode, fail_on_prediction_errors=fail_on_prediction_errors)
