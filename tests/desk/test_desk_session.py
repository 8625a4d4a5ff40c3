"""A web desk login lasts its session time on the farm's clock, then the agent logs in again."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from core.web.desk import SESSION_SECONDS
from tests.handoff.handoff_support import PASSWORDS, handoff_farm
from tests.support.clock import FakeClock

H = {"X-Desk-Request": "1"}


async def test_a_desk_login_expires_after_its_session_time(tmp_path: Path) -> None:
    clock = FakeClock()
    async with handoff_farm(tmp_path, clock=clock) as (farm, _), \
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(f"{farm.url}/desk/api/login", json={"agent": "anna", "password": PASSWORDS["anna"]},
                             headers=H) as response:
            assert response.status == 200
        clock.advance(SESSION_SECONDS - 60)
        async with http.get(f"{farm.url}/desk/api/me") as response:
            assert response.status == 200
            assert (await response.json())["agent"]["id"] == "anna"
        clock.advance(120)
        async with http.get(f"{farm.url}/desk/api/me") as response:
            assert response.status == 401
