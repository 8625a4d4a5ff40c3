"""What the customer is told around a handoff, from the message catalogues (`core.i18n`).

Honest and concrete: who answers next (a person), roughly when, what the customer can
do meanwhile ("bot" returns to the bot). `text(key, language, catalogue, **values)` picks the
conversation's language (``de-AT`` → ``de``), English when the catalogue lacks it; pass the
bot's catalogue (`core.i18n.for_bot`) so its farm.yml overrides apply.
"""

from __future__ import annotations

from datetime import datetime

from core.i18n import DEFAULT, FALLBACK, Catalogue
from core.model import Button
from core.nlu.language_choice import base

CSAT_PAYLOAD = "/csat"
CALLBACK_PAYLOAD = "/handoff_callback"
EMAIL_PAYLOAD = "/handoff_email"
KEEP_WAITING_PAYLOAD = "/handoff_wait"
BACK_TO_BOT_PAYLOAD = "/back_to_bot"



def lang(language: str | None) -> str:
    """``de``/``de-AT`` → ``de``; None → ``en`` (the catalogues' fallback)."""
    return base(language) or FALLBACK


def text(key: str, language: str | None, catalogue: Catalogue = DEFAULT, **values: object) -> str:
    """A catalogue text (`core.i18n`) in ``language``, English when the language has none."""
    return catalogue.text(key, language, **values)


def when(opening: datetime, now: datetime, language: str | None, catalogue: Catalogue = DEFAULT) -> str:
    """``today at 08:00`` / ``heute um 08:00 Uhr``, ``tomorrow …``, ``on Monday …`` (opening's local time)."""
    local_now = now.astimezone(opening.tzinfo)
    days = (opening.date() - local_now.date()).days
    clock = opening.strftime("%H:%M")
    key = "when_today" if days == 0 else "when_tomorrow" if days == 1 else "when_weekday"
    weekday = catalogue.text(f"weekday_{opening.weekday()}", language)
    return catalogue.text(key, language, clock=clock, weekday=weekday)


def handoff_text(language: str | None, *, minutes: int, opening: datetime | None, now: datetime,
                 open_now: bool, catalogue: Catalogue = DEFAULT) -> str:
    """The first thing the customer hears after asking for (or being given) a person."""
    if open_now:
        return catalogue.text("handoff", language, minutes=minutes)
    back = catalogue.text("back_at", language, when=when(opening, now, language, catalogue)) if opening else \
        catalogue.text("back_unknown", language)
    return catalogue.text("handoff_closed", language, back=back)


def waiting_buttons(language: str | None, catalogue: Catalogue = DEFAULT) -> tuple[Button, ...]:
    return (
        Button(catalogue.text("callback", language), CALLBACK_PAYLOAD),
        Button(catalogue.text("email", language), EMAIL_PAYLOAD),
        Button(catalogue.text("keep_waiting", language), KEEP_WAITING_PAYLOAD),
    )


def csat_buttons() -> tuple[Button, ...]:
    return tuple(Button(str(n), f'{CSAT_PAYLOAD}{{"score":{n}}}') for n in range(1, 6))

