"""Files a customer uploaded in the web chat are listed by export and erased by forget."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from core.privacy.erasure import media_key
from tests.handoff.handoff_support import Customer, conversation_of, handoff_farm

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


async def test_forget_deletes_the_uploaded_file_and_export_listed_it(tmp_path: Path) -> None:
    async with handoff_farm(tmp_path) as (farm, _), aiohttp.ClientSession() as http:
        customer = await Customer.connect(http, farm.url)
        async with http.post(f"{farm.url}/chat/demo/upload", data=PNG, headers={
                "X-Chat-Session": customer.session, "X-File-Name": "zaehler.png", "Content-Type": "image/png"}) as r:
            assert r.status == 201
            file_id = (await r.json())["id"]
        await customer.ws.send_json({"type": "message", "id": "m1", "text": "mein Zählerstand",
                                     "attachments": [file_id]})
        await farm.farm.settle()
        contact_id = (await conversation_of(farm, customer)).contact_id
        key = media_key("demo", "webchat", file_id)
        assert await farm.store.kv_get(key) is not None

        privacy = farm.farm.services["privacy"]
        exported = await privacy.export(contact_id, actor="admin:test")
        assert [(m["file_id"], m["stored"]) for m in exported["copies"]["media"]] == [(file_id, True)]
        report = await privacy.forget(contact_id, actor="admin:test")
        assert report.media == 1
        assert await farm.store.kv_get(key) is None
        async with http.get(f"{farm.url}/chat/demo/files/{file_id}",
                            headers={"X-Chat-Session": customer.session}) as response:
            assert response.status == 404
        [forget] = [a for a in await farm.store.audit_log(bot="demo") if a.action == "forget"]
        assert forget.detail["media"] == 1
