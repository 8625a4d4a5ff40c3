"""`ContactStore`: contacts and their channel identities (one contact per person and bot)."""

from __future__ import annotations

from abc import ABC, abstractmethod

from core.model import Contact, Identity


class ContactStore(ABC):
    """Contacts and their channel identities (one contact per person and bot)."""

    @abstractmethod
    async def resolve_contact(
        self, bot: str, identity: Identity, *, display_name: str | None = None
    ) -> Contact:
        """The contact owning ``identity`` in ``bot``, created if new; marks the channel as last used."""

    @abstractmethod
    async def get_contact(self, contact_id: str) -> Contact | None: ...

    @abstractmethod
    async def save_contact(self, contact: Contact) -> None:
        """Store every field of ``contact`` (identities included)."""

    @abstractmethod
    async def find_contacts(
        self, bot: str, *, phone: str | None = None, identity: Identity | None = None
    ) -> list[Contact]:
        """Contacts of ``bot`` with this verified phone or this channel identity."""

    @abstractmethod
    async def merge_contacts(self, keep_id: str, drop_id: str) -> Contact:
        """Move identities, conversations' transcript and inbox of ``drop_id`` to ``keep_id``.

        The transcripts are merged in time order into the kept contact's
        conversation (renumbered, and its version increased); the dropped contact and
        conversation disappear.
        """
