"""The `AdapterContext` the core hands to every adapter."""

from __future__ import annotations

from typing import Any, Protocol

from core.files import FileStore, StoredFile
from core.model import Event, Identity
from core.ports import Parsed
from core.store.base import Store


class Accepts(Protocol):
    """Where an adapter's parsed input goes: ingest (`core.pipeline.path.MessagePath.accept`)."""

    async def accept(self, parsed: Parsed) -> None: ...


class FarmAdapterContext:
    """Ingest, transcript look-up, adapter state and leases, scoped to one adapter."""

    def __init__(self, store: Store, ingest: Accepts, *, owner: str, scope: str) -> None:
        self.store = store
        self.ingest = ingest
        self.owner = owner
        self.scope = scope  # "<bot>:<channel>": keeps adapters' keys apart

    async def accept(self, parsed: Parsed) -> None:
        await self.ingest.accept(parsed)

    async def history(self, bot: str, channel: str, chat_id: str, after_seq: int = 0) -> list[Event]:
        contacts = await self.store.find_contacts(bot, identity=Identity(channel, chat_id, chat_id))
        if not contacts:
            return []
        conversation = await self.store.conversation_for(bot, contacts[0].id)
        return await self.store.transcript(conversation.id, after_seq=after_seq, limit=500)

    async def kv_get(self, key: str) -> Any | None:
        return await self.store.kv_get(f"adapter:{self.scope}:{key}")

    async def kv_set(self, key: str, value: Any, ttl_seconds: float | None = None) -> None:
        await self.store.kv_set(f"adapter:{self.scope}:{key}", value, ttl_seconds)

    async def read_file(self, file_id: str) -> StoredFile | None:
        return await FileStore(self.store).get(file_id)

    async def acquire_lease(self, name: str, ttl_seconds: float) -> bool:
        return await self.store.acquire_lease(name, self.owner, ttl_seconds)

    async def release_lease(self, name: str) -> None:
        await self.store.release_lease(name, self.owner)
