"""`RasaEngine`: runs a Rasa 3.x project (NLU, rules, forms, stories, custom actions) behind
the ``core.engine.Engine`` protocol.

``RasaEngine.load`` is synchronous and may train (seconds): call it off the event loop
(``await asyncio.to_thread(RasaEngine.load, ...)``). Models are cached in
``<project>/.switchboard-models/`` (git-ignored) under a hash of the training data:
the NLU model, and the dialogue ML policy (``dialogue-<hash>.npz``; rules and
memoization are rebuilt from the stories in milliseconds).

Dialogue: ``RasaEngine.ensemble.predict(state)`` is the one decision point (see
`core.dialogue.ensemble`): RulePolicy, (Augmented)MemoizationPolicy and the ML policy
that stands in for TEDPolicy, as config.yml lists them. A project's own custom
actions win over built-ins of the same name (``action_session_start`` included).

What a turn reports besides replies and events:
- ``handoff``: reason ``"requested"`` (an intent of ``switchboard.handoff_intents`` in
  config.yml, default ``human_handoff``, or the built-in ``action_switchboard_handoff``),
  ``"fallback"`` (two-stage fallback: offer of a person accepted, or fallback exhausted;
  or a second ``action_default_fallback`` in a row), ``"action"`` (a custom action
  returned ``{"event": "handoff", "reason": ...}``).
- ``meta["system_action"] = "forget_contact"`` when the built-in ``action_switchboard_forget_contact``
  runs (the demo runs it after the customer confirms deleting their data).
"""

from __future__ import annotations

import functools
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog

from core.dialogue.actions import ActionRunner, choose_runner
from core.dialogue.dialogue_model import build_ensemble, nlu_intent_of
from core.dialogue.ensemble import PolicyEnsemble
from core.dialogue.forms import extract_slots, parse_payload
from core.dialogue.responses import render_response
from core.dialogue.state import OWN_EVENT_TYPES, DialogueState
from core.dialogue.turn import Policies, Turn
from core.engine import Reply, TurnInput, TurnOutput, Understanding
from core.errors import DialogueError
from core.model import Contact, Conversation, Inbound
from core.nlu.duckling import duckling_from_pipeline
from core.nlu.features import tokenize
from core.nlu.language import LanguageDetector
from core.nlu.language_choice import (
    LanguageChoice,
    LanguageSignals,
    choose_language,
    explicit_choice,
    phone_language,
)
from core.nlu.model import NluModel, Parse, load_or_train
from core.rasa.project import RasaProject, load_project
from core.rasa.validate import check_project

log = structlog.get_logger(__name__)

MODEL_DIR_NAME = ".switchboard-models"
CHOICE_CACHE_SIZE = 4096  # language choices remembered by their signals


@dataclass(slots=True)
class _Message:
    text: str
    parse: Parse
    is_payload: bool


