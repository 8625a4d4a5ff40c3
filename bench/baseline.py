"""The bare baseline: an aiohttp server that answers each webhook by one POST to the fake API.

    python -m bench.baseline --port P --telegram-api URL --telegram-token T \
        --whatsapp-api URL --whatsapp-phone ID --whatsapp-token T

No signature check, no store, no queue: JSON in, ``echo: <text>`` out to the platform
fake (form-encoded ``sendMessage`` for Telegram, Graph JSON for WhatsApp), then 200.
It is the ceiling the farm's throughput is reported against (same routes, same fakes,
same load generator, same machine).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

import aiohttp
from aiohttp import web


def build(args: argparse.Namespace) -> web.Application:
    app = web.Application()
    state: dict[str, Any] = {}

    async def startup(app: web.Application) -> None:
        state["http"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))

    async def cleanup(app: web.Application) -> None:
        await state["http"].close()

    async def telegram(request: web.Request) -> web.Response:
        update = await request.json()
        message = update["message"]
        form = {"chat_id": str(message["chat"]["id"]), "text": f"echo: {message.get('text', '')}"}
        url = f"{args.telegram_api}/bot{args.telegram_token}/sendMessage"
        async with state["http"].post(url, data=form) as response:
            await response.read()
        return web.Response(text="ok")

    async def whatsapp(request: web.Request) -> web.Response:
        payload = await request.json()
        message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": message["from"],
                "type": "text", "text": {"body": f"echo: {message['text']['body']}", "preview_url": False}}
        url = f"{args.whatsapp_api}/{args.whatsapp_version}/{args.whatsapp_phone}/messages"
        headers = {"Authorization": f"Bearer {args.whatsapp_token}"}
        async with state["http"].post(url, json=body, headers=headers) as response:
            await response.read()
        return web.Response(text="ok")

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)
    app.router.add_post("/webhooks/{bot}/telegram", telegram)
    app.router.add_post("/webhooks/{bot}/whatsapp", whatsapp)
    app.router.add_get("/healthz", healthz)
    return app


async def main(args: argparse.Namespace) -> None:
    runner = web.AppRunner(build(args), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--telegram-api", required=True)
    parser.add_argument("--telegram-token", required=True)
    parser.add_argument("--whatsapp-api", required=True)
    parser.add_argument("--whatsapp-phone", required=True)
    parser.add_argument("--whatsapp-token", required=True)
    parser.add_argument("--whatsapp-version", default="v21.0")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
