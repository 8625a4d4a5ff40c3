"""Masking of cards, IBANs and configured patterns (core/privacy/masking.py)."""

from __future__ import annotations

import io
import json
import random

import pytest
import structlog
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.errors import ConfigError
from core.privacy.masking import (
    BULLET,
    LogMasker,
    Masker,
    iban_valid,
    luhn_valid,
    mask_cards,
    mask_ibans,
    mask_log_values,
)

VALID_CARDS = ["4111111111111111", "5500000000000004", "340000000000009", "6011000000000004",
               "4012888888881881", "5555555555554444", "378282246310005", "2223003122003222"]
VALID_IBANS = ["DE89370400440532013000", "GB82WEST12345698765432", "FR1420041010050500013M02606",
               "NL91ABNA0417164300", "AT611904300234573201", "CH9300762011623852957", "NO9386011117947"]


def luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1))
    for check in "0123456789":
        if luhn_valid(body + check):
            return body + check
    raise AssertionError("unreachable")


@st.composite
def cards(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(["4", "51", "55", "34", "37", "6011", "35", "2221", "62"]))
    length = draw(st.integers(13, 19))
    rng = random.Random(draw(st.integers(0, 2**32)))
    return luhn_complete(prefix, length, rng)


def group(number: str, size: int, sep: str) -> str:
    return sep.join(number[i:i + size] for i in range(0, len(number), size))


masker = Masker([r"(?i)\bKD-\d{6}\b"])
text_alphabet = st.characters(codec="utf-8", categories=("L", "N", "P", "Z", "S")) | st.sampled_from(
    list("0123456789 -+•…DE")
)


def test_luhn_and_iban_checks_accept_known_valid_numbers() -> None:
    assert all(luhn_valid(c) for c in VALID_CARDS)
    assert all(iban_valid(i) for i in VALID_IBANS)
    assert not luhn_valid("4111111111111112")
    assert not iban_valid("DE89370400440532013001")


@pytest.mark.parametrize("card", VALID_CARDS)
def test_card_is_masked_keeping_last_four(card: str) -> None:
    for written in (card, group(card, 4, " "), group(card, 4, "-")):
        masked = masker.mask(f"Meine Karte: {written}, danke")
        assert masked == f"Meine Karte: {BULLET * 4} {BULLET * 4} {BULLET * 4} {card[-4:]}, danke"


def test_iban_is_masked_keeping_first_and_last_four() -> None:
    assert masker.mask("IBAN DE89 3704 0044 0532 0130 00 bitte") == "IBAN DE89 •••• … 3000 bitte"
    assert masker.mask("iban: de89370400440532013000.") == "iban: de89 •••• … 3000."
    for iban in VALID_IBANS:
        masked = masker.mask(group(iban, 4, " "))
        assert masked == f"{iban[:4]} •••• … {iban[-4:]}"


def test_invalid_iban_and_order_numbers_stay() -> None:
    for text in ("DE89 3704 0044 0532 0130 02", "Bestellung 1234567890123", "Order #4111111111111112",
                 "Ruf an: +49 151 23456789", "Tel 0151 2345 6789", "PLZ 10115, Hausnr. 12"):
        assert masker.mask(text) == text


def test_configured_pattern_is_redacted() -> None:
    assert masker.mask("Kundennummer KD-123456") == "Kundennummer [redacted]"


def test_invalid_configured_pattern_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        Masker(["(unclosed"])


def test_masker_for_bots_combines_their_patterns_and_masks_events() -> None:
    from core.model import Event
    from core.privacy.config import PrivacyConfig

    combined = Masker.for_bots([PrivacyConfig(mask_patterns=[r"KD-\d+"]), PrivacyConfig(mask_patterns=[r"VT-\d+"])])
    event = Event("user", {"text": "KD-1 VT-2 4111111111111111", "parse_data": {"intent": {"name": "x"}}})
    masked = combined.mask_event(event)
    assert masked.data["text"] == "[redacted] [redacted] •••• •••• •••• 1111"
    assert masked.data["parse_data"] == event.data["parse_data"] and event.data["text"].startswith("KD-1")


def test_a_configured_pattern_is_redacted_in_a_text_without_digits() -> None:
    assert Masker([r"secret\w+"]).mask("my secretword, please") == "my [redacted], please"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(categories=("L", "Nd", "No", "Zs", "Pd")), max_size=60))
