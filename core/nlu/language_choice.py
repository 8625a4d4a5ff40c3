"""Which language a bot answers in: one pure function over every signal a turn has.

Signals, strongest first (``choose_language``):

1. **explicit** — the customer asks for a language: "English please", "auf Deutsch bitte",
   "Türkçe lütfen", "Do you speak English?", or a language button (payload
   ``/set_language{"language": "en"}``; intents ``language``/``set_language``/``choose_language``).
2. **detected** — the language of the current message, when the detector is confident
   (``LanguageDetector.detect_confidence``: the bot's own NLU examples per language, plus
   lingua for longer messages). When it disagrees with the language already in use
   (previous, or the platform's hint on a first message) it must be more confident
   (``switch_confidence``): "Hi" or "ok" do not switch a German conversation to English,
   "Können Sie mir helfen?" does.
3. **previous** — the language this customer was last answered in (kept on their one
   conversation per bot, which follows them across channels and sessions), when it came
   from evidence (1, 2, 4 or 5), never from the bot's default alone.
4. **hint** — the platform's statement of the person's language: Telegram's
   ``from.language_code``, the web chat's browser languages (``de-DE,de;q=0.9,en;q=0.8``).
5. **phone** — the country of a verified phone number (WhatsApp), a weak prior configured
   per bot (``bots.<name>.language.phone_prefixes``).
6. **default** — the bot's ``default_language``.

Every answer is one of the bot's languages; tags are reduced to their base (``de-AT`` → ``de``).
A platform hint outranks the previous language only while nothing the customer wrote set one:
what a person writes is stronger evidence than how their phone is set up.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

EXPLICIT = "explicit"
DETECTED = "detected"
PREVIOUS = "previous"
HINT = "hint"
PHONE = "phone"
DEFAULT = "default"

#: Country calling codes → language, used when a bot configures none (longest prefix wins).
DEFAULT_PHONE_PREFIXES: Mapping[str, str] = {
    "49": "de", "43": "de", "41": "de", "423": "de", "352": "de",
    "90": "tr",
    "44": "en", "1": "en", "353": "en", "61": "en", "64": "en",
    "33": "fr", "34": "es", "39": "it", "31": "nl", "48": "pl",
}

# Names of languages as customers write them, in the languages a bot is likely to speak.
_LANGUAGE_NAMES: Mapping[str, tuple[str, ...]] = {
    "de": ("deutsch", "german", "almanca", "allemand", "alemán", "aleman", "tedesco", "duits"),
    "en": ("english", "englisch", "ingilizce", "i̇ngilizce", "anglais", "inglés", "ingles", "inglese", "engels"),
    "tr": ("türkçe", "turkce", "türkce", "turkish", "türkisch", "tuerkisch", "turc", "turco", "turks"),
    "fr": ("français", "francais", "french", "französisch", "fransızca"),
    "es": ("español", "espanol", "spanish", "spanisch", "ispanyolca"),
    "it": ("italiano", "italian", "italienisch", "italyanca"),
    "nl": ("nederlands", "dutch", "niederländisch", "hollandaca"),
    "pl": ("polski", "polish", "polnisch", "lehçe"),
}
_NAME_TO_CODE = {name: code for code, names in _LANGUAGE_NAMES.items() for name in names}
# Words that may surround a language name in a request for that language (and nothing else).
_FILLER = frozenset(re.findall(r"\S+", """
please pls plz in on the a to with me us we you i can could would do does speak talk write answer reply
respond switch change continue go lets let's let language only rather prefer is there anyone someone who
ok okay yes hi hello hey sorry
bitte auf in mit mir uns wir sie du ihr können kann könnten koennen sprechen sprichst spricht sprich
schreiben schreib antworten antwort weiter wechseln lieber nur sprache gibt es jemand der die das auch
ja hallo hey gern gerne
lütfen lutfen ile benimle bizimle konuş konus konuşun konuşalım konuşabilir konusabilir miyiz mıyız misiniz
mısınız musunuz biliyor musun dil dilinde dilde yaz yazın yazabilir cevap ver devam evet merhaba selam
"""))
_NEGATION = frozenset({"not", "no", "don't", "dont", "kein", "keine", "nicht", "değil", "yok", "bilmiyorum"})
_TOKEN = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)
_LANGUAGE_INTENTS = ("set_language", "choose_language", "language")


# The helpers below are pure functions of short strings and run on every turn (the turn hooks
# and the engine): they remember their recent answers.
@functools.lru_cache(maxsize=1024)
def base(tag: str | None) -> str | None:
    """``de-AT`` / ``de_AT`` / ``DE`` → ``de``; None or empty → None."""
    if not tag:
        return None
    code = re.split(r"[-_;,\s]", tag.strip(), maxsplit=1)[0].lower()
    return code or None


def hint_languages(hint: str | None) -> list[str]:
    """A platform hint as base codes, most preferred first.

    Accepts one tag (``en``, ``pt-BR``) or an Accept-Language style list
    (``de-DE,de;q=0.9,en;q=0.8`` / ``de-DE, en-US``).
    """
    return list(_hint_languages(hint)) if hint else []


@functools.lru_cache(maxsize=1024)
def _hint_languages(hint: str) -> tuple[str, ...]:
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(hint.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        match = re.search(r"q=([0-9.]+)", params)
        if match:
            try:
                quality = float(match.group(1))
            except ValueError:
                quality = 0.0
        code = base(tag)
        if code and quality > 0:
            weighted.append((-quality, position, code))
    seen: list[str] = []
    for _, _, code in sorted(weighted):
        if code not in seen:
            seen.append(code)
    return tuple(seen)


def explicit_choice(text: str | None, payload: str | None = None) -> str | None:
    """The language the customer asks for in so many words, or by a language button; else None.

    Only short messages about the language itself count: "English please" does,
    "my English invoice is wrong" does not.
    """
    if not payload and (not text or len(text) > 80):
        return None
    return _explicit_choice(text, payload)


@functools.lru_cache(maxsize=4096)
def _explicit_choice(text: str | None, payload: str | None) -> str | None:
    if payload:
        name, _, rest = payload.lstrip("/").partition("{")
        if name in _LANGUAGE_INTENTS and rest:
            try:
                values = json.loads("{" + rest)
            except ValueError:
                values = None
            if isinstance(values, dict) and isinstance(values.get("language"), str):
                return base(values["language"])
        return None
    if not text or len(text) > 80:
        return None
    tokens = [t.lower() for t in _TOKEN.findall(text)]
    if not tokens or len(tokens) > 7 or any(t in _NEGATION for t in tokens):
        return None
    named = {_NAME_TO_CODE[t] for t in tokens if t in _NAME_TO_CODE}
    if len(named) != 1:
        return None
    if all(t in _NAME_TO_CODE or t in _FILLER for t in tokens):
        return named.pop()
    return None


def phone_language(phone: str | None, prefixes: Mapping[str, str] | None = None) -> str | None:
    """The language of a phone number's country (E.164 digits, ``+`` optional), longest prefix first."""
    if prefixes is None:
        return _default_phone_language(phone)
    return _phone_language(phone, prefixes)


