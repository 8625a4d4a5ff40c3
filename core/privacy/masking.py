"""Masking of payment data and configured patterns before text reaches agents or logs.

`Masker.mask` replaces
- payment card numbers (13-19 digits, single spaces/dashes allowed, first digit 2-6,
  Luhn-valid) with ``•••• •••• •••• 1234`` (last four kept);
- IBANs (country code, check digits, BBAN of the country's length, optional single
  spaces, ISO 13616 mod-97 valid) with ``DE89 •••• … 3000`` (first and last four kept);
- matches of the configured regexes with ``[redacted]``;
- values sealed at rest (``sealed:v1:…``, `core.privacy.at_rest`) with ``[sensitive]``;
- with ``contacts=True`` (what agents see, `for_agents`): e-mail addresses with ``j•••@•••.de``
  (first letter and top-level domain kept) and phone numbers written with ``+`` or a leading
  ``0`` (7-15 digits) with ``+•••••••67`` (last two digits kept). Numbers not starting with
  ``+``/``0`` (order numbers, dates, amounts) are left: a desk must stay usable.

Callers may rely on: `mask` never raises on any ``str``, masking is idempotent for the
built-in rules, and numbers that fail the checksums (order numbers, phone numbers with
a leading ``+``) are left as written. A run of digits directly after ``•`` or a digit
(optionally with one separator in between) never starts a card, so masked output is
never masked again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import replace
from typing import Any

from core.errors import ConfigError
from core.model import Event
from core.privacy.config import PrivacyConfig

BULLET = "•"
CARD_MASK = f"{BULLET * 4} {BULLET * 4} {BULLET * 4} "
IBAN_MASK = f" {BULLET * 4} … "
REDACTED = "[redacted]"
SENSITIVE = "[sensitive]"
SEALED_PREFIX = "sealed:v1:"  # a sensitive slot value: never shown
QUEUED_PREFIX = "queued:v1:"  # a message text waiting in the inbox: shown (masked) where the key is known
_SEALED = re.compile(r"sealed:v1:[A-Za-z0-9_=-]+")
_QUEUED = re.compile(r"queued:v1:[A-Za-z0-9_=-]+")
_unseal_queued: Callable[[str], str] | None = None


def register_unsealer(unseal: Callable[[str], str] | None) -> None:
    """How this process opens queued message texts (set by core.privacy.install with the data key);
    without one they show as ``[encrypted]``."""
    global _unseal_queued
    _unseal_queued = unseal


def _open_queued(match: re.Match[str]) -> str:
    if _unseal_queued is None:
        return "[encrypted]"
    return _unseal_queued(match.group(0))
EMAIL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.([A-Za-z]{2,24})\b")
PHONE = re.compile(r"(?<![\w•+])(?:\+|0)\d(?:[ \-/().]{0,2}\d){5,16}(?![\w•])")
EMAIL_MASK = f"{BULLET * 3}@{BULLET * 3}."
PHONE_MASK = BULLET * 7
# What a masked e-mail address or phone number looks like (the web desk finds them to offer "reveal").
MASKED_CONTACT = re.compile(r"[^\s•@]?•••@•••\.[A-Za-z]{2,24}|\+?•••••••\d{2}")


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith((SEALED_PREFIX, QUEUED_PREFIX))


def _mask_email(match: re.Match[str]) -> str:
    return match.group(0)[0] + EMAIL_MASK + match.group(1)


def _mask_phone(match: re.Match[str]) -> str:
    number = match.group(0)
    digits = re.sub(r"\D", "", number)
    if not 7 <= len(digits) <= 15:
        return number
    return ("+" if number.startswith("+") else "") + PHONE_MASK + digits[-2:]


def contact_details(text: str) -> list[str]:
    """E-mail addresses and phone numbers in ``text``, in the order `Masker.mask` masks them
    (what a desk's "reveal" refers to by index); payment data stays masked."""
    text = mask_cards(mask_ibans(text))
    found = [(m.start(), m.group(0)) for m in EMAIL.finditer(text)]
    without_emails = EMAIL.sub(lambda m: " " * len(m.group(0)), text)
    found += [(m.start(), m.group(0)) for m in PHONE.finditer(without_emails)
              if 7 <= len(re.sub(r"\D", "", m.group(0))) <= 15]
    return [value for _, value in sorted(found)]

# A run of digits separated by at most one space or dash. It may not start right after a
# digit, a bullet or '+' (phone numbers), nor after one of those plus a separator.
_DIGIT_RUN = re.compile(r"(?<![\d•+])(?<![\d•+][ -])\d(?:[ -]?\d)*")
_SEPARATOR = re.compile(r"[ -]")
_IBAN_START = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{2})(\d{2})")
_ANY_DIGIT = re.compile(r"\d")  # what `_DIGIT_RUN` and `_IBAN_START` need (as ``\d``, not str.isdigit)

# IBAN lengths by country (SWIFT IBAN registry).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}


