"""Running test stories and NLU evaluations against an engine (``switchboard test``)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core.dialogue.engine import RasaEngine
from core.dialogue.state import DialogueState
from core.dialogue.story_eval import Mode, Predicted, Predictor, StoryOutcome, evaluate_stories
from core.engine import TurnInput, TurnOutput
from core.model import Contact, Conversation, Event, Inbound
from core.rasa.nlu_data import NluData
from core.rasa.stories import Block

IGNORED_ACTIONS = {"action_listen", "action_session_start"}


class Conversator:
    """Drives one conversation through an engine, keeping the transcript like the turn runner does."""

    def __init__(self, engine: RasaEngine, conversation_id: str, *, channel: str = "test", start: datetime | None = None) -> None:
        self.engine = engine
        self.conversation = Conversation(id=conversation_id, bot=engine.bot, contact_id=f"contact-{conversation_id}")
        self.contact = Contact(id=self.conversation.contact_id, bot=engine.bot)
        self.history: list[Event] = []
        self.channel = channel
        self.clock = start or datetime(2025, 1, 1, 9, 0, tzinfo=UTC)
        self.count = 0

    async def say(self, text: str = "", *, payload: str | None = None, after: timedelta = timedelta(seconds=5),
                  language_hint: str | None = None) -> TurnOutput:
        self.count += 1
        self.clock += after
        message = Inbound(
            bot=self.engine.bot, channel=self.channel, channel_user_id="tester", chat_id="tester",
            platform_message_id=f"{self.channel}:{self.count}", text=text, button_payload=payload,
            timestamp=self.clock, language_hint=language_hint,
        )
        output = await self.engine.handle(TurnInput(self.conversation, self.contact, message, tuple(self.history)))
        self.history.extend(output.events)
        self.conversation = output.conversation
        return output


def actions_of(output: TurnOutput) -> list[str]:
    return [e.data["name"] for e in output.events if e.type == "action" and e.data.get("name") not in IGNORED_ACTIONS]


def engine_predictor(engine: RasaEngine) -> Predictor:
    """The engine's policy ensemble as the test runner's pure function of the dialogue state."""
    def predict(state: DialogueState) -> Predicted:
        prediction = engine.ensemble.predict(state)
        return Predicted(prediction.action, prediction.policy, prediction.confidence)
    return predict


def run_test_stories(
    engine: RasaEngine, stories: list[Block], *, mode: Mode = "text", fail_on_prediction_errors: bool = False,
) -> list[StoryOutcome]:
    """``rasa test`` on the stories: one outcome per conversation (a story with ``or`` steps makes several)."""
    return list(evaluate_stories(stories, domain=engine.domain, predict=engine_predictor(engine), parse=engine.nlu.parse,
                                 mode=mode, fail_on_prediction_errors=fail_on_prediction_errors))


def evaluate_nlu(engine: RasaEngine, data: NluData) -> dict[str, Any]:
    """Rasa's ``intent_report.json`` (sklearn classification report) plus misclassified examples."""
    from sklearn.metrics import classification_report

    truth, predicted, errors = [], [], []
    for example in data.examples:
        parse = engine.nlu.parse(example.text)
        label = parse.intent or "None"
        truth.append(example.intent)
        predicted.append(label)
        if label != example.intent:
            errors.append({
                "text": example.text, "intent": example.intent,
                "intent_prediction": {"name": label, "confidence": parse.confidence},
                "file": example.file, "line": example.line,
            })
    labels = sorted(set(truth) | set(predicted))
    report: dict[str, Any] = classification_report(truth, predicted, labels=labels, output_dict=True, zero_division=0)
    if "accuracy" not in report:  # sklearn leaves it out when labels differ from the truth set
        report["accuracy"] = sum(t == p for t, p in zip(truth, predicted, strict=True)) / max(1, len(truth))
    confused: dict[str, Counter[str]] = defaultdict(Counter)
    for t, p in zip(truth, predicted, strict=True):
        if t != p:
            confused[t][p] += 1
    for label in labels:
        if label in report and isinstance(report[label], dict):
            report[label]["confused_with"] = dict(confused[label].most_common(5))
    report.pop("micro avg", None)
    report["misclassified"] = errors
    return report


def write_nlu_report(report: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "intent_report.json"
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    (out / "intent_errors.json").write_text(json.dumps(report["misclassified"], indent=2, ensure_ascii=False), encoding="utf-8")
    return path
