"""What the customer is told around a handoff, in German and English.

Honest and concrete: who answers next (a person), roughly when, what the customer can
do meanwhile ("bot" returns to the bot). `text(key, language, **values)` picks the
conversation's language (``de-AT`` → ``de``), English otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from core.model import Button

CSAT_PAYLOAD = "/csat"
CALLBACK_PAYLOAD = "/handoff_callback"
EMAIL_PAYLOAD = "/handoff_email"
KEEP_WAITING_PAYLOAD = "/handoff_wait"
BACK_TO_BOT_PAYLOAD = "/back_to_bot"

TEXTS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "handoff": "I'm passing you to a person from our team now. The expected wait is about {minutes} "
        "minutes. You can keep writing here: everything goes to them, and I will stay quiet. "
        "Type \"bot\" if you'd rather continue with me.",
        "handoff_closed": "Our team is not available right now. {back} Your request is saved with everything "
        "you've told me, and a person will answer you here then. Type \"bot\" if you'd rather continue "
        "with me meanwhile.",
        "back_at": "They're back {when}.",
        "back_unknown": "We can't say yet when they're back.",
        "still_waiting": "Sorry for the wait, everyone is still busy. You can keep waiting here, or we can "
        "call you back or answer by e-mail.",
        "callback": "Call me back",
        "email": "Answer by e-mail",
        "keep_waiting": "Keep waiting",
        "callback_ack": "Noted: a person will call you back. If we don't have your phone number yet, "
        "please type it here.",
        "email_ack": "Noted: a person will answer by e-mail. If we don't have your e-mail address yet, "
        "please type it here.",
        "wait_ack": "Thank you for your patience. A person will be with you as soon as possible.",
        "claimed": "{agent} from our team is now answering you.",
        "customer_back_to_bot": "OK, you're back with the bot. Type \"human\" at any time to reach a person "
        "again.",
        "agent_back_to_bot": "{agent} has handed you back to the bot. Type \"human\" at any time to reach a "
        "person again.",
        "closed": "{agent} has closed this conversation. Thank you for contacting us!",
        "csat_question": "How satisfied were you with the help? 1 = not at all, 5 = very satisfied.",
        "csat_thanks": "Thank you for your rating!",
    },
    "de": {
        "handoff": "Ich gebe Sie jetzt an eine Person aus unserem Team weiter. Die Wartezeit beträgt etwa "
        "{minutes} Minuten. Sie können hier weiterschreiben: Alles geht an diese Person, und ich bin so "
        "lange still. Schreiben Sie „Bot“, wenn Sie lieber mit mir weitermachen möchten.",
        "handoff_closed": "Unser Team ist gerade nicht erreichbar. {back} Ihre Anfrage ist mit allem, was Sie "
        "mir gesagt haben, gespeichert, und eine Person antwortet Ihnen dann hier. Schreiben Sie „Bot“, "
        "wenn Sie bis dahin lieber mit mir weitermachen möchten.",
        "back_at": "Wir sind {when} wieder da.",
        "back_unknown": "Wann wir wieder da sind, können wir noch nicht sagen.",
        "still_waiting": "Entschuldigen Sie die Wartezeit, alle sind noch beschäftigt. Sie können hier weiter "
        "warten, oder wir rufen Sie zurück oder antworten per E-Mail.",
        "callback": "Rückruf",
        "email": "Antwort per E-Mail",
        "keep_waiting": "Weiter warten",
        "callback_ack": "Notiert: Eine Person ruft Sie zurück. Falls wir Ihre Telefonnummer noch nicht haben, "
        "schreiben Sie sie bitte hier.",
        "email_ack": "Notiert: Eine Person antwortet Ihnen per E-Mail. Falls wir Ihre E-Mail-Adresse noch "
        "nicht haben, schreiben Sie sie bitte hier.",
        "wait_ack": "Danke für Ihre Geduld. Eine Person ist so bald wie möglich für Sie da.",
        "claimed": "{agent} aus unserem Team antwortet Ihnen jetzt.",
        "customer_back_to_bot": "In Ordnung, Sie sind wieder beim Bot. Schreiben Sie jederzeit „Mensch“, um "
        "wieder eine Person zu erreichen.",
        "agent_back_to_bot": "{agent} hat Sie an den Bot zurückgegeben. Schreiben Sie jederzeit „Mensch“, um "
        "wieder eine Person zu erreichen.",
        "closed": "{agent} hat das Gespräch beendet. Danke, dass Sie sich an uns gewandt haben!",
        "csat_question": "Wie zufrieden waren Sie mit der Hilfe? 1 = gar nicht, 5 = sehr zufrieden.",
        "csat_thanks": "Danke für Ihre Bewertung!",
    },
}

_WEEKDAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "de": ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
}


def lang(language: str | None) -> str:
    """``de``/``de-AT`` → ``de``; anything else → ``en``."""
    return "de" if (language or "").lower().split("-")[0] == "de" else "en"


def text(key: str, language: str | None, **values: object) -> str:
    return TEXTS[lang(language)][key].format(**values)


def when(opening: datetime, now: datetime, language: str | None) -> str:
    """``today at 08:00`` / ``heute um 08:00 Uhr``, ``tomorrow …``, ``on Monday …`` (opening's local time)."""
    local_now = now.astimezone(opening.tzinfo)
    days = (opening.date() - local_now.date()).days
    clock = opening.strftime("%H:%M")
    if lang(language) == "de":
        day = "heute" if days == 0 else "morgen" if days == 1 else f"am {_WEEKDAYS['de'][opening.weekday()]}"
        return f"{day} um {clock} Uhr"
    day = "today" if days == 0 else "tomorrow" if days == 1 else f"on {_WEEKDAYS['en'][opening.weekday()]}"
    return f"{day} at {clock}"


def handoff_text(language: str | None, *, minutes: int, opening: datetime | None, now: datetime,
                 open_now: bool) -> str:
    """The first thing the customer hears after asking for (or being given) a person."""
    if open_now:
        return text("handoff", language, minutes=minutes)
    back = text("back_at", language, when=when(opening, now, language)) if opening else \
        text("back_unknown", language)
    return text("handoff_closed", language, back=back)


def waiting_buttons(language: str | None) -> tuple[Button, ...]:
    return (
        Button(text("callback", language), CALLBACK_PAYLOAD),
        Button(text("email", language), EMAIL_PAYLOAD),
        Button(text("keep_waiting", language), KEEP_WAITING_PAYLOAD),
    )


def csat_buttons() -> tuple[Button, ...]:
    return tuple(Button(str(n), f'{CSAT_PAYLOAD}{{"score":{n}}}') for n in range(1, 6))

