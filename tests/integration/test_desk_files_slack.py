"""Files both ways between a Slack handoff thread and customers on Telegram, WhatsApp and the web
chat, through the whole farm and the platform fakes (real python-telegram-bot, slack-bolt and
slack-sdk on the wire):

- a file an agent shares in the thread (a ``file_share`` event, downloaded with the bot token)
  reaches the customer through the platform's media API: Telegram ``sendPhoto`` as multipart,
  WhatsApp an upload to ``/media`` then an ``image`` message by id, the web chat a frame whose
  file the page fetches with its session;
- a file over the size limit or of a type not allowed is refused with a message to the agent;
- a customer's photo (Telegram, WhatsApp, a web chat upload) reaches the thread as a Slack file
  upload (``files.getUploadURLExternal``, the bytes, ``files.completeUploadExternal`` with
  ``thread_ts``);
- a file shared with a ``!`` text is an internal note and never sent.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from core.model import Conversation, Identity
from tests.fakes.slack_api import (
    AGENT,
    AGENTS_CHANNEL,
    SIGNING_SECRET,
    FakeSlackAPI,
    event_callback,
    file_share_event,
    signed_event_request,
)
from tests.fakes.telegram_api import FakeTelegramAPI, photo_update, text_update
from tests.fakes.whatsapp_api import FakeWhatsAppAPI, post_webhook, text_webhook, webhook
from tests.handoff.handoff_support import Customer, conversation_of, desk_config
from tests.handoff.scripted_engine import ScriptedEngine
from tests.support.farm import DEMO_PROJECT, RunningFarm, running_farm
from tests.support.files import pdf, png
from tests.support.wait import eventually

pytestmark = [
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Please use 'Bot.getUpdates':telegram.warnings.PTBUserWarning"),
]

TG_TOKEN = "7000000016:AAH-files-token"
TG_SECRET = "files-secret"
WA_TOKEN = "EAAG-files"
WA_SECRET = "wa-files-secret"
WA_PHONE = "1122334455668"
WA_CUSTOMER = "491701112233"
TG_CUSTOMER = 4242001
SECRET = SIGNING_SECRET
IMAGE = png(6, 4)


async def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    await eventually(predicate, timeout=timeout, message=what)


def farm_config(slack: FakeSlackAPI, telegram: FakeTelegramAPI, whatsapp: FakeWhatsAppAPI) -> dict[str, Any]:
    bots = {"demo": {
        "project": str(DEMO_PROJECT), "languages": ["de", "en"], "default_language": "de",
        "handoff": {"business_hours": {}},
        "channels": {
            "webchat": {},
            "telegram": {"token": TG_TOKEN, "webhook_secret": TG_SECRET, "api_base": telegram.url,
                         "webhook_url": "https://bots.example/webhooks/demo/telegram", "set_webhook": False},
            "whatsapp": {"access_token": WA_TOKEN, "app_secret": WA_SECRET, "verify_token": "v",
                         "phone_number_id": WA_PHONE, "api_base": whatsapp.url, "read_receipts": False},
        },
    }}
    desk = {**desk_config(), "slack": {"enabled": True, "bot_token": slack.bot_token, "signing_secret": SECRET,
                                       "channel": AGENTS_CHANNEL, "agents": [AGENT], "api_base": slack.url},
            "files": {"max_bytes": 100_000}}
    return {"bots": bots, "desk": desk}


_update_ids = itertools.count(880_000)


async def telegram_sends(farm: RunningFarm, update: dict[str, Any]) -> None:
    update = {"update_id": next(_update_ids), **update}
    async with aiohttp.ClientSession() as http, http.post(
            f"{farm.url}/webhooks/demo/telegram", json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}) as response:
        assert response.status == 200
    await farm.farm.settle()


async def whatsapp_sends(farm: RunningFarm, payload: dict[str, Any]) -> None:
    assert await post_webhook(f"{farm.url}/webhooks/demo/whatsapp", payload, app_secret=WA_SECRET) == 200
    await farm.farm.settle()


async def agent_event(farm: RunningFarm, event: dict[str, Any]) -> None:
    body, headers = signed_event_request(event_callback(event), SECRET)
    async with aiohttp.ClientSession() as http, http.post(f"{farm.url}/slack/events", data=body,
                                                          headers=headers) as response:
        assert response.status == 200


async def conversation(farm: RunningFarm, channel: str, user: str) -> Conversation:
    [contact] = await farm.store.find_contacts("demo", identity=Identity(channel, user, user))
    return await farm.store.conversation_for("demo", contact.id)


async def thread_of(farm: RunningFarm, channel: str, user: str) -> str:
    async def thread() -> str | None:
        return (await conversation(farm, channel, user)).desk_thread

    return await eventually(thread, message="no Slack thread")


async def share(farm: RunningFarm, slack: FakeSlackAPI, thread: str, data: bytes, name: str, mime: str,
                text: str = "") -> None:
    await agent_event(farm, file_share_event([slack.share_file(data, name, mime)], text=text, thread_ts=thread))


async def test_agent_files_from_slack_reach_customers_on_every_channel_and_customer_photos_reach_the_thread(
        tmp_path: Path) -> None:
    async with FakeSlackAPI() as slack, FakeTelegramAPI(TG_TOKEN) as telegram, \
            FakeWhatsAppAPI(WA_TOKEN, WA_PHONE) as whatsapp, \
            running_farm(tmp_path, engines={"demo": ScriptedEngine()}, **farm_config(slack, telegram, whatsapp)) \
            as farm, aiohttp.ClientSession() as chat:
        # Telegram: the customer asks for a person, the agent shares a photo with a line of text
        await telegram_sends(farm, text_update(TG_CUSTOMER, "Mitarbeiter bitte"))
        tg_thread = await thread_of(farm, "telegram", str(TG_CUSTOMER))
        await share(farm, slack, tg_thread, IMAGE, "router.png", "image/png", text="So sollte es aussehen")
        await wait_until(lambda: bool(telegram.uploads), "a photo upload to Telegram")
        [upload] = telegram.uploads
        assert (upload.method, upload.field, upload.data) == ("sendPhoto", "photo", IMAGE)
        [sent] = [c for c in telegram.calls("sendPhoto") if c["chat_id"] == TG_CUSTOMER]
        assert sent["caption"].endswith(": So sollte es aussehen")  # signed with the agent's name

        # a customer's photo goes into the thread as a Slack file
        file_id = telegram.add_file(IMAGE)
        await telegram_sends(farm, photo_update(TG_CUSTOMER, file_id))
        await wait_until(lambda: bool(slack.uploaded(AGENTS_CHANNEL, tg_thread)), "the photo in the Slack thread")
        [in_thread] = slack.uploaded(AGENTS_CHANNEL, tg_thread)
        assert in_thread["data"] == IMAGE
        assert slack.count("files.getUploadURLExternal") == 1 and slack.count("files.completeUploadExternal") == 1

        # WhatsApp: a PDF goes to /media first, then as a document message by its id
        await whatsapp_sends(farm, text_webhook(WA_CUSTOMER, "Mitarbeiter bitte", wamid="wamid.files1",
                                                phone_number_id=WA_PHONE))
        wa_thread = await thread_of(farm, "whatsapp", WA_CUSTOMER)
        document = pdf()
        await share(farm, slack, wa_thread, document, "Rechnung 4711.pdf", "application/pdf")
        await wait_until(lambda: bool(whatsapp.uploaded()), "a media upload to WhatsApp")
        assert whatsapp.uploaded() == [("application/pdf", document, "Rechnung 4711.pdf")]
        await wait_until(lambda: any(m.get("type") == "document" for m in whatsapp.messages()), "the document")
        [sent_doc] = [m for m in whatsapp.messages() if m.get("type") == "document"]
        assert sent_doc["to"] == WA_CUSTOMER and sent_doc["document"]["filename"] == "Rechnung 4711.pdf"
        assert sent_doc["document"]["id"] in whatsapp.media

        media_id = whatsapp.add_media(IMAGE, "image/png")
        await whatsapp_sends(farm, webhook({"contacts": [{"profile": {"name": "Anna"}, "wa_id": WA_CUSTOMER}],
                                            "messages": [{"from": WA_CUSTOMER, "id": "wamid.files2",
                                                          "timestamp": str(int(time.time())), "type": "image",
                                                          "image": {"mime_type": "image/png", "sha256": "x",
                                                                    "id": media_id}}]},
                                           phone_number_id=WA_PHONE))
        await wait_until(lambda: bool(slack.uploaded(AGENTS_CHANNEL, wa_thread)), "the WhatsApp photo in the thread")
        assert slack.uploaded(AGENTS_CHANNEL, wa_thread)[0]["data"] == IMAGE

        # web chat: the file arrives as a frame; the page fetches it with its session
        customer = await Customer.connect(chat, farm.url)
        await customer.say("Mitarbeiter bitte")
        await farm.farm.settle()
        web_thread = (await conversation_of(farm, customer)).desk_thread
        assert web_thread
        await customer.received()
        await share(farm, slack, web_thread, IMAGE, "screenshot.png", "image/png")
        frames: list[dict[str, Any]] = []
        async with asyncio.timeout(5):
            while not any(f.get("attachments") for f in frames):
                frames += await customer.received(quiet=0.2)
        [with_file] = [f for f in frames if f.get("attachments")]
        assert with_file["role"] == "agent"
        [attachment] = with_file["attachments"]
        assert attachment["kind"] == "image" and attachment["name"] == "screenshot.png"
        async with chat.get(f"{farm.url}/chat/demo/files/{attachment['id']}",
                            headers={"X-Chat-Session": customer.session}) as response:
            assert response.status == 200 and await response.read() == IMAGE

        # the web chat customer's upload goes into the thread too
        async with chat.post(f"{farm.url}/chat/demo/upload", data=IMAGE,
                             headers={"X-Chat-Session": customer.session, "X-File-Name": "mein-router.png"}) as r:
            assert r.status == 201
            upload_id = (await r.json())["id"]
        await customer.ws.send_json({"type": "message", "id": "up1", "text": "", "attachments": [upload_id]})
        await wait_until(lambda: bool(slack.uploaded(AGENTS_CHANNEL, web_thread)), "the web chat upload in the thread")
        [web_upload] = slack.uploaded(AGENTS_CHANNEL, web_thread)
        assert web_upload["data"] == IMAGE and web_upload["name"] == "mein-router.png"

        # refused: too large, and a type customers are not sent; the agent is told, nothing goes out
        before = (len(telegram.uploads), len(whatsapp.uploaded()))
        await share(farm, slack, tg_thread, IMAGE + b"\0" * 200_000, "huge.png", "image/png")
        await slack.wait_for("chat.postEphemeral")
        assert "Not sent to the customer" in slack.ephemerals[-1]["text"]
        assert "files up to 100 kB" in slack.ephemerals[-1]["text"]
        await share(farm, slack, wa_thread, b"PK\x03\x04 zip", "tools.zip", "application/zip")
        await slack.wait_for("chat.postEphemeral", count=2)
        assert "is not a PNG, JPEG, GIF, WebP, PDF file" in slack.ephemerals[-1]["text"]
        await farm.farm.settle()
        assert (len(telegram.uploads), len(whatsapp.uploaded())) == before

        # a file shared with a "!" text is an internal note: kept on the transcript, never sent
        await share(farm, slack, tg_thread, IMAGE, "intern.png", "image/png", text="!Foto für die Technik")
        tg_conversation = await conversation(farm, "telegram", str(TG_CUSTOMER))

        async def noted() -> bool:
            notes = [e for e in await farm.store.transcript(tg_conversation.id) if e.type == "note"]
            return any(n.data.get("attachments") for n in notes)

        await eventually(noted)
        await farm.farm.settle()
        assert len(telegram.uploads) == before[0]
