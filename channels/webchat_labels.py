"""The web chat page's words, per language, and which language a page shows.

The catalogue is small on purpose: every label the page shows (placeholder, buttons,
status and error texts, message states). A bot overrides single labels with
``channels.webchat.labels`` in farm.yml (``{de: {send: "Los"}}``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

CATALOGUE: dict[str, dict[str, str]] = {
    "en": {
        "chat_with": "Chat with {title}",
        "placeholder": "Type a message…",
        "message_label": "Your message",
        "send": "Send",
        "attach": "Attach a photo or PDF",
        "connecting": "connecting…",
        "online": "online",
        "reconnecting": "reconnecting…",
        "waiting": "Waiting for a person",
        "waiting_position": "Waiting for a person – you are number {position} in the queue",
        "waiting_minutes": "about {minutes} min",
        "with_agent": "You are chatting with {name}",
        "with_agent_unnamed": "You are chatting with a person from our team",
        "agent": "Agent",
        "typing_bot": "The assistant is typing…",
        "typing_agent": "{name} is typing…",
        "pending": "sending…",
        "sent": "sent",
        "delivered": "delivered",
        "read": "read",
        "queued_for_agent": "saved – a person will read it",
        "error_generic": "Something went wrong; please try again.",
        "error_upload_type": "Only photos (PNG, JPEG, GIF, WebP) and PDF files can be sent.",
        "error_upload_size": "The file is too large (at most {max}).",
        "error_upload": "The file could not be sent; please try again.",
        "error_slow_down": "Too many messages; please wait a moment.",
        "attachment": "Attachment",
        "quick_replies": "Suggested answers",
    },
    "de": {
        "chat_with": "Chat mit {title}",
        "placeholder": "Nachricht schreiben…",
        "message_label": "Ihre Nachricht",
        "send": "Senden",
        "attach": "Foto oder PDF anhängen",
        "connecting": "verbinde…",
        "online": "online",
        "reconnecting": "verbinde erneut…",
        "waiting": "Warten auf eine Person",
        "waiting_position": "Warten auf eine Person – Sie sind Nummer {position} in der Warteschlange",
        "waiting_minutes": "etwa {minutes} Min.",
        "with_agent": "Sie schreiben mit {name}",
        "with_agent_unnamed": "Sie schreiben mit einer Person aus unserem Team",
        "agent": "Mitarbeiter",
        "typing_bot": "Der Assistent schreibt…",
        "typing_agent": "{name} schreibt…",
        "pending": "wird gesendet…",
        "sent": "gesendet",
        "delivered": "zugestellt",
        "read": "gelesen",
        "queued_for_agent": "gespeichert – eine Person liest es gleich",
        "error_generic": "Da ist etwas schiefgelaufen; bitte versuchen Sie es erneut.",
        "error_upload_type": "Es können nur Fotos (PNG, JPEG, GIF, WebP) und PDF-Dateien gesendet werden.",
        "error_upload_size": "Die Datei ist zu groß (höchstens {max}).",
        "error_upload": "Die Datei konnte nicht gesendet werden; bitte erneut versuchen.",
        "error_slow_down": "Zu viele Nachrichten; bitte warten Sie einen Moment.",
        "attachment": "Anhang",
        "quick_replies": "Antwortvorschläge",
    },
}

KEYS = frozenset(CATALOGUE["en"])


def primary(tag: str) -> str:
    """``de-AT`` → ``de``; lower case."""
    return tag.strip().split("-", 1)[0].split("_", 1)[0].lower()


def labels(language: str, overrides: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, str]:
    """All labels in ``language`` (English for a missing one), with the bot's overrides applied."""
    chosen = dict(CATALOGUE["en"])
    chosen.update(CATALOGUE.get(language, {}))
    chosen.update((overrides or {}).get(language, {}))
    return chosen


def catalogue(languages: Iterable[str], overrides: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, dict[str, str]]:
    """The labels of every language the page may switch to."""
    return {lang: labels(lang, overrides) for lang in languages}


def page_language(
    *,
    default: str,
    offered: Iterable[str],
    conversation: str | None = None,
    browser: Iterable[str] = (),
) -> str:
    """The page's language: the conversation's (what the customer writes in), else the first
    of the browser's languages the bot offers, else the bot's default."""
    offered_set = {primary(x) for x in offered} | {primary(default)}
    if conversation and primary(conversation) in offered_set:
        return primary(conversation)
    for tag in browser:
        if isinstance(tag, str) and primary(tag) in offered_set:
            return primary(tag)
    return primary(default)


def fill(text: str, **values: object) -> str:
    """``{name}`` placeholders filled; unknown braces in a bot's own label are left as they are."""
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    return text
