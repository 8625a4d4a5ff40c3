"""One place that turns a Slack Web API error into the core's error types (desk and eraser)."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError

from core.errors import BadRequest, ChannelError, RateLimited, TransientError, Unauthorized

_AUTH_ERRORS = frozenset({
    "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
    "missing_scope", "not_allowed_token_type", "no_permission",
})
_TRANSIENT_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout"})


def map_slack_error(exc: SlackApiError) -> ChannelError:
    """One place that turns a Slack answer into the core's error types."""
    response = exc.response
    status = getattr(response, "status_code", 200)
    error = str(response.get("error", "")) if hasattr(response, "get") else ""
    if status == 429 or error == "ratelimited":
        raw = (getattr(response, "headers", None) or {}).get("Retry-After") or \
            (getattr(response, "headers", None) or {}).get("retry-after") or "1"
        value = raw[0] if isinstance(raw, list) else raw
        try:
            retry_after = float(value)
        except ValueError:
            retry_after = 1.0
        return RateLimited(f"slack: {error or 'ratelimited'}", retry_after=retry_after)
    if error in _AUTH_ERRORS:
        return Unauthorized(f"slack: {error}")
    if status >= 500 or error in _TRANSIENT_ERRORS:
        return TransientError(f"slack: {error or status}")
    return BadRequest(f"slack: {error or status}")
