"""Privacy settings, per bot (``bots.<name>.privacy`` in farm.yml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


def _disclosure_defaults() -> dict[str, str]:
    return {
        "en": 'You are chatting with an automated assistant. Type "human" at any time to reach a person.',
        "de": "Sie schreiben mit einem automatischen Assistenten. Schreiben Sie jederzeit "
        "„Mensch“, um eine Person zu erreichen.",
    }


def _forget_defaults() -> dict[str, str]:
    return {
        "en": "Your data and this conversation have been deleted. If you write again, we start afresh.",
        "de": "Ihre Daten und dieser Chatverlauf wurden gelöscht. Wenn Sie wieder schreiben, beginnen wir neu.",
    }


class PrivacyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retention_days: int | None = Field(default=365, description="Purge transcripts older than this.")
    mask_patterns: list[str] = Field(default_factory=list, description="Extra regexes to mask.")
    link_code_ttl_seconds: int = 600
    link_code_attempts: int = 5
    disclosure: bool = Field(default=True, description="Say 'automated assistant' in the first bot reply.")
    disclosure_text: dict[str, str] = Field(
        default_factory=_disclosure_defaults, description="Disclosure by language code; 'en' is the fallback."
    )
    forget_confirmation_text: dict[str, str] = Field(
        default_factory=_forget_defaults, description="Told to the customer after their data was erased."
    )
