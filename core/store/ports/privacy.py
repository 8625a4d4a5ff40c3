"""`PrivacyStore` (export, forget, retention) and `AuditStore` (who did what)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any

from core.store.records import AuditEntry


class PrivacyStore(ABC):
    """What the data-protection duties need: export a contact, erase one, purge old transcripts."""

    @abstractmethod
    async def export_contact(self, contact_id: str) -> dict[str, Any]:
        """Everything held about a contact, JSON-serialisable; {} if unknown or forgotten."""

    @abstractmethod
    async def forget_contact(self, contact_id: str) -> None:
        """Erase personal data and transcript text; keep anonymous counts."""

    @abstractmethod
    async def purge_transcripts(self, bot: str, older_than: datetime) -> int:
        """Delete transcript events older than ``older_than``; return how many."""


class AuditStore(ABC):
    """The audit log of agents' and operators' actions."""

    @abstractmethod
    async def audit(self, entry: AuditEntry) -> None: ...

    @abstractmethod
    async def audit_log(self, *, bot: str | None = None, limit: int = 100) -> list[AuditEntry]: ...
