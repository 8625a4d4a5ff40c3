"""Files customers upload in the web chat: type by content, kept in the store's key-value space.

Why the key-value store and not a directory: it is the one durable place every farm
process shares (SQLite file or MongoDB replica set), it needs no extra volume or path
configuration, and a backup of the store includes the files. The price is size: a file is
one value (base64), so uploads are capped well below MongoDB's 16 MB document limit.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from typing import Any

# Magic bytes → (MIME type, kind as in `core.model.Attachment`). The name a browser sends is never trusted.
_SIGNATURES: tuple[tuple[bytes, int, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png", "image"),
    (b"\xff\xd8\xff", 0, "image/jpeg", "image"),
    (b"GIF87a", 0, "image/gif", "image"),
    (b"GIF89a", 0, "image/gif", "image"),
    (b"%PDF-", 0, "application/pdf", "document"),
)
SUPPORTED_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf")
MAX_UPLOAD_LIMIT = 10_000_000  # base64 of this stays below MongoDB's 16 MB document limit
FILE_ID_RE = re.compile(r"^f_[A-Za-z0-9_-]{22,64}$")
_NAME_RE = re.compile(r"[^\w.\- ()]+", re.UNICODE)


def sniff(data: bytes) -> str | None:
    """The MIME type the content proves (PNG, JPEG, GIF, WebP, PDF), or None."""
    for magic, offset, mime, _kind in _SIGNATURES:
        if data[offset:offset + len(magic)] == magic:
            return mime
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def kind_of(mime: str) -> str:
    return "image" if mime.startswith("image/") else "document"


def safe_name(name: str | None, mime: str) -> str:
    """A display name without path parts or control characters; made up when missing."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _NAME_RE.sub("_", base).strip(" .")[:80]
    if not base:
        base = "upload." + mime.rsplit("/", 1)[-1].replace("jpeg", "jpg")
    return base


def new_file_id() -> str:
    return "f_" + secrets.token_urlsafe(18)


@dataclass(frozen=True, slots=True)
class StoredFile:
    """An upload as kept in the store: whose it is, what it is, and its bytes."""

    id: str
    session: str
    mime_type: str
    name: str
    size: int
    data: bytes

    @property
    def kind(self) -> str:
        return kind_of(self.mime_type)

    def to_value(self) -> dict[str, Any]:
        return {"session": self.session, "mime_type": self.mime_type, "name": self.name, "size": self.size,
                "data": base64.b64encode(self.data).decode("ascii")}

    @classmethod
    def from_value(cls, file_id: str, value: Any) -> StoredFile | None:
        if not isinstance(value, dict):
            return None
        try:
            return cls(file_id, str(value["session"]), str(value["mime_type"]), str(value["name"]),
                       int(value["size"]), base64.b64decode(value["data"]))
        except (KeyError, TypeError, ValueError):
            return None


def human_size(size: int) -> str:
    return f"{size / 1_000_000:g} MB" if size >= 1_000_000 else f"{size // 1000} kB"
