"""`choose_language`: the order of the signals, the bot's languages as the only answers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.nlu.language_choice import (
    DEFAULT,
    DETECTED,
    EXPLICIT,
    HINT,
    PHONE,
    PREVIOUS,
    LanguageSignals,
    choose_language,
    explicit_choice,
    hint_languages,
    phone_language,
)

BOT = ("de", "en", "tr")


def signals(**values: object) -> LanguageSignals:
    return LanguageSignals(languages=BOT, default="de", **values)  # type: ignore[arg-type]


def test_nothing_known_gives_the_bots_default_and_nothing_to_remember() -> None:
    choice = choose_language(signals())
    assert (choice.language, choice.source, choice.from_evidence) == ("de", DEFAULT, False)


def test_platform_hint_decides_a_first_message_the_detector_cannot_read() -> None:
    assert choose_language(signals(hint="en-US")).language == "en"
    assert choose_language(signals(hint="en-US")).source == HINT


def test_browser_language_list_picks_the_first_language_the_bot_speaks() -> None:
    assert choose_language(signals(hint="fr-FR,fr;q=0.9,tr;q=0.8,en;q=0.7")).language == "tr"


def test_confident_detection_beats_the_hint() -> None:
    choice = choose_language(signals(hint="en", detected="de", confidence=0.9, words=3))
    assert (choice.language, choice.source) == ("de", DETECTED)


def test_unsure_detection_does_not_override_the_hint() -> None:
    assert choose_language(signals(hint="de", detected="en", confidence=0.6, words=2)).language == "de"


def test_one_ambiguous_word_does_not_switch_an_established_language() -> None:
    # "Hey" or "Okay" in a German conversation: the detector leans English, the customer did not switch
    choice = choose_language(signals(previous="de", detected="en", confidence=0.93, words=1))
    assert (choice.language, choice.source) == ("de", PREVIOUS)


def test_a_sentence_in_another_language_switches_mid_conversation() -> None:
    assert choose_language(signals(previous="en", detected="de", confidence=0.8, words=4)).language == "de"


def test_previous_language_outranks_the_hint_once_the_customer_wrote_one() -> None:
    assert choose_language(signals(previous="de", hint="en")).source == PREVIOUS


def test_explicit_choice_beats_everything() -> None:
    choice = choose_language(signals(explicit="en", previous="de", hint="de", detected="de", confidence=1.0))
    assert (choice.language, choice.source) == ("en", EXPLICIT)


def test_phone_country_is_the_weakest_evidence() -> None:
    assert choose_language(signals(phone="tr")).source == PHONE
    assert choose_language(signals(phone="tr", hint="en")).language == "en"


def test_languages_the_bot_does_not_speak_are_ignored() -> None:
    assert choose_language(signals(explicit="fr", hint="es", detected="it", confidence=1.0)).language == "de"


@pytest.mark.parametrize(("text", "language"), [
    ("English please", "en"), ("auf Deutsch bitte", "de"), ("Deutsch", "de"), ("Türkçe lütfen", "tr"),
    ("Do you speak English?", "en"), ("Können wir Englisch sprechen?", "en"), ("Türkçe konuşabilir miyiz?", "tr"),
    ("in English, please", "en"),
])
def test_a_request_for_a_language_is_an_explicit_choice(text: str, language: str) -> None:
    assert explicit_choice(text) == language


@pytest.mark.parametrize("text", [
    "My English invoice is wrong", "I don't speak German", "Ich spreche kein Englisch", "Hallo", "",
    "English or German, whatever",
])
def test_other_messages_naming_a_language_are_not_a_choice(text: str) -> None:
    assert explicit_choice(text) is None


def test_a_language_button_is_an_explicit_choice() -> None:
    assert explicit_choice("🇹🇷 Türkçe", '/set_language{"language": "tr"}') == "tr"
    assert explicit_choice(None, "/greet") is None


def test_hint_lists_are_ordered_by_quality() -> None:
    assert hint_languages("en;q=0.5, de-DE, tr;q=0.8") == ["de", "tr", "en"]
    assert hint_languages(None) == []


def test_phone_prefix_longest_match_and_per_bot_table() -> None:
    assert phone_language("+49 170 1234567") == "de"
    assert phone_language("905321234567") == "tr"
    assert phone_language("4915112345678", {"4915": "en"}) is None  # prefixes are up to 3 digits
    assert phone_language("441234", {"44": "en"}) == "en"
    assert phone_language("491701234", {}) is None


@given(st.text(max_size=60), st.one_of(st.none(), st.text(max_size=40)))
def test_any_input_yields_one_of_the_bots_languages(text: str, hint: str | None) -> None:
    choice = choose_language(signals(explicit=explicit_choice(text), hint=hint))
    assert choice.language in BOT
