"""Files between agents and customers: limits, the type check, and where the bytes are kept.

An agent's file (shared in a Slack thread, uploaded on the web desk) is checked here (size,
type proven by its content, never by its name) and kept in the store's key-value space under
``files:<id>`` (every farm process shares it; see `channels.webchat_files` for why not a
directory). The outbound message then carries an `Attachment` whose ``file_id`` starts with
`STORED_PREFIX`; the adapter reads the bytes through its context (`AdapterContext.read_file`)
and sends them with its platform's media API, so a file goes through the outbox like every
reply (retries, order, delivery status).

Customer media (a Telegram photo, a WhatsApp document, a web chat upload) stays where the
platform keeps it; `FileStore.customer_media` asks the channel adapter for the bytes
(``fetch_media``) when a desk shows it, and keeps a copy for ``keep_days``.

Limits (``desk.files`` in farm.yml): ``max_bytes`` (default 5 MB, at most 10 MB: a file is one
store value), ``allowed_types`` (PNG, JPEG, GIF, WebP, PDF by default) and
``customer_max_bytes`` (customer media relayed to a desk, default 20 MB: Telegram bots can
download up to 20 MB).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.errors import SwitchboardError
from core.model import Attachment

log = structlog.get_logger(__name__)

STORED_PREFIX = "sbfile_"
"""``Attachment.file_id`` of a file kept by Switchboard (not a platform's file id)."""
MAX_STORED_BYTES = 10_000_000  # base64 of this stays below MongoDB's 16 MB document limit
DAY = 86400.0

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
)
KNOWN_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf")
_LABELS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WebP",
           "application/pdf": "PDF"}
_NAME_RE = re.compile(r"[^\w.\- ()]+", re.UNICODE)
_ID_RE = re.compile(r"^" + STORED_PREFIX + r"[A-Za-z0-9_-]{16,64}$")
MEDIA_KINDS = frozenset({"image", "document", "video", "audio", "voice", "sticker"})


class DeskFilesConfig(BaseModel):
    """``desk.files`` in farm.yml: what agents may send and what customers' media desks relay."""

    model_config = ConfigDict(extra="forbid")

    max_bytes: int = Field(default=5_000_000, ge=1, le=MAX_STORED_BYTES,
                           description="Largest file an agent may send (bytes).")
    allowed_types: list[str] = Field(default_factory=lambda: list(KNOWN_TYPES),
                                     description="MIME types agents may send (checked by content).")
    customer_max_bytes: int = Field(default=20_000_000, ge=1,
                                    description="Largest customer file a desk fetches and shows (bytes).")
    keep_days: float = Field(default=30.0, gt=0, description="Days a stored file (and a cached customer "
                                                             "file) is kept for the transcript.")

    @field_validator("allowed_types")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(KNOWN_TYPES))
        if unknown:
            raise ValueError(f"unsupported type(s) {', '.join(unknown)}; the content check knows "
                             f"{', '.join(KNOWN_TYPES)}")
        return value


class FileRefused(SwitchboardError):
    """An agent's file is over the size limit or of a type not allowed; the message says which."""


def sniff(data: bytes) -> str | None:
    """The MIME type the content proves (PNG, JPEG, GIF, WebP, PDF), or None."""
    for magic, mime in _SIGNATURES:
        if data.startswith(magic):
            return mime
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def kind_of(mime: str) -> str:
    return "image" if mime.startswith("image/") else "document"


