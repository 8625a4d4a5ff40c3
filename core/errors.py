"""The one error hierarchy of Switchboard; callers catch these, never bare Exception."""

from __future__ import annotations


class SwitchboardError(Exception):
    """Base of every error Switchboard raises on purpose."""


class ConfigError(SwitchboardError):
    """Bad configuration; the message names the file, the key and what was expected."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None) -> None:
        self.file = file
        self.key = key
        where = ":".join(p for p in (file, key) if p)
        super().__init__(f"{where}: {message}" if where else message)


class StoreError(SwitchboardError):
    """Persistence failed."""


class StoreUnavailable(StoreError):
    """The store cannot be reached right now; callers answer 503 so platforms retry."""


class ConcurrencyConflict(StoreError):
    """Someone else changed the record first (optimistic version check failed)."""


class NotFound(StoreError):
    """The record asked for does not exist."""


class ChannelError(SwitchboardError):
    """A platform call or payload failed; subclasses say whether a retry can help."""

    retryable: bool = False


class RateLimited(ChannelError):
    """The platform asked us to slow down; retry after ``retry_after`` seconds."""

    retryable = True

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TransientError(ChannelError):
    """A network error or 5xx; retry with backoff."""

    retryable = True


class Unauthorized(ChannelError):
    """Our credentials were refused (bad token), or an inbound request is forged."""


class RecipientUnavailable(ChannelError):
    """The customer blocked the bot, left, or cannot be reached on this channel."""


class BadRequest(ChannelError):
    """The platform rejected the request itself; retrying the same request will not help."""


class OutsideServiceWindow(BadRequest):
    """WhatsApp: free-form messages are not allowed 24 h after the customer's last message."""


class DeliveryError(SwitchboardError):
    """An outbound message could not be delivered after all retries."""


class DialogueError(SwitchboardError):
    """The bot project (domain, rules, stories, NLU data) is inconsistent."""
