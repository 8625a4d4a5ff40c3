"""The farm's own texts (disclosure, handoff, waiting, business hours, rating, errors, link codes,
erasure), one catalogue file per language: ``core/i18n/<lang>.yml``.

A bot overrides any text per language in farm.yml (``bots.<name>.messages.<lang>.<key>``); a
language the farm has no file for (``fr``) works once a bot supplies its texts there. Lookup
order: the bot's override for the language, the built-in file for the language, the bot's
English override, built-in English. Keys and placeholders are those of ``en.yml``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import structlog
import yaml

from core.nlu.language_choice import base

log = structlog.get_logger(__name__)

FALLBACK = "en"
_DIR = Path(__file__).parent


@cache
def builtin() -> Mapping[str, Mapping[str, str]]:
    """Every ``<lang>.yml`` next to this module, by language code (read once)."""
    texts: dict[str, dict[str, str]] = {}
    for path in sorted(_DIR.glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        texts[path.stem] = {str(k): str(v) for k, v in data.items()}
    return texts


class Catalogue:
    """A bot's texts: built-ins under its overrides (``BotConfig.messages``)."""

    def __init__(self, overrides: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.overrides = {base(lang) or lang: dict(texts) for lang, texts in (overrides or {}).items()}

    def raw(self, key: str, language: str | None) -> str:
        """The unformatted text; KeyError names the key when no catalogue has it."""
        code = base(language) or FALLBACK
        for lang in dict.fromkeys((code, FALLBACK)):
            for source in (self.overrides.get(lang, {}), builtin().get(lang, {})):
                if key in source:
                    return source[key]
        raise KeyError(f"no text {key!r} in any message catalogue")

    def text(self, key: str, language: str | None, **values: object) -> str:
        return self.raw(key, language).format(**values)

    def has(self, key: str, language: str | None) -> bool:
        """True when ``language`` itself (not the English fallback) has ``key``."""
        code = base(language) or FALLBACK
        return key in self.overrides.get(code, {}) or key in builtin().get(code, {})


DEFAULT = Catalogue()


def for_bot(bot_config: Any) -> Catalogue:
    """The catalogue of a bot config (anything with a ``messages`` mapping; the built-ins otherwise)."""
    overrides = getattr(bot_config, "messages", None)
    return Catalogue(overrides) if overrides else DEFAULT
