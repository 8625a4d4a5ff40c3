"""Store settings (``store`` in farm.yml)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator


class StoreConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["sqlite", "mongodb"] = "sqlite"
    path: str = "./data/switchboard.db"
    url: str | None = None
    database: str = "switchboard"

    @model_validator(mode="after")
    def _url_for_mongodb(self) -> StoreConfig:
        if self.kind == "mongodb" and not self.url:
            raise ValueError("store.kind is mongodb but store.url is empty")
        return self
