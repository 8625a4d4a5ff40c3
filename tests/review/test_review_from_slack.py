"""An agent sends a customer message to the review queue from the (fake) Slack thread with ``!review``."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp

from core.store.ports.review import ReviewItem
from tests.fakes.slack_api import (
    AGENT,
    AGENTS_CHANNEL,
    SIGNING_SECRET,
    FakeSlackAPI,
    event_callback,
    message_event,
    signed_event_request,
)
from tests.handoff.handoff_support import Customer
from tests.review.support import demo_copy, review_bots, review_service
from tests.support.farm import running_farm
from tests.support.wait import eventually


async def test_bang_review_in_the_thread_queues_the_customers_latest_message(
    tmp_path: Path, slack: FakeSlackAPI
) -> None:
    desk = {"web": {"enabled": False}, "slack": {
        "enabled": True, "bot_token": slack.bot_token, "signing_secret": SIGNING_SECRET,
        "channel": AGENTS_CHANNEL, "agents": [AGENT], "api_base": slack.url,
    }}
    async with running_farm(tmp_path, bots=review_bots(demo_copy(tmp_path)), desk=desk) as farm, \
            aiohttp.ClientSession() as http:
        customer = await Customer.connect(http, farm.url)
        await customer.say("Ich möchte mit einem Mitarbeiter sprechen")
        await slack.wait_for("chat.postMessage")
        thread = slack.posted(AGENTS_CHANNEL)[0]["ts"]
        await customer.say("Die Rechnung HW-1 ist doppelt abgebucht")  # relayed to the thread
        await farm.farm.settle()
        before = {i.id for i in await review_service(farm).queue("demo")}

        body, headers = signed_event_request(
            event_callback(message_event("!review", user=AGENT, thread_ts=thread)), SIGNING_SECRET)
        async with http.post(f"{farm.url}/slack/events", data=body, headers=headers) as response:
            assert response.status == 200

        async def new_items() -> list[ReviewItem]:
            return [i for i in await review_service(farm).queue("demo") if i.id not in before]

        flagged = await eventually(new_items, message="!review never reached the review queue")
        ephemeral = await slack.wait_for("chat.postEphemeral")
        transcript = await farm.store.transcript(flagged[0].conversation_id)
    (item,) = flagged
    assert item.text == "Die Rechnung HW-1 ist doppelt abgebucht" and item.reasons == ("flagged",)
    assert item.detail["flagged_by"] == f"slack:{AGENT}"
    assert "review queue" in json.dumps(ephemeral[-1].params)
    assert not any(e.type == "note" for e in transcript)  # a command, not an internal note
