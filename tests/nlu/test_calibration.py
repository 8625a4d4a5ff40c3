"""Calibrated confidences: among many near-duplicate intents (25 card intents of BANKING77)
a clearly-worded message is not turned into nlu_fallback by the ambiguity rule, while
out-of-scope gibberish still falls back."""

from __future__ import annotations

import csv
import gzip
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from core.nlu.classifier import confidences
from core.nlu.model import FALLBACK_INTENT, NluModel
from core.rasa.nlu_data import Example, NluData

BANKING77 = Path(__file__).resolve().parents[2] / "bench" / "datasets" / "banking77" / "train.csv.gz"
CARD_INTENTS = {
    "activate_my_card", "card_arrival", "card_delivery_estimate", "card_not_working", "card_about_to_expire",
    "card_acceptance", "card_linking", "card_swallowed", "card_payment_fee_charged", "card_payment_not_recognised",
    "card_payment_wrong_exchange_rate", "compromised_card", "contactless_not_working", "declined_card_payment",
    "get_physical_card", "getting_spare_card", "getting_virtual_card", "lost_or_stolen_card", "order_physical_card",
    "pin_blocked", "change_pin", "virtual_card_not_working", "get_disposable_virtual_card", "disposable_card_limits",
    "visa_or_mastercard",
}
CLEAR = [
    ("I just got my new card in the mail, how do I activate it?", "activate_my_card"),
    ("My card is about to expire, how do I get a replacement?", "card_about_to_expire"),
    ("The ATM swallowed my card and did not give it back", "card_swallowed"),
    ("I entered the wrong PIN too many times and now it is blocked", "pin_blocked"),
    ("Contactless payments are not working with my card", "contactless_not_working"),
    ("Someone stole my card, please help", "lost_or_stolen_card"),
]


@pytest.fixture(scope="module")
def model() -> NluModel:
    per_intent: dict[str, list[str]] = defaultdict(list)
    with gzip.open(BANKING77, "rt", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["category"] in CARD_INTENTS and len(per_intent[row["category"]]) < 40:
                per_intent[row["category"]].append(row["text"])
    data = NluData(examples=[Example(text, intent) for intent, texts in per_intent.items() for text in texts])
    return NluModel.train(data, entities=[], threshold=0.3, ambiguity_threshold=0.1)


@pytest.mark.parametrize("text, intent", CLEAR)
def test_clear_intent_among_near_duplicates_is_not_turned_into_fallback(model: NluModel, text: str, intent: str) -> None:
    parse = model.parse(text)
    assert parse.intent == intent, parse.ranking[:3]
    assert parse.ranking[0][1] - parse.ranking[1][1] >= model.ambiguity_threshold


@pytest.mark.parametrize("text", ["zorp blivet quanx", "asdf qwerty uiop", "what is the weather in Lisbon tomorrow"])
def test_out_of_scope_gibberish_still_falls_back(model: NluModel, text: str) -> None:
    parse = model.parse(text)
    assert parse.intent == FALLBACK_INTENT, parse.ranking[:3]
    assert parse.confidence == model.threshold


def test_confidences_sum_to_at_most_one_and_rejected_messages_score_low() -> None:
    margins = np.array([[0.9, -0.1, -1.0], [-0.9, -0.95, -1.0]])
    probs = confidences(margins, 0.15, -0.4)
    assert np.all(probs.sum(axis=1) <= 1.0 + 1e-9)
    assert probs[0, 0] > 0.9 and probs[1].max() < 0.1
    assert np.allclose(confidences(margins, 0.15, None).sum(axis=1), 1.0)
