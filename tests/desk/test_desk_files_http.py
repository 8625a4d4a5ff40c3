"""The web desk's file routes over HTTP: only a logged-in agent who serves the conversation's bot
sends or opens files; a state-changing upload needs the desk's request header; a refused file
says why (413 / 415) and sends nothing; the transcript lists the agent's file."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from tests.handoff.handoff_support import (
    PASSWORDS,
    Customer,
    conversation_of,
    handoff_farm,
    service,
)
from tests.support.files import pdf, png

H = {"X-Desk-Request": "1"}


async def logged_in(url: str, agent: str) -> aiohttp.ClientSession:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.post(f"{url}/desk/api/login", json={"agent": agent, "password": PASSWORDS[agent]},
                         headers=H) as response:
        assert response.status == 200
    return http


async def test_only_the_bots_agents_send_and_open_files(tmp_path: Path) -> None:
    async with handoff_farm(tmp_path, desk=None) as (farm, _), aiohttp.ClientSession() as chat:
        customer = await Customer.connect(chat, farm.url)
        await customer.say("Mitarbeiter bitte")
        await farm.farm.settle()
        conversation_id = (await conversation_of(farm, customer)).id
        await service(farm).claim(conversation_id, "web:anna", "Anna Schmidt")
        upload = f"{farm.url}/desk/api/files/{conversation_id}"
        headers = {**H, "X-File-Name": "Rechnung.pdf", "X-Caption": "Ihre%20Rechnung"}

        async with chat.post(upload, data=pdf(), headers=headers) as response:
            assert response.status == 401  # not logged in
        carl = await logged_in(farm.url, "carl")  # serves another bot only
        anna = await logged_in(farm.url, "anna")
        try:
            async with carl.post(upload, data=pdf(), headers=headers) as response:
                assert response.status == 401
            async with anna.post(upload, data=pdf(), headers={"X-File-Name": "Rechnung.pdf"}) as response:
                assert response.status == 403  # no X-Desk-Request: a cross-site form cannot upload
            async with anna.post(upload, data=b"MZ\x90\x00 an exe", headers={**H, "X-File-Name": "a.pdf"}) as response:
                assert response.status == 415
                assert "is not a PNG, JPEG, GIF, WebP, PDF file" in (await response.json())["error"]
            async with anna.post(upload, data=png() + b"\0" * 5_100_000, headers=H) as response:
                assert response.status == 413
                assert "files up to 5.0 MB" in (await response.json())["error"]

            async with anna.post(upload, data=pdf(), headers=headers) as response:
                assert response.status == 201
                assert (await response.json())["attachment"]["name"] == "Rechnung.pdf"
            await farm.farm.settle()
            frames = await customer.received()
            assert [f["text"] for f in frames if f.get("attachments")] == ["Ihre Rechnung"]

            async with anna.get(f"{farm.url}/desk/api/conversations/{conversation_id}") as response:
                transcript = (await response.json())["transcript"]
            [sent] = [m for m in transcript if m.get("attachments")]
            assert sent["role"] == "agent" and sent["attachments"][0]["name"] == "Rechnung.pdf"
            opened = f"{farm.url}/desk/api/files/{conversation_id}/{sent['seq']}/0"
            async with anna.get(opened) as response:
                assert response.status == 200 and await response.read() == pdf()
                assert response.headers["Content-Disposition"].startswith("attachment;")
                assert response.headers["X-Content-Type-Options"] == "nosniff"
            async with carl.get(opened) as response:
                assert response.status == 401
            async with anna.get(f"{farm.url}/desk/api/files/{conversation_id}/{sent['seq']}/1") as response:
                assert response.status == 404
        finally:
            await carl.close()
            await anna.close()