def safe_name(name: str | None, mime: str, *, stem: str = "file") -> str:
    """A display name without path parts or control characters; ``stem`` + the type's extension
    when missing (``file.pdf``)."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _NAME_RE.sub("_", base).strip(" .")[:80]
    return base or stem + "." + mime.rsplit("/", 1)[-1].replace("jpeg", "jpg")


def human_size(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size >= 1_000_000 else f"{max(1, size // 1000)} kB"


def is_stored(attachment: Attachment | Mapping[str, Any]) -> bool:
    """Is this attachment a file Switchboard keeps (an agent's), rather than a platform's?"""
    file_id = attachment.get("file_id") if isinstance(attachment, Mapping) else attachment.file_id
    return isinstance(file_id, str) and bool(_ID_RE.match(file_id))


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file's bytes with what it is."""

    id: str
    mime_type: str
    name: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def kind(self) -> str:
        return kind_of(self.mime_type)

    def to_value(self) -> dict[str, Any]:
        return {"mime_type": self.mime_type, "name": self.name, "data": base64.b64encode(self.data).decode("ascii")}

    @classmethod
    def from_value(cls, file_id: str, value: Any) -> StoredFile | None:
        if not isinstance(value, dict):
            return None
        try:
            return cls(file_id, str(value["mime_type"]), str(value["name"]), base64.b64decode(value["data"]))
        except (KeyError, TypeError, ValueError):
            return None


class MediaSource(Protocol):
    """A channel adapter that can fetch a customer's media (``fetch_media``)."""

    async def fetch_media(self, attachment: Attachment, max_bytes: int) -> StoredFile: ...


class KeyValue(Protocol):
    async def kv_get(self, key: str) -> Any | None: ...

    async def kv_set(self, key: str, value: Any, ttl_seconds: float | None = None) -> None: ...


def attachment_of(data: Mapping[str, Any]) -> Attachment:
    """An attachment as stored in a transcript event (`core.handoff.media.attachment_data`)."""
    size = data.get("size")
    return Attachment(kind=str(data.get("kind") or "document"), url=_opt(data.get("url")),
                      file_id=_opt(data.get("file_id")), mime_type=_opt(data.get("mime_type")),
                      name=_opt(data.get("name")), caption=_opt(data.get("caption")),
                      size=size if isinstance(size, int) else None)


def _opt(value: Any) -> str | None:
    return str(value) if isinstance(value, str) and value else None


class FileStore:
    """Agents' files in, customers' media out, within the configured limits."""

    def __init__(self, kv: KeyValue, config: DeskFilesConfig | None = None, *,
                 channel_for: Callable[[str, str], Any | None] = lambda bot, channel: None) -> None:
        self.kv = kv
        self.config = config or DeskFilesConfig()
        self.channel_for = channel_for

    @property
    def ttl(self) -> float:
        return self.config.keep_days * DAY

    def allowed_label(self) -> str:
        return ", ".join(_LABELS.get(t, t) for t in self.config.allowed_types)

    def check(self, size: int | None, mime: str | None, name: str | None = None) -> None:
        """Refuse early what the platform already says is too big or of a type not allowed."""
        what = f"“{name}”" if name else "The file"
        if size is not None and size > self.config.max_bytes:
            raise FileRefused(f"{what} is {human_size(size)}; files up to {human_size(self.config.max_bytes)} "
                              "can be sent to customers.")
        if mime is not None and mime.split(";")[0].strip().lower() not in self.config.allowed_types:
            raise FileRefused(f"{what} is of type {mime}; customers can be sent {self.allowed_label()}.")

    async def put(self, data: bytes, name: str | None, *, caption: str | None = None) -> Attachment:
        """Check and keep an agent's file; the attachment for the outbound message.

        Raises `FileRefused` (size or type); the type is the one the content proves.
        """
        self.check(len(data), None, name)
        if not data:
            raise FileRefused("The file is empty.")
        mime = sniff(data)
        if mime is None or mime not in self.config.allowed_types:
            what = f"“{name}”" if name else "The file"
            raise FileRefused(f"{what} is not a {self.allowed_label()} file; only those can be sent to customers.")
        stored = StoredFile(STORED_PREFIX + secrets.token_urlsafe(18), mime, safe_name(name, mime), data)
        await self.kv.kv_set(f"files:{stored.id}", stored.to_value(), self.ttl)
        log.info("files.stored", file=stored.id, mime=mime, size=stored.size)
        return Attachment(kind=stored.kind, file_id=stored.id, mime_type=mime, name=stored.name,
                          caption=caption or None, size=stored.size)

    async def get(self, file_id: str) -> StoredFile | None:
        if not _ID_RE.match(file_id):
            return None
        return StoredFile.from_value(file_id, await self.kv.kv_get(f"files:{file_id}"))

    async def customer_media(self, bot: str, channel: str, attachment: Attachment) -> StoredFile | None:
        """A customer's media as bytes (an agent's stored file too), or None when it cannot be had.

        Asks the channel adapter (``fetch_media``) and keeps a copy for ``keep_days``.
        """
        if is_stored(attachment):
            return await self.get(str(attachment.file_id))
        if attachment.kind not in MEDIA_KINDS:
            return None
        ref = attachment.file_id or attachment.url or ""
        key = "files:media:" + hashlib.sha256(f"{bot}:{channel}:{ref}".encode()).hexdigest()[:32]
        cached = StoredFile.from_value(key, await self.kv.kv_get(key))
        if cached is not None:
            return cached
        if attachment.size is not None and attachment.size > self.config.customer_max_bytes:
            log.info("files.customer_media_too_large", channel=channel, size=attachment.size)
            return None
        source = self.channel_for(bot, channel)
        fetch = getattr(source, "fetch_media", None)
        if not callable(fetch):
            return None
        fetched = await fetch(attachment, self.config.customer_max_bytes)
        if not isinstance(fetched, StoredFile):
            return None
        if fetched.size <= MAX_STORED_BYTES:
            await self.kv.kv_set(key, fetched.to_value(), self.ttl)
        log.info("files.customer_media_fetched", channel=channel, size=fetched.size)
        return fetched
