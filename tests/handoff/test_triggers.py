"""Escalation triggers: asking for a person, and frustration (pure functions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.handoff import triggers
from core.handoff.config import HandoffConfig
from core.handoff.triggers import (
    DEFAULT_REQUEST_WORDS,
    FrustrationSignal,
    asks_for_human,
    asks_what_i_am,
    fold,
    frustration_score,
    within_one_edit,
)

WORDS = HandoffConfig().request_words
THRESHOLD = HandoffConfig().frustration_threshold
DATA = Path(__file__).resolve().parent.parent / "data" / "frustration_labelled.jsonl"
IDENTITY_DATA = DATA.with_name("identity_labelled.jsonl")


@pytest.mark.parametrize("text", [
    "Ich möchte mit einem Menschen sprechen",
    "Mensch bitte",
    "MITARBEITER",
    "mitarbeiter",
    "Bitte eine Mitarbeiterin",
    "Mitarbeiter*in bitte",
    "Mitarbeiter:innen",
    "Mitarbeiter_in",
    "Mitarbeiter/-in bitte",
    "Kann ich mit einer MitarbeiterIn sprechen?",
    "Verbinden Sie mich mit einem Kundenberater",
    "Servicemitarbeiterin bitte",
    "Ich will einen Berater",
    "Beraterin",
    "Gibt es hier auch Menschen?",
    "eine echte Person bitte",
    "Kann ich mit jemandem persönlich sprechen?",
    "Ich möchte mit jemandem reden",
    "talk to a human please",
    "humans?",
    "agent",
    "AGENTS please",
    "I want to speak to someone",
    "Can I talk to somebody real?",
    "a real person please",
    "live agent",
    "Is there no human I can talk to?",
    "Gibt es keinen Menschen, mit dem ich reden kann?",
])
def test_request_for_a_person_is_recognised(text: str) -> None:
    assert asks_for_human(text, WORDS)


@pytest.mark.parametrize("text", [
    "Mitarbieter bitte",  # swapped letters
    "Mitarbeter",  # dropped letter
    "Mensh bitte",
    "Menssch!",
    "Berarter",
    "Kundenberarter",
    "Mitarbeíter",  # accent typed by mistake
])
def test_one_typo_in_a_long_word_is_tolerated(text: str) -> None:
    assert asks_for_human(text, WORDS)


@pytest.mark.parametrize("text", [
    "Welche Agentur betreut Ihre Werbung?",
    "The prices are humane",
    "Wir spielen Mensch ärgere dich nicht",
    "Mensch ärgere Dich nicht ist ein Spiel",
    "Mensch, das klappt ja gar nicht",
    "Kein Mensch versteht diese Rechnung",
    "No human would understand this invoice",
    "Tisch für 4 Personen",
    "The price is 20 euros per person",
    "someone stole my card",
    "Ihr Mitarbeiter hat mir gestern gesagt, dass es geht",
    "Your agent told me it would be fixed",
    "Können Sie mich beraten, welcher Tarif passt?",
    "Mein Perso ist abgelaufen",
    "Menschenrechte sind wichtig",
    "My browser user agent is Firefox",
    "It was a human error on my side",
    "Can I pay in person at your office?",
    "Sorry, I'm only human",
    "Ich bin auch nur ein Mensch",
    "Unmensch",
    "Personalabteilung",
    "Ich habe eine Frage zu meiner Rechnung",
    "",
    "   ",
])
def test_non_requests_do_not_escalate(text: str) -> None:
    assert not asks_for_human(text, WORDS)


def test_short_words_get_no_typo_tolerance() -> None:
    # "agent" and "human" are too short to guess at: "agnet" is not matched.
    assert not asks_for_human("agnet", WORDS)
    assert not asks_for_human("humna", WORDS)


def test_configured_words_replace_the_defaults() -> None:
    assert asks_for_human("Ansprechpartner bitte", ["ansprechpartner"])
    assert asks_for_human("Ansprechpartnerin bitte", ["Ansprechpartner"])
    assert not asks_for_human("Ansprechpartner bitte", DEFAULT_REQUEST_WORDS)
    assert not asks_for_human("Mitarbeiter bitte", ["ansprechpartner"])


def test_configured_phrase_matches_as_a_phrase() -> None:
    assert asks_for_human("Ich will den Kundendienst anrufen", ["kundendienst anrufen"])
    assert not asks_for_human("Kundendienst", ["kundendienst anrufen"])


def test_fold_handles_umlauts_sharp_s_and_case() -> None:
    assert fold("MÄNNER Straße Über") == "maenner strasse ueber"
    assert fold("Café") == "cafe"


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("mitarbeiter", "mitarbieter", True),
    ("mitarbeiter", "mitarbeter", True),
    ("mitarbeiter", "mitarbeiterr", True),
    ("mitarbeiter", "mitarbeitxr", True),
    ("mitarbeiter", "mtiarbieter", False),
    ("mensch", "mensch", True),
    ("mensch", "wunsch", False),
])
def test_within_one_edit(a: str, b: str, expected: bool) -> None:
    assert within_one_edit(a, b) is expected


@given(st.text(max_size=200))
@settings(max_examples=200, deadline=None)
def test_asks_for_human_never_crashes_on_any_text(text: str) -> None:
    assert asks_for_human(text, WORDS) in (True, False)


def _plain_rule(token: str, words: tuple[str, ...]) -> tuple[str, ...]:
    """The word rule of `core.handoff.triggers` written out plainly (no index): a form, a
    typo of a form (words of 6+ letters), or a compound head after a 4+ letter prefix."""
    def form(text: str, base: str) -> bool:
        forms = [base + s for s in triggers._SUFFIXES]
        return text in forms or (len(base) >= 6 and any(within_one_edit(text, f) for f in forms))

    def matches(base: str) -> bool:
        if token in triggers._NOT_REQUESTS:
            return False
        if form(token, base):
            return True
        return any(
            token[cut:] not in triggers._NOT_REQUESTS and token[:cut] not in triggers._BAD_PREFIXES
            and (token[cut:] in [base + s for s in triggers._SUFFIXES]
                 or (len(token) - cut >= 6 and form(token[cut:], base)))
            for cut in range(4, len(token) - len(base) + 2)
        )
    return tuple(base for base in words if matches(base))


_PIECES = st.sampled_from(["mensch", "mitarbeiter", "berater", "person", "agent", "human", "kunden",
                           "service", "super", "nicht", "in", "innen", "en", "s", "x", "e", "r", "t"])


@given(st.lists(st.one_of(_PIECES, st.text("aeimnrst", max_size=3)), max_size=5).map("".join))
@settings(max_examples=600, deadline=None)
def test_indexed_word_matching_agrees_with_the_plain_rule(token: str) -> None:
    # The index only skips work: each token matches exactly the words the plain rule says.
    words = tuple(triggers.fold(w) for w in DEFAULT_REQUEST_WORDS)
    assert triggers._matching_bases.__wrapped__(token, triggers._indexed(words)) == _plain_rule(token, words)


@given(st.text(max_size=200))
@settings(max_examples=200, deadline=None)
def test_asks_what_i_am_never_crashes_on_any_text(text: str) -> None:
    assert asks_what_i_am(text) in (True, False)


@given(st.text(max_size=200), st.lists(st.text(max_size=80), max_size=5))
@settings(max_examples=200, deadline=None)
def test_frustration_score_is_within_bounds(text: str, history: list[str]) -> None:
    signal = frustration_score(text, history)
    assert 0.0 <= signal.score <= 1.0


@pytest.mark.parametrize("text", [
    "Es funktioniert IMMER NOCH NICHT!!!",
    "Still not working, this is ridiculous.",
    "Scheiße, schon wieder kein Internet",
    "This bot is useless",
    "Das ist eine Frechheit!",
    "Wie oft soll ich das noch sagen?",
    "WHY IS MY INTERNET DOWN AGAIN",
])
def test_frustrated_messages_reach_the_threshold(text: str) -> None:
    signal = frustration_score(text, [])
    assert signal.exceeds(THRESHOLD), signal


@pytest.mark.parametrize("text", [
    "DANKE!",
    "VIELEN DANK, ES FUNKTIONIERT WIEDER!!!",
    "THANK YOU SO MUCH!!!",
    "Leider funktioniert es immer noch nicht. Könnten Sie bitte nachsehen?",
    "Unfortunately it is still not working, could you please take a look?",
    "Mist, vertippt. Die Nummer ist 44812.",
    "Kein Problem, ich warte gerne.",
    "Not bad, but is there a cheaper plan?",
    "Bitte kündigen Sie meinen Zusatzvertrag zum Monatsende.",
    "Mein DSL und WLAN gehen nicht",
])
def test_polite_complaints_and_happy_shouting_stay_below_threshold(text: str) -> None:
    signal = frustration_score(text, [])
    assert not signal.exceeds(THRESHOLD), signal


def test_repeated_question_counts_as_frustration() -> None:
    history = ["Wann kommt mein Techniker?", "Hallo"]
    signal = frustration_score("wann kommt mein techniker", history)
    assert "repeated_question" in signal.reasons
    assert signal.exceeds(THRESHOLD)
    assert "repeated_question" not in frustration_score("wann kommt mein techniker", []).reasons


def test_short_repeated_answers_are_not_repeated_questions() -> None:
    assert "repeated_question" not in frustration_score("Ja", ["Ja", "Ja"]).reasons


def test_only_recent_history_counts_as_a_repeat() -> None:
    old = ["Wann kommt mein Techniker?"] + [f"Nachricht Nummer {i} über etwas anderes" for i in range(6)]
    assert "repeated_question" not in frustration_score("Wann kommt mein Techniker?", old).reasons


def test_reasons_name_the_cues() -> None:
    signal = frustration_score("Still not working!!!", [])
    assert any(r.startswith("persistence") for r in signal.reasons)
    assert "punctuation" in signal.reasons


def test_empty_message_is_not_frustrated() -> None:
    assert frustration_score("", ["x"]) == FrustrationSignal(0.0)


def test_labelled_set_is_large_balanced_and_bilingual() -> None:
    items = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(items) >= 300
    assert {i["lang"] for i in items} == {"de", "en"}
    # realistic negatives: harmless repetition and forwarded texts
    assert sum(bool(i.get("history")) and not i["frustrated"] for i in items) >= 30
    assert sum("forward" in i["text"].lower() or "weitergeleitet" in i["text"].lower() for i in items) >= 8
    for lang in ("de", "en"):
        subset = [i for i in items if i["lang"] == lang]
        share = sum(i["frustrated"] for i in subset) / len(subset)
        assert 0.4 <= share <= 0.6
    assert all(isinstance(i["text"], str) and isinstance(i["frustrated"], bool) for i in items)


def test_scorer_beats_a_floor_on_the_held_out_split() -> None:
    """Guards against regressions; the real figures come from bench/frustration_eval.py."""
    items = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    test = [it for i, it in enumerate(items) if i % 3 == 2]
    predicted = [frustration_score(it["text"], it.get("history", [])).exceeds(THRESHOLD) for it in test]
    tp = sum(p and it["frustrated"] for p, it in zip(predicted, test, strict=True))
    fp = sum(p and not it["frustrated"] for p, it in zip(predicted, test, strict=True))
    fn = sum(not p and it["frustrated"] for p, it in zip(predicted, test, strict=True))
    assert tp / (tp + fp) >= 0.9
    assert tp / (tp + fn) >= 0.65


@pytest.mark.parametrize("text", [
    "Bist du ein Mensch?",
    "Bist du ein Bot?",
    "Sind Sie ein echter Mitarbeiter?",
    "Rede ich mit einem Menschen oder einer Maschine?",
    "Ist das hier ein Chatbot oder ein Mensch?",
    "Mensch oder Maschine?",
    "Mit wem spreche ich gerade?",
    "am I talking to a human?",
    "Are you a human?",
    "Is this a real person?",
    "Are you a real person or a bot?",
    "Human or bot?",
    "r u a bot",
    "Is there a real human here?",
    "Ich möchte wissen, ob ich mit einem Menschen spreche",
    "I would like to know if I am talking to a human",
    "Wer sind Sie eigentlich?",
])
def test_asking_what_answers_is_an_identity_question_not_a_request(text: str) -> None:
    assert asks_what_i_am(text)
    assert not asks_for_human(text, WORDS)


@pytest.mark.parametrize("text", [
    "Ich will einen Menschen sprechen",
    "can I talk to a human",
    "agent please",
    "Mitarbeiter bitte",
    "Is there a human I can speak to?",
    "Bist du ein Bot? Dann will ich einen Menschen.",
    "Are you a human? If not, put me through to an agent.",
    "Ich will mit einer Person sprechen, nicht mit einem Bot",
    "Weiß jemand, ob ein Mitarbeiter verfügbar ist?",
    "if a human could call me that would be great",
])
def test_a_request_for_a_person_hands_over_even_next_to_an_identity_question(text: str) -> None:
    assert asks_for_human(text, WORDS)


@pytest.mark.parametrize("text", [
    "Bist du sicher?", "Bist du noch da?", "Are you open on Sunday?", "Is this a bug?",
    "Is this automated billing?", "Ist das ein Fehler in der Rechnung?", "Ist ein Mitarbeiter frei?",
    "Is this person allowed to see my invoice?",
])
def test_ordinary_questions_are_not_identity_questions(text: str) -> None:
    assert not asks_what_i_am(text)


@pytest.mark.parametrize("text", ["Ich bin auch nur ein Mensch", "Ich bin Mensch, kein Roboter", "I'm human too",
                                  "Wie viele Personen können das Konto nutzen?", "Tisch für eine Person"])
def test_talk_about_oneself_or_a_head_count_is_not_a_request(text: str) -> None:
    assert not asks_for_human(text, WORDS)


def _identity_items() -> list[dict[str, object]]:
    return [json.loads(line) for line in IDENTITY_DATA.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_identity_set_is_large_bilingual_and_covers_three_classes() -> None:
    items = _identity_items()
    assert len(items) >= 100
    for lang in ("de", "en"):
        labels = [i["label"] for i in items if i["lang"] == lang]
        assert all(labels.count(label) >= 15 for label in ("identity", "person", "neither")), lang


def test_trigger_tells_identity_questions_from_requests_on_the_labelled_set() -> None:
    """Guards against regressions; the figures come from bench/identity_eval.py."""
    items = _identity_items()
    handed_over = [it for it in items if asks_for_human(str(it["text"]), WORDS)]
    identity = [it for it in items if it not in handed_over and asks_what_i_am(str(it["text"]))]
    assert not [it for it in handed_over if it["label"] == "identity"], "an identity question was handed over"
    missed = [it for it in items if it["label"] == "person" and it not in handed_over]
    assert len(missed) <= 0.05 * sum(it["label"] == "person" for it in items)
    recall = sum(it["label"] == "identity" for it in identity) / sum(it["label"] == "identity" for it in items)
    assert recall >= 0.9


@pytest.mark.parametrize("text", [
    "Okay, vielen Dank, tschüss!", "ok thank you bye", "Danke schön, schönen Tag noch!", "bye", "Tschüss",
    "That's all, thank you very much",
])
def test_saying_a_polite_closing_again_is_not_a_repeated_question(text: str) -> None:
    signal = frustration_score(text, [text, "Wie sind eure Öffnungszeiten?", text])
    assert "repeated_question" not in signal.reasons
    assert not signal.exceeds(THRESHOLD)


@pytest.mark.parametrize("closing", ["Danke, tschüss", "ok thanks, bye", "Vielen Dank, das war alles"])
def test_a_question_asked_again_after_a_closing_starts_a_new_issue(closing: str) -> None:
    question = "Wie sind eure Öffnungszeiten?"
    assert "repeated_question" not in frustration_score(question, [question, closing]).reasons
    assert "repeated_question" in frustration_score(question, [closing, question, "Hallo"]).reasons


def test_a_re_sent_answer_is_not_a_repeated_question() -> None:
    assert "repeated_question" not in frustration_score("Meine Bestellnummer ist HW-123456",
                                                        ["Meine Bestellnummer ist HW-123456"]).reasons


@pytest.mark.parametrize("text", [
    "text forwarded many times",
    "FYI forwarded many times: the office will be closed on Friday",
    "Text, der schon oft weitergeleitet wurde",
    "Ich habe es jetzt zum zweiten Mal probiert und jetzt klappt es, danke!",
    "I tried it a second time and now it works, thanks!",
    "Gibt es das Angebot immer noch?",
    "Schon wieder ich :) Noch eine kurze Frage zu den Tarifen.",
])
def test_forwarded_texts_and_success_reports_are_not_frustration(text: str) -> None:
    signal = frustration_score(text, [])
    assert not signal.exceeds(THRESHOLD), signal


@pytest.mark.parametrize("text", [
    "I have asked three times now, where is my refund?",
    "Meine Website ist immer noch offline",
    "Ich warte immer noch auf meine Rechnung!!",
])
def test_real_persistence_still_counts(text: str) -> None:
    assert any(r.startswith("persistence") for r in frustration_score(text, []).reasons)
