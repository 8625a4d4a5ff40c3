"""Personal data at rest: card numbers and IBANs masked before text is stored, sensitive slots
encrypted, the customer's words encrypted while they wait in the inbox.

The turn sees the original: ingest seals the message text (`AtRest.seal_inbound`) before it
reaches the inbox, the turn runner unseals it (`inbound`) and the conversation's sensitive
slots (`conversation`) in memory; at commit (`commit`) the text of user and bot events, NLU
entity values and non-sensitive slot values are masked (`core.privacy.masking`)
and sensitive slots are sealed. So a card number typed into a chat reaches the NLU and the
actions of its turn, and is on disk only as ``•••• •••• •••• 1111`` — or, in a slot the bot
declares in ``privacy.sensitive_slots``, encrypted (Fernet, AES-128-CBC + HMAC-SHA256) with
the farm's data key.

The data key: ``SWITCHBOARD_DATA_KEY`` (a Fernet key, `switchboard` prints one with
``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``);
without it, a key file next to the SQLite store is created (0600) and a warning logged: a key
beside the data protects a copied database file less than a key kept apart.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import structlog
from cryptography.fernet import Fernet, InvalidToken

from core.errors import ConfigError
from core.model import Conversation, Event, Inbound, Outbound
from core.privacy.config import PrivacyConfig
from core.privacy.masking import QUEUED_PREFIX, SEALED_PREFIX, Masker, is_sealed
from core.store.config import StoreConfig

log = structlog.get_logger(__name__)

KEY_ENV = "SWITCHBOARD_DATA_KEY"


class Sealer:
    """Encrypts JSON values into ``sealed:v1:<Fernet token>`` strings and back."""

    def __init__(self, key: bytes | str) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{KEY_ENV} is not a Fernet key (32 url-safe base64-encoded bytes)",
                              key=KEY_ENV) from exc

    @classmethod
    def from_environment(cls, key_file: Path | None) -> Sealer:
        """The key from ``SWITCHBOARD_DATA_KEY``; else from (or newly into) ``key_file``."""
        key = os.environ.get(KEY_ENV, "").strip()
        if key:
            return cls(key)
        if key_file is None:
            raise ConfigError(f"set {KEY_ENV}: the data key for sensitive slots and queued messages", key=KEY_ENV)
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(Fernet.generate_key().decode())
        log.warning("privacy.data_key_from_file", file=str(key_file),
                    hint=f"set {KEY_ENV} in production: a key beside the data protects a copied database less")
        return cls(key_file.read_text().strip())

    def seal(self, value: Any, prefix: str = SEALED_PREFIX) -> str:
        if is_sealed(value):
            return str(value)
        return prefix + str(self._fernet.encrypt(json.dumps(value).encode()).decode("ascii"))

    def open_text(self, token: str) -> str:
        """A queued message text (for a masked view such as a dead letter on a desk)."""
        value = self.unseal(token)
        return value if isinstance(value, str) else ""

    def unseal(self, value: Any) -> Any:
        """The original value of a sealed string; anything else unchanged. A token this key
        cannot open (key changed) reads as None, logged."""
        if not is_sealed(value):
            return value
        try:
            return json.loads(self._fernet.decrypt(str(value).split(":", 2)[2].encode()))
        except (InvalidToken, ValueError):
            log.error("privacy.unseal_failed", hint=f"was {KEY_ENV} changed?")
            return None


class AtRest:
    """The turn runner's and ingest's privacy hook (see the module docstring)."""

    def __init__(self, sealer: Sealer | None, configs: Mapping[str, PrivacyConfig],
                 maskers: Mapping[str, Masker] | None = None) -> None:
        self.sealer = sealer
        self.configs = configs
        self.maskers = {bot: (maskers or {}).get(bot) or Masker(c.mask_patterns) for bot, c in configs.items()}
        self._memo: dict[str, str] = {}  # per commit
        # (conversation, slot) -> (value, token): an unchanged sensitive slot keeps its token, no re-encryption
        self._tokens: dict[tuple[str, str], tuple[Any, str]] = {}

    def _config(self, bot: str) -> PrivacyConfig:
        return self.configs.get(bot) or PrivacyConfig()

    # -- ingest / turn start ----------------------------------------------------------------
    def seal_inbound(self, message: Inbound) -> Inbound:
        """Before the inbox: the text encrypted (only the turn reads it back) if it holds anything
        masked at rest. A text masking leaves unchanged is stored as the transcript will keep it
        anyway, so it waits in clear: encryption costs ~50 µs a message, most messages hold nothing
        to mask, and the checksum scan is a few µs."""
        if self.sealer is None or not message.text or not self._config(message.bot).mask_at_rest:
            return message
        masker = self.maskers.get(message.bot) or Masker()
        if masker.mask(message.text) == message.text:
            return message
        return replace(message, text=self.sealer.seal(message.text, QUEUED_PREFIX))

    def inbound(self, message: Inbound) -> Inbound:
        if self.sealer is None or not is_sealed(message.text):
            return message
        return replace(message, text=str(self.sealer.unseal(message.text) or ""))

    def conversation(self, conversation: Conversation) -> Conversation:
        """Sensitive slots readable, for the engine and actions of this turn only."""
        if self.sealer is None or not any(is_sealed(v) for v in conversation.slots.values()):
            return conversation
        slots = {}
        for name, value in conversation.slots.items():
            slots[name] = self.sealer.unseal(value)
            if is_sealed(value):
                self._remember(conversation.id, name, slots[name], str(value))
        return replace(conversation, slots=slots)

    def _remember(self, conversation_id: str, name: str, value: Any, token: str) -> None:
        self._tokens[(conversation_id, name)] = (value, token)
        if len(self._tokens) > 10_000:
            self._tokens.pop(next(iter(self._tokens)))

    # -- commit ---------------------------------------------------------------------------
    def commit(self, conversation: Conversation, events: Sequence[Event],
               outbound: Sequence[Outbound]) -> tuple[Conversation, list[Event], list[Outbound]]:
        """What is stored of a turn: masked texts, sealed sensitive slots."""
        config = self._config(conversation.bot)
        if not config.mask_at_rest and not config.sensitive_slots:
            return conversation, list(events), list(outbound)
        self._memo = {}
        slots = {name: self._stored_slot(conversation, name, value) for name, value in conversation.slots.items()}
        stored = conversation if slots == conversation.slots else replace(conversation, slots=slots)
        # Replies queued for sending keep their text: the customer gets what the bot said (a
        # checksum false positive must not change a delivered message); their transcript copy is masked.
        return stored, [self._event(conversation.bot, e) for e in events], list(outbound)

    def _stored_slot(self, conversation: Conversation, name: str, value: Any) -> Any:
        known = self._tokens.get((conversation.id, name))
        if known is not None and known[0] == value and value is not None:
            return known[1]
        stored = self._slot(conversation.bot, name, value)
        if is_sealed(stored) and not is_sealed(value):
            self._remember(conversation.id, name, value, str(stored))
        return stored

    def _slot(self, bot: str, name: str, value: Any) -> Any:
        config = self._config(bot)
        if name in config.sensitive_slots:
            if value is None or self.sealer is None:
                return value
            return self.sealer.seal(value)
        return self.maskers[bot].mask_value(value) if config.mask_at_rest and bot in self.maskers else value

    def _mask(self, bot: str, text: Any) -> Any:
        """``text`` masked (called only where the bot masks at rest)."""
        if not isinstance(text, str):
            return text
        masked = self._memo.get(text)  # a turn repeats its texts (user text in parse_data, reply in event and outbox)
        if masked is None:
            masker = self.maskers.get(bot) or Masker()
            masked = self._memo[text] = masker.mask(text)
        return masked

    def _event(self, bot: str, event: Event) -> Event:
        data = event.data
        if event.type == "slot" and "name" in data:
            value = self._slot(bot, str(data["name"]), data.get("value"))
            return event if value == data.get("value") else replace(event, data={**data, "value": value})
        if event.type not in ("user", "bot") or not self._config(bot).mask_at_rest:
            return event
        if self._nothing_to_mask(bot, data):  # the common case: no copy of the event's data
            return event
        new = dict(data)
        if "text" in data:
            new["text"] = self._mask(bot, data["text"])
        parse = data.get("parse_data")
        if isinstance(parse, Mapping):
            entities = [({k: self._mask(bot, v) if k in ("value", "text") else v for k, v in e.items()}
                         if isinstance(e, Mapping) else e) for e in parse.get("entities") or ()]
            new["parse_data"] = {**parse, "entities": entities}
            if "text" in parse:
                new["parse_data"]["text"] = self._mask(bot, parse["text"])
        return event if new == data else replace(event, data=new)


    def _nothing_to_mask(self, bot: str, data: Mapping[str, Any]) -> bool:
        """Whether masking leaves the event's texts and entity values as they are (then `_event`
        would build an equal copy: the same stored form, for nothing)."""
        if self._mask(bot, data.get("text")) != data.get("text"):
            return False
        parse = data.get("parse_data")
        if not isinstance(parse, Mapping):
            return True
        entities = parse.get("entities")
        if not isinstance(entities, list) or self._mask(bot, parse.get("text")) != parse.get("text"):
            return False  # (no entity list: `_event` stores an empty one)
        return all(not isinstance(e, Mapping) or all(self._mask(bot, e[k]) == e[k] for k in ("value", "text") if k in e)
                   for e in entities)


def farm_sealer(configs: Mapping[str, PrivacyConfig], store: StoreConfig) -> Sealer | None:
    """The farm's data key (``configs``: each bot's privacy settings): from the environment; else a
    key file beside a SQLite store file; else none (queued messages then wait in clear; a bot
    with sensitive slots refuses to start)."""
    if not any(c.mask_at_rest or c.sensitive_slots for c in configs.values()):
        return None
    if os.environ.get(KEY_ENV, "").strip():
        return Sealer.from_environment(None)
    if store.kind == "sqlite" and store.path and store.path != ":memory:":
        return Sealer.from_environment(Path(store.path).with_suffix(".key"))
    needing = sorted(bot for bot, c in configs.items() if c.sensitive_slots)
    if needing:
        raise ConfigError(f"bots {needing} declare privacy.sensitive_slots: set {KEY_ENV} (a Fernet key)",
                          key=KEY_ENV)
    log.warning("privacy.no_data_key", hint=f"set {KEY_ENV}: messages wait in the inbox in clear until their turn")
    return None


def open_queued(text: str, sealer: Sealer | None) -> str:
    """A message text as the customer wrote it, for operators' tools (dead letters)."""
    if sealer is None or not is_sealed(text):
        return text
    return sealer.open_text(text)