def luhn_valid(digits: str) -> bool:
    """True if ``digits`` (only 0-9) passes the Luhn check."""
    if not digits or not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """True if ``iban`` (no spaces, any case) has its country's length and a valid mod-97 check."""
    value = iban.upper()
    if len(value) < 5 or not value.isascii() or not value.isalnum():
        return False
    if IBAN_LENGTHS.get(value[:2]) != len(value) or not value[2:4].isdigit():
        return False
    rearranged = value[4:] + value[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def _is_card(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn_valid(digits)


def _mask_card_run(run: str) -> str:
    """Mask every card inside one digit run (groups split by single separators)."""
    groups = _SEPARATOR.split(run)
    seps = _SEPARATOR.findall(run)
    if len(groups) == 1:
        return CARD_MASK + run[-4:] if _is_card(run) else run
    out: list[str] = []
    i = 0
    while i < len(groups):
        found = -1
        digits = ""
        for j in range(i, len(groups)):
            digits += groups[j]
            if len(digits) > 19:
                break
            if _is_card(digits):
                found = j  # keep extending: prefer the longest card from this start
        if found >= 0:
            card = "".join(groups[i : found + 1])
            out.append(CARD_MASK + card[-4:])
            if found < len(seps):
                out.append(seps[found])
            i = found + 1
        else:
            out.append(groups[i])
            if i < len(seps):
                out.append(seps[i])
            i += 1
    return "".join(out)


def mask_cards(text: str) -> str:
    return _DIGIT_RUN.sub(lambda m: _mask_card_run(m.group(0)), text)


def mask_contacts(text: str) -> str:
    """E-mail addresses and phone numbers masked (see the module docstring)."""
    masked = EMAIL.sub(_mask_email, text)
    return PHONE.sub(_mask_phone, masked)


def mask_ibans(text: str) -> str:
    out: list[str] = []
    pos = 0
    search_from = 0
    while True:
        m = _IBAN_START.search(text, search_from)
        if m is None:
            break
        country = m.group(1).upper()
        length = IBAN_LENGTHS.get(country)
        end = _iban_end(text, m.end(), length - 4) if length else None
        if end is None:
            search_from = m.start() + 1
            continue
        compact = re.sub(r"\s", "", text[m.start() : end])
        if not iban_valid(compact):
            search_from = m.start() + 1
            continue
        out.append(text[pos : m.start()])
        out.append(compact[:4] + IBAN_MASK + compact[-4:])
        pos = search_from = end
    out.append(text[pos:])
    return "".join(out)


def _iban_end(text: str, start: int, bban_length: int) -> int | None:
    """End index of a BBAN of ``bban_length`` alphanumerics from ``start`` (single spaces allowed)."""
    i, taken = start, 0
    while taken < bban_length:
        if i < len(text) and text[i] == " ":
            i += 1
        if i >= len(text) or not (text[i].isascii() and text[i].isalnum()):
            return None
        i += 1
        taken += 1
    if i < len(text) and text[i].isascii() and text[i].isalnum():
        return None
    return i


class Masker:
    """Masks cards, IBANs and the operator's extra patterns (regex strings) in text."""

    def __init__(self, extra_patterns: Iterable[str] = (), *, contacts: bool = False) -> None:
        self.contacts = contacts
        compiled: list[re.Pattern[str]] = []
        for pattern in extra_patterns:
            try:
                compiled.append(re.compile(pattern))
            except re.error as exc:
                raise ConfigError(f"invalid mask pattern {pattern!r}: {exc}", key="privacy.mask_patterns") from exc
        self._patterns = tuple(compiled)

    @classmethod
    def for_agents(cls, config: PrivacyConfig) -> Masker:
        """What desks show of a bot's conversations: its patterns, and e-mail addresses and
        phone numbers unless ``privacy.mask_contacts_for_agents`` is off."""
        return cls(config.mask_patterns, contacts=config.mask_contacts_for_agents)

    @classmethod
    def for_bots(cls, configs: Iterable[PrivacyConfig]) -> Masker:
        """One masker with the extra patterns of every given bot (e.g. for farm-wide logs)."""
        return cls(dict.fromkeys(p for config in configs for p in config.mask_patterns))

    def mask(self, text: str) -> str:
        """``text`` with payment data and configured patterns masked; never raises."""
        if not text:
            return text
        masked = text
        if "ed:v1:" in masked:  # sealed:v1: / queued:v1:
            masked = _SEALED.sub(SENSITIVE, _QUEUED.sub(_open_queued, masked))
        if _ANY_DIGIT.search(masked) is not None:  # IBANs and card numbers hold digits; most texts none
            if _IBAN_START.search(masked):  # cheap tests first: most texts hold neither
                masked = mask_ibans(masked)
            if sum(map(str.isdigit, masked)) >= 13:
                masked = mask_cards(masked)
        if self.contacts:
            masked = mask_contacts(masked)
        for pattern in self._patterns:
            masked = pattern.sub(REDACTED, masked)
        return masked

    def mask_value(self, value: Any) -> Any:
        """Mask every string inside ``value`` (dicts, lists, tuples); other values unchanged."""
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, Mapping):
            return {k: self.mask_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.mask_value(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.mask_value(v) for v in value)
        return value

    def mask_event(self, event: Event) -> Event:
        """A transcript event with its text (and other strings in ``data``) masked, for desks."""
        return replace(event, data=self.mask_value(event.data))


DEFAULT_MASKER = Masker()


class LogMasker:
    """A structlog processor masking every string value of an event (or the rendered line).

    Put it before the renderer to mask values, or append it after the renderer to mask
    the rendered string; both work.
    """

    def __init__(self, masker: Masker = DEFAULT_MASKER) -> None:
        self.masker = masker

    def __call__(self, logger: Any, method_name: str, event_dict: Any) -> Any:
        if isinstance(event_dict, MutableMapping):
            for key, value in list(event_dict.items()):
                event_dict[key] = self.masker.mask_value(value)
            return event_dict
        if isinstance(event_dict, str):
            return self.masker.mask(event_dict)
        if isinstance(event_dict, bytes):
            return self.masker.mask(event_dict.decode("utf-8", "replace")).encode("utf-8")
        return event_dict


def mask_log_values(logger: Any, method_name: str, event_dict: Any) -> Any:
    """structlog processor with the built-in rules (cards, IBANs); see `LogMasker` for extra patterns."""
    return _DEFAULT_LOG_MASKER(logger, method_name, event_dict)


_DEFAULT_LOG_MASKER = LogMasker()