class RasaEngine:
    """A bot's brain; one instance per bot, shared by all its conversations (stateless per turn)."""

    def __init__(
        self,
        project: RasaProject,
        nlu: NluModel,
        *,
        bot: str,
        languages: list[str],
        default_language: str,
        runner: ActionRunner | None,
        seed: int | None = None,
        ensemble: PolicyEnsemble | None = None,
    ) -> None:
        self.project = project
        self.domain = project.domain
        self.domain_dict = project.domain.as_rasa_dict()
        self.nlu = nlu
        self.bot = bot
        self.languages = list(languages) or [default_language]
        self.default_language = default_language
        self.detector: LanguageDetector = nlu.language_detector(self.languages)
        # The turn hooks and the engine both ask for a message's language: detect each text once.
        self._detect_confidence = functools.lru_cache(maxsize=1024)(self.detector.detect_confidence)
        self.phone_prefixes: dict[str, str] | None = None  # None: core.nlu.language_choice's defaults
        self._choices: dict[tuple[str | None, str | None, str | None, str | None, str | None, int], LanguageChoice] = {}
        self.runner = runner
        self.rng = random.Random(seed)
        config = project.config
        if ensemble is None:
            ensemble, _ = build_ensemble(project, intent_of=nlu_intent_of(nlu.parse), model_dir=None)
        self.ensemble: PolicyEnsemble = ensemble
        self.policies = Policies(ensemble=self.ensemble, handoff_intents=config.handoff_intents)

    # ---- construction ---------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        project_dir: Path,
        *,
        bot: str,
        languages: list[str],
        default_language: str,
        action_endpoint: str | None = None,
        actions: str = "auto",
        model_dir: Path | None = None,
        seed: int | None = None,
        validate: bool = True,
    ) -> RasaEngine:
        """Load the project, train the NLU if no up-to-date model is saved, return a ready engine.

        Raises `RasaFileError` (a `DialogueError`) for malformed files and `DialogueError`
        listing every reference error when ``validate`` is on.
        """
        started = time.perf_counter()
        project = load_project(Path(project_dir))
        if validate:
            errors = check_project(project)
            if errors:
                raise DialogueError("invalid bot project:\n" + "\n".join(errors))
        config = project.config
        nlu, trained = load_or_train(
            project.nlu,
            fingerprint=project.nlu_fingerprint(),
            model_dir=model_dir or project.root / MODEL_DIR_NAME,
            entities=project.domain.entities,
            threshold=config.fallback_threshold,
            ambiguity_threshold=config.ambiguity_threshold,
        )
        nlu.duckling = duckling_from_pipeline(config.pipeline)
        runner = choose_runner(project, endpoint=action_endpoint, mode=actions)  # in-process | endpoint | auto
        ensemble, trained_dialogue = build_ensemble(
            project, intent_of=nlu_intent_of(nlu.parse), model_dir=model_dir or project.root / MODEL_DIR_NAME,
            nlu_fingerprint=project.nlu_fingerprint(),
        )
        trained = trained or trained_dialogue
        engine = cls(project, nlu, bot=bot, languages=languages, default_language=default_language, runner=runner,
                     seed=seed, ensemble=ensemble)
        log.info("engine.loaded", bot=bot, trained=trained, seconds=round(time.perf_counter() - started, 3))
        return engine

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.close()

    # ---- Engine protocol ------------------------------------------------------------------

    def understand(self, text: str) -> Understanding:
        parse = self.nlu.parse(text)
        return Understanding(
            intent=parse.intent, confidence=parse.confidence, entities=parse.entities,
            language=self.detector.detect(text), ranking=parse.ranking,
        )

    def render(self, response: str, conversation: Conversation, channel: str, **variables: Any) -> list[Reply]:
        slots = {**conversation.slots, "language": conversation.language or self.default_language}
        rendered = render_response(self.domain.responses, response, slots, channel, self.rng, variables)
        return [rendered[0]] if rendered else []

    async def handle(self, turn: TurnInput) -> TurnOutput:
        message = turn.message
        conversation = turn.conversation
        history = [e for e in turn.history if e.type not in OWN_EVENT_TYPES]
        # a history without a session start is a window into a longer session
        window = bool(history) and not any(e.type in ("session_started", "restart") for e in history)
        state = DialogueState.from_history(self.domain, history, window=window)
        for name, value in conversation.slots.items():
            if name in self.domain.slots or name == "language":
                state.slots[name] = value
        # The conversation record is the source of truth for the form: the history the
        # runner passes is a window and may begin after the form was activated.
        state.active_loop = conversation.active_form
        state.slots_changed()
        incoming = self._read(message.button_payload, message.text)
        choice = self._language(incoming, message, conversation, turn.contact)
        language = choice.language
        runtime = Turn(
            domain=self.domain, domain_dict=self.domain_dict, policies=self.policies, runner=self.runner,
            state=state, sender_id=conversation.id, channel=message.channel, language=language,
            timestamp=message.timestamp, rng=self.rng,
        )
        expired = self._session_expired(state, message.timestamp)
        runtime.log("user", {
            "text": incoming.text,
            "parse_data": incoming.parse.parse_data(),
            "input_channel": message.channel,
            "message_id": message.platform_message_id,
            "metadata": {},
        })
        if not history or expired or incoming.parse.intent == "session_start":
            await runtime.begin_session()
            # a /session_start message only starts the session; Rasa predicts nothing after action_session_start
            runtime.stop = incoming.parse.intent == "session_start"
        if "language" in self.domain.slots and state.slots.get("language") != language:
            runtime.set_slot("language", language)
        entities = [dict(e) for e in incoming.parse.entities]
        for name, value in extract_slots(
            self.domain, slots=state.slots, active_loop=state.active_loop, intent=incoming.parse.intent,
            entities=entities, text=incoming.text, is_payload=incoming.is_payload,
        ).items():
            runtime.set_slot(name, value)
        if incoming.is_payload:
            for entity in entities:
                slot_name = str(entity.get("entity"))
                if slot_name in self.domain.slots and slot_name not in self.domain.entities and state.slots.get(slot_name) != entity.get("value"):
                    runtime.set_slot(slot_name, entity.get("value"))
        await runtime.run()
        if runtime.handoff is None and state.latest_intent in self.policies.handoff_intents:
            runtime.request_handoff("requested")
        updated = conversation.evolve(
            slots={k: v for k, v in state.slots.items() if k in self.domain.slots},
            active_form=state.active_loop,
            # remembered only when the customer gave evidence; the default alone says nothing about them
            language=language if choice.from_evidence else conversation.language,
        )
        understanding = Understanding(
            intent=incoming.parse.intent, confidence=incoming.parse.confidence,
            entities=incoming.parse.entities, language=language, ranking=incoming.parse.ranking,
        )
        log.info("dialogue.turn", bot=self.bot, conversation=conversation.id, intent=incoming.parse.intent,
                 actions=[e.data.get("name") for e in runtime.events if e.type == "action"],
                 handoff=runtime.handoff.reason if runtime.handoff else None)
        return TurnOutput(
            events=tuple(runtime.events), replies=tuple(runtime.replies), conversation=updated,
            understanding=understanding, handoff=runtime.handoff, meta=runtime.meta,
        )

    # ---- helpers --------------------------------------------------------------------------

    def _read(self, payload: str | None, text: str) -> _Message:
        """A button payload (``/intent{...}``) as Rasa treats it, else the NLU parse of the text."""
        for candidate in (payload, text if text.startswith("/") else None):
            if not candidate:
                continue
            parsed = parse_payload(candidate)
            if parsed and parsed[0] in self.domain.all_intents:
                intent, confidence, values = parsed
                entities = tuple({"entity": k, "value": v, "start": 0, "end": 0, "extractor": "payload"} for k, v in values.items())
                parse = Parse(candidate, intent, confidence, ((intent, confidence),), entities)
                return _Message(candidate, parse, True)
        return _Message(text, self.nlu.parse(text), False)

    def choose_language(self, message: Inbound, conversation: Conversation, contact: Contact | None) -> LanguageChoice:
        """The reply language for ``message`` (see `core.nlu.language_choice`); also used by the turn hooks."""
        payload = message.button_payload or (message.text if message.text.startswith("/") else None)
        return self._choose(message, conversation, contact, None if payload else message.text, payload)

    def _language(self, incoming: _Message, message: Inbound, conversation: Conversation,
                  contact: Contact | None) -> LanguageChoice:
        return self._choose(message, conversation, contact, None if incoming.is_payload else incoming.text,
                            incoming.text if incoming.is_payload else None)

    def _choose(self, message: Inbound, conversation: Conversation, contact: Contact | None,
                text: str | None, payload: str | None) -> LanguageChoice:
        phone = (contact.phone if contact else None) or message.shared_phone
        # The turn hooks and the engine both ask once per turn: the same signals give the same choice.
        key = (text, payload, conversation.language, message.language_hint, phone, id(self.phone_prefixes))
        choice = self._choices.get(key)
        if choice is None:
            choice = self._choices[key] = self._choice(text, payload, conversation.language, message.language_hint,
                                                       phone)
            if len(self._choices) > CHOICE_CACHE_SIZE:
                self._choices.pop(next(iter(self._choices)))  # the oldest entry
        if choice.language != conversation.language:
            log.info("language.chosen", bot=self.bot, conversation=conversation.id, language=choice.language,
                     source=choice.source, previous=conversation.language)
        return choice

    def _choice(self, text: str | None, payload: str | None, previous: str | None, hint: str | None,
                phone: str | None) -> LanguageChoice:
        detected, confidence = self._detect_confidence(text) if text else (None, 0.0)
        return choose_language(LanguageSignals(
            languages=self.languages, default=self.default_language,
            explicit=explicit_choice(text, payload), detected=detected, confidence=confidence,
            words=len(tokenize(text)) if text else None, previous=previous, hint=hint,
            phone=phone_language(phone, self.phone_prefixes),
        ))

    def _session_expired(self, state: DialogueState, now: Any) -> bool:
        minutes = self.domain.session_expiration_minutes
        if minutes <= 0 or state.last_user_time is None:
            return False
        return bool(now - state.last_user_time > timedelta(minutes=minutes))

