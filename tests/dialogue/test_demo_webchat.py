"""The demo bot's learned dialogue through the public door: the web chat socket of a running farm."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from tests.handoff.handoff_support import Customer, bots, conversation_of
from tests.support.farm import running_farm


async def texts(farm: object, customer: Customer) -> list[str]:
    await farm.farm.settle()  # type: ignore[attr-defined]
    return [frame["text"] for frame in await customer.received()]


async def test_outage_reported_mid_form_ends_the_form_as_the_stories_say(tmp_path: Path) -> None:
    async with running_farm(tmp_path, bots=bots()) as farm, aiohttp.ClientSession() as http:
        customer = await Customer.connect(http, farm.url)
        await customer.say("Where is my order?")
        assert any("order number" in t for t in await texts(farm, customer))
        await customer.say("it is 12345")  # an invalid number first: no story has this before the outage
        assert any("doesn't look like an order number" in t for t in await texts(farm, customer))
        await customer.say("my server is down")
        replies = await texts(farm, customer)
        assert any("status.hostwerk.example" in t for t in replies)
        assert not any("order number" in t for t in replies)
        assert (await conversation_of(farm, customer)).active_form is None


async def test_question_mid_form_is_answered_and_the_form_resumes(tmp_path: Path) -> None:
    async with running_farm(tmp_path, bots=bots()) as farm, aiohttp.ClientSession() as http:
        customer = await Customer.connect(http, farm.url)
        await customer.say("Wo ist meine Bestellung?")
        await texts(farm, customer)
        await customer.say("Was kostet der Pro-Tarif?")
        replies = await texts(farm, customer)
        assert any("9,99" in t for t in replies) and "Bestellnummer" in replies[-1]
        assert (await conversation_of(farm, customer)).active_form == "order_status_form"
        await customer.say("HW-123456")
        assert any("HW-123456" in t for t in await texts(farm, customer))


async def test_thanks_after_a_finished_order_lookup_gets_the_thanks_answer(tmp_path: Path) -> None:
    # No rule answers thanks in the demo: stories do, and the lookup turn before it is the form's.
    conversations = (
        (["Where is my order?", "HW-123456"], "thanks", "You're welcome"),
        (["Hallo", "Wo ist meine Bestellung?", "HW-123456"], "Danke!", "Gern geschehen"),
    )
    async with running_farm(tmp_path, bots=bots()) as farm, aiohttp.ClientSession() as http:
        for before, thanks, expected in conversations:
            customer = await Customer.connect(http, farm.url)
            for text in before:
                await customer.say(text)
                replies = await texts(farm, customer)
            assert any("HW-123456" in t for t in replies)
            await customer.say(thanks)
            replies = await texts(farm, customer)
            assert replies and replies[0].startswith(expected), replies
            conversation = await conversation_of(farm, customer)
            assert conversation.status.value == "bot"
