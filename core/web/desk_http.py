"""What every part of the web desk shares: constants, JSON in and out, the static files."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from aiohttp import web

from core.desk_config import WebAgent

AGENT_PREFIX = "web:"
COOKIE = "sb_desk"
CSRF_HEADER = "X-Desk-Request"
SESSION_SECONDS = 12 * 3600
KEEPALIVE_SECONDS = 15.0
MAX_TEXT = 4000
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def agent_json(agent: WebAgent) -> dict[str, Any]:
    return {"id": agent.id, "name": agent.name, "bots": list(agent.bots)}


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers={"Cache-Control": "no-store", **(headers or {})})


async def json_body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text=json.dumps({"error": "send application/json"}),
                                           content_type="application/json")
    try:
        body = await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(text=json.dumps({"error": "invalid JSON"}), content_type="application/json") from exc
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text=json.dumps({"error": "expected a JSON object"}), content_type="application/json")
    return body


_CACHE: dict[str, str] = {}


def static_text(name: str) -> str:
    if name not in _CACHE:
        _CACHE[name] = resources.files("core").joinpath("web", "static", name).read_text("utf-8")
    return _CACHE[name]


def static_bytes(name: str) -> bytes:
    """A binary file of ``core/web/static`` (the alert sound), read once."""
    if name not in _BYTES:
        _BYTES[name] = resources.files("core").joinpath("web", "static", name).read_bytes()
    return _BYTES[name]


_BYTES: dict[str, bytes] = {}