@example("pay with 4111 1111 1111 1111 now")
@example("IBAN DE89 3704 0044 0532 0130 00")
@example("\u0664\u0661\u0661\u0661 \u0661\u0661\u0661\u0661 \u0661\u0661\u0661\u0661 \u0661\u0661\u0661\u0661")  # Arabic-Indic digits
@example("\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079\u00b9\u00b2\u00b3\u2074")  # superscripts: isdigit, not \\d
def test_texts_without_a_decimal_digit_skip_the_scans_with_the_same_result(text: str) -> None:
    expected = mask_ibans(text)
    if sum(map(str.isdigit, expected)) >= 13:
        expected = mask_cards(expected)
    assert Masker().mask(text) == expected


def test_two_cards_in_one_run_are_both_masked() -> None:
    text = "4111 1111 1111 1111 5500 0000 0000 0004"
    assert masker.mask(text) == "•••• •••• •••• 1111 •••• •••• •••• 0004"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=text_alphabet, max_size=120))
def test_mask_never_raises_and_is_idempotent(text: str) -> None:
    once = masker.mask(text)
    assert masker.mask(once) == once


@settings(max_examples=300, deadline=None)
@given(cards(), st.sampled_from(["", " ", "-"]), st.sampled_from([4, 3, 5, 19]),
       st.text(alphabet=st.characters(categories=("L", "Zs")), max_size=20),
       st.text(alphabet=st.characters(categories=("L", "Zs")), max_size=20))
def test_valid_cards_are_always_masked(card: str, sep: str, size: int, before: str, after: str) -> None:
    written = group(card, size, sep) if sep else card
    masked = masker.mask(f"{before} {written} {after}")
    digits_left = "".join(ch for ch in masked if ch.isdigit())
    assert card[-4:] in masked
    assert card not in digits_left or len(card) <= 4
    assert f"{BULLET * 4} {BULLET * 4} {BULLET * 4} {card[-4:]}" in masked


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789", min_size=6, max_size=19))
def test_numbers_failing_luhn_are_untouched(number: str) -> None:
    if any(luhn_valid(number[:j]) for j in range(13, len(number) + 1)):
        return  # a card prefix is a card
    assert masker.mask(f"Bestellnummer {number}") == f"Bestellnummer {number}"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789", min_size=7, max_size=13), st.sampled_from(["", " ", "-"]))
def test_phone_numbers_with_plus_are_untouched(digits: str, sep: str) -> None:
    phone = "+" + (group(digits, 3, sep) if sep else digits)
    assert masker.mask(f"call me at {phone}") == f"call me at {phone}"


def test_mask_log_values_masks_nested_values() -> None:
    event = {"event": "x", "text": "card 4111111111111111", "nested": {"iban": ["DE89370400440532013000"]},
             "count": 3}
    out = mask_log_values(None, "info", event)
    assert out["text"] == "card •••• •••• •••• 1111"
    assert out["nested"] == {"iban": ["DE89 •••• … 3000"]}
    assert out["count"] == 3


def _capture(processors: list[structlog.typing.Processor]) -> tuple[io.StringIO, structlog.BoundLogger]:
    buffer = io.StringIO()
    logger = structlog.wrap_logger(
        structlog.PrintLogger(buffer), processors=processors, wrapper_class=structlog.BoundLogger
    )
    return buffer, logger


def test_card_and_iban_never_reach_json_log_output() -> None:
    buffer, logger = _capture([mask_log_values, structlog.processors.JSONRenderer()])
    logger.info("customer.said", text="Karte 4111 1111 1111 1111 und IBAN DE89 3704 0044 0532 0130 00")
    line = json.loads(buffer.getvalue())
    assert "4111 1111 1111 1111" not in buffer.getvalue() and "0532" not in buffer.getvalue()
    assert line["text"] == "Karte •••• •••• •••• 1111 und IBAN DE89 •••• … 3000"


def test_log_masker_appended_after_the_renderer_masks_the_line() -> None:
    buffer, logger = _capture([structlog.dev.ConsoleRenderer(colors=False), LogMasker(Masker([r"secret\d+"]))])
    logger.info("customer.said", text="4111111111111111", other="secret42")
    assert "4111111111111111" not in buffer.getvalue()
    assert "•••• •••• •••• 1111" in buffer.getvalue() and "[redacted]" in buffer.getvalue()


def test_masking_installed_through_core_logging_masks_real_log_lines(capsys: pytest.CaptureFixture[str]) -> None:
    from core import logging as sb_logging

    try:
        sb_logging.configure("info", "json")  # the masker is part of every configuration
        structlog.get_logger("test").info("customer.said", text="IBAN GB82 WEST 1234 5698 7654 32")
        err = capsys.readouterr().err
        assert "5698" not in err
        assert json.loads(err.strip().splitlines()[-1])["text"] == "IBAN GB82 •••• … 5432"
    finally:
        sb_logging.configure("warning")
