"""The web chat's HTML page, static assets and launcher script, rendered in the page's language."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib import resources

from channels import webchat_labels as labels_
from channels.webchat_files import human_size

_PAGE_LABELS = ("chat_with", "placeholder", "message_label", "send", "attach", "connecting", "typing_bot")
_STATIC_CACHE: dict[str, str] = {}


def read_static(name: str) -> str:
    if name not in _STATIC_CACHE:
        _STATIC_CACHE[name] = resources.files("channels").joinpath("webchat_static", name).read_text("utf-8")
    return _STATIC_CACHE[name]


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def render_page(
    *,
    bot: str,
    title: str,
    language: str,
    offered: Sequence[str],
    overrides: Mapping[str, Mapping[str, str]],
    max_upload_bytes: int,
    allowed_types: Sequence[str],
    embedded: bool,
) -> str:
    """The page with its labels in ``language`` (first paint, no script needed) and the catalogue
    of every ``offered`` language for the script to switch to."""
    words = labels_.labels(language, overrides)
    config = {
        "bot": bot, "title": title, "language": language,
        "labels": labels_.catalogue(dict.fromkeys([language, *offered]), overrides),
        "maxUploadBytes": max_upload_bytes, "allowedTypes": list(allowed_types),
        "maxUploadText": human_size(max_upload_bytes), "embedded": embedded,
    }
    replacements = {
        "{{BOT}}": bot, "{{TITLE}}": escape(title), "{{LANG}}": language,
        "{{CONFIG}}": json.dumps(config, ensure_ascii=False).replace("<", "\\u003c"),
        "{{ACCEPT}}": ",".join(allowed_types),
    }
    for key in _PAGE_LABELS:
        replacements[f"{{{{L:{key}}}}}"] = escape(labels_.fill(words[key], title=title))
    html = read_static("chat.html")
    for key, value in replacements.items():
        html = html.replace(key, value)
    return html


def render_widget(*, bot: str, label: str) -> str:
    """The launcher script for ``bot``; ``label`` names its button and iframe."""
    return read_static("widget.js").replace("{{BOT}}", json.dumps(bot)).replace(
        "{{TITLE}}", json.dumps(label, ensure_ascii=False).replace("<", "\\u003c"))
