"""Pure rules of the handoff: business hours, customer commands, CSAT answers, fallback streaks."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import ConfigError
from core.handoff import messages
from core.handoff.config import HandoffConfig
from core.handoff.hooks import csat_score, fallback_streak, is_back_to_bot, is_restart
from core.handoff.hours import BusinessHours
from core.model import Event

BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS = {d: "08:00-18:00" for d in ("mon", "tue", "wed", "thu", "fri")}


def hours(**config: object) -> BusinessHours:
    return BusinessHours.from_config(HandoffConfig(**config))  # type: ignore[arg-type]


def test_open_on_weekdays_within_hours_in_local_time() -> None:
    h = hours(business_hours=WEEKDAYS, timezone="Europe/Berlin")
    assert h.is_open(datetime(2026, 11, 23, 7, 30, tzinfo=UTC))  # Monday 08:30 in Berlin (CET)
    assert not h.is_open(datetime(2026, 11, 23, 6, 59, tzinfo=UTC))  # 07:59 Berlin
    assert not h.is_open(datetime(2026, 11, 23, 17, 0, tzinfo=UTC))  # 18:00 Berlin: closed
    assert not h.is_open(datetime(2026, 11, 28, 10, 0, tzinfo=UTC))  # Saturday


def test_next_opening_after_a_friday_evening_is_monday_morning() -> None:
    h = hours(business_hours=WEEKDAYS, timezone="Europe/Berlin")
    friday_evening = datetime(2026, 11, 27, 19, 0, tzinfo=UTC)
    opening = h.next_opening(friday_evening)
    assert opening == datetime(2026, 11, 30, 8, 0, tzinfo=BERLIN)
    assert messages.when(opening, friday_evening, "de") == "am Montag um 08:00 Uhr"
    assert messages.when(opening, friday_evening, "en") == "on Monday at 08:00"


def test_next_opening_the_same_morning_and_summer_time() -> None:
    h = hours(business_hours=WEEKDAYS, timezone="Europe/Berlin")
    early = datetime(2026, 7, 1, 4, 0, tzinfo=UTC)  # Wednesday 06:00 CEST
    opening = h.next_opening(early)
    assert opening is not None and opening.astimezone(UTC) == datetime(2026, 7, 1, 6, 0, tzinfo=UTC)
    assert messages.when(opening, early, "de") == "heute um 08:00 Uhr"


def test_split_spans_and_midnight_end() -> None:
    h = hours(business_hours={"mon": "08:00-12:00, 13:00-24:00", "sat": "closed"}, timezone="UTC")
    assert h.is_open(datetime(2026, 11, 23, 11, 59, tzinfo=UTC))
    assert not h.is_open(datetime(2026, 11, 23, 12, 30, tzinfo=UTC))
    assert h.is_open(datetime(2026, 11, 23, 23, 59, tzinfo=UTC))
    assert h.next_opening(datetime(2026, 11, 23, 12, 30, tzinfo=UTC)) == datetime(2026, 11, 23, 13, 0, tzinfo=ZoneInfo("UTC"))


def test_no_business_hours_means_always_open() -> None:
    assert hours(business_hours={}).is_open(datetime(2026, 11, 29, 3, 0, tzinfo=UTC))


def test_never_open_has_no_next_opening() -> None:
    assert hours(business_hours={"mon": "closed"}).next_opening(datetime(2026, 11, 23, tzinfo=UTC)) is None


@pytest.mark.parametrize(("config", "key"), [
    ({"business_hours": {"monday": "08:00-18:00"}}, "handoff.business_hours"),
    ({"business_hours": {"mon": "8-18"}}, "handoff.business_hours.mon"),
    ({"business_hours": {"mon": "18:00-08:00"}}, "handoff.business_hours.mon"),
    ({"business_hours": {"mon": "08:00-24:30"}}, "handoff.business_hours.mon"),
    ({"timezone": "Mars/Olympus"}, "handoff.timezone"),
])
def test_bad_business_hours_fail_fast_naming_the_key(config: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as error:
        hours(**config)
    assert error.value.key == key


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_next_opening_is_open_and_never_in_the_past(at: datetime) -> None:
    h = hours(business_hours={"tue": "09:30-10:00", "sat": "00:00-01:00"}, timezone="Europe/Berlin")
    opening = h.next_opening(at)
    assert opening is not None and opening >= at and h.is_open(opening)


@pytest.mark.parametrize("text", ["bot", "Bot!", "zurück zum Bot", "Zurueck zum Bot bitte", "back to the bot",
                                  "/bot"])
def test_back_to_bot_commands(text: str) -> None:
    assert is_back_to_bot(text, None)


@pytest.mark.parametrize("text", ["der Bot hat mir nicht geholfen", "robot", "bottle", "Bot ist doof und hilft nicht"])
def test_sentences_about_the_bot_are_not_commands(text: str) -> None:
    assert not is_back_to_bot(text, None)


def test_restart_command() -> None:
    assert is_restart("/restart", None) and is_restart("", "/restart")
    assert not is_restart("restart my server please", None)


@pytest.mark.parametrize(("text", "payload", "score"), [
    ("", '/csat{"score":4}', 4), ("5", None, 5), (" 3 ", None, 3), ("2 Sterne", None, 2), ("4/5", None, 4),
    ("", '/csat{"score":9}', None), ("", "/csat{bad", None), ("6", None, None), ("12345", None, None),
    ("sehr gut", None, None), ("3", "/deny", None),
])
def test_csat_answers(text: str, payload: str | None, score: int | None) -> None:
    assert csat_score(text, payload) == score


def user(intent: str) -> Event:
    return Event("user", {"text": intent, "parse_data": {"intent": {"name": intent}}})


def test_fallback_streak_counts_consecutive_fallback_turns_and_resets() -> None:
    fallback_turn = [user("nlu_fallback"), Event("action", {"name": "action_default_fallback"})]
    ok_turn = [user("greet"), Event("action", {"name": "utter_greet"})]
    assert fallback_streak([*ok_turn, *fallback_turn], fallback_turn) == 2
    assert fallback_streak([*fallback_turn, *ok_turn], fallback_turn) == 1
    assert fallback_streak(fallback_turn, ok_turn) == 0
    handed_back = [*fallback_turn, Event("status", {"status": "bot"})]
    assert fallback_streak(handed_back, fallback_turn) == 1


def test_a_successful_rephrase_after_a_two_stage_fallback_is_not_a_second_fallback() -> None:
    not_understood = [user("nlu_fallback"), Event("action", {"name": "action_two_stage_fallback"})]
    rephrased = [user("greet"), Event("action", {"name": "action_two_stage_fallback"}),
                 Event("action", {"name": "utter_greet"})]
    assert fallback_streak(not_understood, rephrased) == 0
    assert fallback_streak(not_understood, not_understood) == 2
