"""The farm's one aiohttp application: adapters' routes, desks, health and metrics.

Routes (see DESIGN.md): ``POST /webhooks/{bot}/telegram``, ``GET|POST
/webhooks/{bot}/whatsapp``, ``POST /slack/events``, ``GET /chat/{bot}`` (+ web
socket), ``GET /desk``, ``GET /healthz``, ``GET /readyz``, ``GET /metrics``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core import metrics
from core.errors import StoreUnavailable
from core.ports import Route
from core.store.base import Store

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Nothing unexpected escapes as a bare 500 with a traceback; it is logged and counted."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status == 413:
            metrics.REJECTED.labels(request.path.split("/")[1] or "root", "too_large").inc()
            log.warning("http.too_large", path=request.path)
        raise
    except StoreUnavailable:
        log.warning("http.store_unavailable", path=request.path)
        return web.json_response({"error": "temporarily unavailable"}, status=503, headers={"Retry-After": "5"})
    except Exception:
        metrics.ERRORS.labels("http").inc()
        log.exception("http.unhandled", path=request.path, method=request.method)
        return web.json_response({"error": "internal error"}, status=500)


def build_app(store: Store, routes: Iterable[Route], *, max_body_bytes: int = 1_048_576) -> web.Application:
    app = web.Application(client_max_size=max_body_bytes, middlewares=[error_middleware])

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        try:
            await store.ping()
        except StoreUnavailable as exc:
            return web.json_response({"status": "unavailable", "store": str(exc)}, status=503)
        return web.json_response({"status": "ready"})

    async def metrics_view(request: web.Request) -> web.Response:
        body = generate_latest(metrics.REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
    for route in routes:
        app.router.add_route(route.method, route.path, route.handler, name=route.name)
    return app
