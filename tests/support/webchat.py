"""Web chat socket helpers shared by integration tests."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp


async def receive(ws: aiohttp.ClientWebSocketResponse, kind: str, timeout: float = 5.0) -> dict[str, Any]:
    """The next frame of type ``kind`` (frames of other types are skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            frame = await ws.receive_json()
            if frame["type"] == kind:
                return dict(frame)
