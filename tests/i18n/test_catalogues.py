"""The farm's message catalogues: every language complete, overrides win, unknown languages fall back."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from core.config import BotConfig
from core.handoff import messages
from core.i18n import Catalogue, builtin, for_bot

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def test_every_catalogue_has_every_english_key_with_the_same_placeholders() -> None:
    english = builtin()["en"]
    assert {"de", "en", "tr"} <= set(builtin())
    for language, texts in builtin().items():
        assert set(texts) == set(english), language
        for key, text in texts.items():
            assert set(_PLACEHOLDER.findall(text)) == set(_PLACEHOLDER.findall(english[key])), (language, key)


def test_a_bot_override_from_farm_yml_wins_for_its_language_only() -> None:
    config = BotConfig(project="demo", messages={"tr": {"handoff": "Hemen bağlıyorum ({minutes} dk)."}})
    catalogue = for_bot(config)
    assert catalogue.text("handoff", "tr", minutes=3) == "Hemen bağlıyorum (3 dk)."
    assert catalogue.text("handoff", "de", minutes=3).startswith("Ich gebe Sie jetzt")


def test_a_language_without_a_catalogue_uses_the_bots_texts_then_english() -> None:
    catalogue = Catalogue({"fr": {"csat_thanks": "Merci pour votre note !"}})
    assert catalogue.text("csat_thanks", "fr-CH") == "Merci pour votre note !"
    assert catalogue.text("csat_question", "fr").startswith("How satisfied")


def test_business_hours_are_said_in_the_customers_language() -> None:
    now = datetime(2026, 12, 4, 19, 0, tzinfo=UTC)  # a Friday evening
    opening = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    assert messages.when(opening, now, "tr") == "Pazartesi saat 08:00'da"
    assert messages.when(opening, now, "de") == "am Montag um 08:00 Uhr"
    text = messages.handoff_text("en", minutes=5, opening=opening, now=now, open_now=False)
    assert "They're back on Monday at 08:00." in text


def test_farm_yml_rejects_an_override_of_a_text_that_does_not_exist() -> None:
    with pytest.raises(ValidationError, match="messages.en.handof: no such text"):
        BotConfig(project="demo", messages={"en": {"handof": "typo"}})
    with pytest.raises(ValidationError, match="placeholders must be among"):
        BotConfig(project="demo", messages={"de": {"claimed": "{name} antwortet Ihnen jetzt."}})
