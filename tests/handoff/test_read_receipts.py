"""Read receipts, coalesced per chat: the real WhatsApp adapter against the fake Graph API."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from channels.testing import RecordingContext
from channels.whatsapp import WhatsAppAdapter
from core.engine import TurnInput
from core.handoff.media import ReadReceipts
from core.model import Contact, Conversation, Inbound
from core.pipeline.hooks import TurnContext
from tests.fakes.whatsapp_api import FakeWhatsAppAPI
from tests.support.engines import EchoEngine
from tests.support.wait import eventually

TOKEN = "EAAG-test-token"
PHONE_ID = "106540352242922"
READ = {"messaging_product": "whatsapp", "status": "read"}
TYPING = {"typing_indicator": {"type": "text"}}


def turn(message_id: str, chat: str = "16505551234") -> TurnContext:
    message = Inbound(bot="nordhost", channel="whatsapp", channel_user_id=chat, chat_id=chat,
                      platform_message_id=f"whatsapp:{message_id}", text="hi")
    conversation = Conversation(id=f"conv-{chat}", bot="nordhost", contact_id=f"contact-{chat}")
    return TurnContext(TurnInput(conversation, Contact(id=f"contact-{chat}", bot="nordhost"), message, []),
                       EchoEngine(), None)


@pytest.fixture
async def whatsapp() -> AsyncIterator[tuple[FakeWhatsAppAPI, WhatsAppAdapter]]:
    async with FakeWhatsAppAPI(TOKEN, PHONE_ID) as api:
        adapter = WhatsAppAdapter.from_config("nordhost", {
            "access_token": TOKEN, "app_secret": "secret", "verify_token": "verify-me", "phone_number_id": PHONE_ID,
            "api_base": api.url, "api_version": "v21.0", "timeout": 2.0}, RecordingContext())
        try:
            yield api, adapter
        finally:
            await adapter.stop()


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    await eventually(predicate, timeout=timeout)


def receipts_for(adapter: Any, interval: float) -> ReadReceipts:
    return ReadReceipts(lambda message: adapter, interval=interval)


async def test_a_quiet_chat_is_marked_read_at_once_with_the_typing_indicator(
    whatsapp: tuple[FakeWhatsAppAPI, WhatsAppAdapter],
) -> None:
    api, adapter = whatsapp
    receipts = receipts_for(adapter, interval=60.0)
    assert await receipts.intercept(turn("wamid.A")) is None
    await wait_until(lambda: len(api.receipts()) == 1)
    assert api.receipts() == [{**READ, "message_id": "wamid.A", **TYPING}]
    await receipts.drain()
    assert len(api.receipts()) == 1  # nothing was held back


async def test_a_burst_is_marked_by_one_receipt_for_its_latest_message_without_typing(
    whatsapp: tuple[FakeWhatsAppAPI, WhatsAppAdapter],
) -> None:
    api, adapter = whatsapp
    receipts = receipts_for(adapter, interval=0.2)
    for message_id in ("wamid.A", "wamid.B", "wamid.C"):
        await receipts.intercept(turn(message_id))
    await wait_until(lambda: len(api.receipts()) == 2)  # the window's end marks the latest
    assert api.receipts() == [{**READ, "message_id": "wamid.A", **TYPING}, {**READ, "message_id": "wamid.C"}]
    # another chat has a window of its own
    await receipts.intercept(turn("wamid.X", chat="4915112345678"))
    await wait_until(lambda: len(api.receipts()) == 3)
    assert api.receipts()[2] == {**READ, "message_id": "wamid.X", **TYPING}


async def test_after_a_quiet_window_the_next_message_is_marked_at_once_again(
    whatsapp: tuple[FakeWhatsAppAPI, WhatsAppAdapter],
) -> None:
    api, adapter = whatsapp
    receipts = receipts_for(adapter, interval=0.05)
    await receipts.intercept(turn("wamid.A"))
    await wait_until(lambda: len(api.receipts()) == 1)
    await wait_until(lambda: receipts.open_windows == 0)  # the window ended with nothing held
    await receipts.intercept(turn("wamid.B"))
    await wait_until(lambda: len(api.receipts()) == 2)
    assert api.receipts()[1] == {**READ, "message_id": "wamid.B", **TYPING}


async def test_drain_marks_the_held_messages_now(whatsapp: tuple[FakeWhatsAppAPI, WhatsAppAdapter]) -> None:
    api, adapter = whatsapp
    receipts = receipts_for(adapter, interval=60.0)
    await receipts.intercept(turn("wamid.A"))
    await receipts.intercept(turn("wamid.B"))
    await receipts.drain()
    assert [r["message_id"] for r in api.receipts()] == ["wamid.A", "wamid.B"]
    assert "typing_indicator" not in api.receipts()[1]


def test_windows_last_the_interval_and_up_to_half_again_so_chats_that_began_together_drift_apart() -> None:
    receipts = ReadReceipts(lambda message: None, interval=2.0, rng=random.Random(7))
    windows = [receipts._window() for _ in range(200)]
    assert all(2.0 <= w <= 3.0 for w in windows)  # never more than one receipt per chat in 2 s
    assert max(windows) - min(windows) > 0.8  # spread over most of the extra second, not bunched
    assert ReadReceipts(lambda message: None, interval=2.0, spread=0.0)._window() == 2.0