@functools.lru_cache(maxsize=4096)
def _default_phone_language(phone: str | None) -> str | None:
    return _phone_language(phone, None)


def _phone_language(phone: str | None, prefixes: Mapping[str, str] | None) -> str | None:
    digits = re.sub(r"\D", "", phone or "")
    if not digits:
        return None
    table = DEFAULT_PHONE_PREFIXES if prefixes is None else prefixes
    for length in (3, 2, 1):
        code = table.get(digits[:length])
        if code:
            return base(code)
    return None


@dataclass(frozen=True, slots=True)
class LanguageSignals:
    """Everything a turn knows about the customer's language; all fields optional but the bot's."""

    languages: Sequence[str]  # the bot's languages
    default: str  # the bot's default language
    explicit: str | None = None  # `explicit_choice` of this message
    detected: str | None = None  # the detector's best language for this message
    confidence: float = 0.0  # ... and how sure it is (0..1)
    words: int | None = None  # words in the message; one word ("Hey", "Okay") rarely decides a switch
    previous: str | None = None  # the language the customer was last answered in (from evidence)
    hint: str | None = None  # the platform's hint, one tag or an Accept-Language list
    phone: str | None = None  # `phone_language` of a verified number


@dataclass(frozen=True, slots=True)
class LanguageChoice:
    """The reply language and the signal that decided it (one of the module's constants)."""

    language: str
    source: str

    @property
    def from_evidence(self) -> bool:
        """False when only the bot's default decided: nothing to remember about the customer."""
        return self.source != DEFAULT


def choose_language(signals: LanguageSignals, *, confidence: float = 0.5, switch_confidence: float = 0.75,
                    one_word_switch_confidence: float = 0.97) -> LanguageChoice:
    """The language to answer in; see the module docstring for the order of the signals.

    ``confidence``: how sure the detector must be to decide on its own; ``switch_confidence``:
    how sure when it disagrees with the language already in use (previous, else the hint);
    ``one_word_switch_confidence``: the same for a one-word message ("Hey", "Okay", "Super" are
    said in many languages; "Danke" or "Teşekkürler" are not). Set on the labelled set
    (bench/language_eval.py).
    """
    languages = [code for code in (base(lang) for lang in signals.languages) if code] or [base(signals.default) or "en"]
    default = base(signals.default)
    if default not in languages:
        default = languages[0]
    assert default is not None

    def ours(code: str | None) -> str | None:
        code = base(code)
        return code if code in languages else None

    explicit = ours(signals.explicit)
    if explicit:
        return LanguageChoice(explicit, EXPLICIT)
    previous = ours(signals.previous)
    hinted = next((code for code in hint_languages(signals.hint) if code in languages), None)
    in_use = previous or hinted
    detected = ours(signals.detected)
    if detected:
        if in_use in (None, detected):
            needed = confidence
        elif signals.words == 1:
            needed = max(switch_confidence, one_word_switch_confidence)
        else:
            needed = switch_confidence
        if signals.confidence >= needed:
            return LanguageChoice(detected, DETECTED)
    if previous:
        return LanguageChoice(previous, PREVIOUS)
    if hinted:
        return LanguageChoice(hinted, HINT)
    phone = ours(signals.phone)
    if phone:
        return LanguageChoice(phone, PHONE)
    return LanguageChoice(default, DEFAULT)
