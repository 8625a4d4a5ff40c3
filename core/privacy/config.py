"""Privacy settings, per bot (``bots.<name>.privacy`` in farm.yml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from core.identity import LINK_CODE_ATTEMPTS, LINK_CODE_TTL_SECONDS


class PrivacyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retention_days: int | None = Field(default=365, description="Purge transcripts older than this.")
    mask_patterns: list[str] = Field(default_factory=list, description="Extra regexes to mask.")
    link_code_ttl_seconds: int = LINK_CODE_TTL_SECONDS
    link_code_attempts: int = LINK_CODE_ATTEMPTS
    disclosure: bool = Field(default=True, description="Say 'automated assistant' in the first bot reply.")
    disclosure_text: dict[str, str] = Field(
        default_factory=dict, description="Disclosure by language code, over the catalogues' 'disclosure' "
        "(core/i18n/<lang>.yml; bots.<name>.messages.<lang>.disclosure says the same)."
    )
    forget_confirmation_text: dict[str, str] = Field(
        default_factory=dict, description="Told to the customer after their data was erased, by language code, "
        "over the catalogues' 'forget_confirmation'."
    )
