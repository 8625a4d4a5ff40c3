"""`core.files`: an agent's file is kept only within the configured size and types (the type the
content proves, not the name); refusals say why in words an agent understands; customer media is
fetched from the channel once and then served from the store."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from core.files import (
    DeskFilesConfig,
    FileRefused,
    FileStore,
    StoredFile,
    is_stored,
    safe_name,
    sniff,
)
from core.model import Attachment
from tests.support.files import pdf, png


class MemoryKV:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.ttls: dict[str, float | None] = {}

    async def kv_get(self, key: str) -> Any | None:
        return self.values.get(key)

    async def kv_set(self, key: str, value: Any, ttl_seconds: float | None = None) -> None:
        self.values[key] = value
        self.ttls[key] = ttl_seconds


async def test_an_allowed_file_is_kept_with_the_type_its_content_proves() -> None:
    kv = MemoryKV()
    files = FileStore(kv, DeskFilesConfig(keep_days=2))
    attachment = await files.put(png(), "../../etc/Foto vom Router.exe", caption="Hier")
    assert (attachment.kind, attachment.mime_type, attachment.name) == ("image", "image/png", "Foto vom Router.exe")
    assert is_stored(attachment) and attachment.caption == "Hier"
    kept = await files.get(str(attachment.file_id))
    assert kept is not None and kept.data == png() and kept.size == attachment.size
    assert kv.ttls[f"files:{attachment.file_id}"] == 2 * 86400


async def test_too_large_and_wrong_types_are_refused_with_the_reason() -> None:
    files = FileStore(MemoryKV(), DeskFilesConfig(max_bytes=2_000, allowed_types=["application/pdf"]))
    with pytest.raises(FileRefused, match=r"“big.pdf” is 3 kB; files up to 2 kB can be sent"):
        await files.put(pdf() + b" " * 3_000, "big.pdf")
    with pytest.raises(FileRefused, match=r"“photo.pdf” is not a PDF file"):
        await files.put(png(), "photo.pdf")  # named like a PDF, but a PNG
    with pytest.raises(FileRefused, match=r"of type application/zip; customers can be sent PDF"):
        files.check(10, "application/zip", "tools.zip")
    with pytest.raises(FileRefused, match="empty"):
        await files.put(b"", "nothing.pdf")


def test_only_types_the_content_check_knows_can_be_allowed() -> None:
    with pytest.raises(ValidationError, match="application/zip"):
        DeskFilesConfig(allowed_types=["application/zip"])
    with pytest.raises(ValidationError):
        DeskFilesConfig(max_bytes=20_000_000)  # a file is one store value


async def test_customer_media_is_fetched_from_the_channel_once() -> None:
    calls: list[Attachment] = []

    class Channel:
        async def fetch_media(self, attachment: Attachment, max_bytes: int) -> StoredFile:
            calls.append(attachment)
            return StoredFile(str(attachment.file_id), "image/png", "photo.png", png())

    files = FileStore(MemoryKV(), channel_for=lambda bot, channel: Channel() if channel == "telegram" else None)
    photo = Attachment(kind="image", file_id="AgACAgIAAxkB")
    first = await files.customer_media("demo", "telegram", photo)
    second = await files.customer_media("demo", "telegram", photo)
    assert first is not None and second is not None and first.data == second.data == png()
    assert len(calls) == 1
    assert await files.customer_media("demo", "sms", photo) is None  # no adapter that can fetch
    assert await files.customer_media("demo", "telegram", Attachment(kind="location", url="geo:1,2")) is None
    huge = Attachment(kind="document", file_id="BQAC", size=50_000_000)
    assert await files.customer_media("demo", "telegram", huge) is None


@given(st.binary(max_size=64))
def test_sniffing_never_fails_and_only_names_known_types(data: bytes) -> None:
    assert sniff(data) in (None, "image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf")


@given(st.text(max_size=300))
def test_a_safe_name_has_no_path_and_is_never_empty(name: str) -> None:
    safe = safe_name(name, "image/png")
    assert safe and "/" not in safe and "\\" not in safe and len(safe) <= 80
    assert not safe.startswith(".")
