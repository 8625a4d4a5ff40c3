"""Transfer in Slack, through the fake Slack API and the whole farm: the card's "Transfer to…"
user picker hands the conversation to another agent (the customer is told who answers now),
"Back to queue" puts it back unclaimed, and a non-agent cannot be picked."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp

from core.model import ConversationStatus
from tests.fakes.slack_api import (
    AGENT,
    AGENTS_CHANNEL,
    SIGNING_SECRET,
    FakeSlackAPI,
    block_actions_payload,
    signed_action_request,
)
from tests.handoff.handoff_support import Customer, conversation_of, desk_config, handoff_farm
from tests.support.wait import eventually

SECRET = SIGNING_SECRET


def picked(user: str, selected: str, card_ts: str) -> dict[str, Any]:
    payload = block_actions_payload("transfer", "", user=user, message_ts=card_ts)
    payload["actions"] = [{"action_id": "transfer", "block_id": "handoff_actions", "type": "users_select",
                           "selected_user": selected, "action_ts": f"{time.time():.6f}"}]
    return payload


async def post(url: str, payload: dict[str, Any]) -> None:
    body, headers = signed_action_request(payload, SECRET)
    async with aiohttp.ClientSession() as http, http.post(f"{url}/slack/events", data=body, headers=headers) as r:
        assert r.status == 200


async def until(check: Any, what: str) -> None:
    await eventually(check, message=what)


async def test_slack_agent_transfers_to_a_colleague_who_puts_it_back_in_the_queue(tmp_path: Path) -> None:
    async with FakeSlackAPI() as slack:
        desk = {**desk_config(), "slack": {"enabled": True, "bot_token": slack.bot_token, "signing_secret": SECRET,
                                           "channel": AGENTS_CHANNEL, "agents": [AGENT, "U0AGENTBEN"],
                                           "api_base": slack.url}}
        async with handoff_farm(tmp_path, desk=desk) as (farm, _), aiohttp.ClientSession() as chat:
            customer = await Customer.connect(chat, farm.url)
            await customer.say("Mitarbeiter bitte")
            await farm.farm.settle()
            await slack.wait_for("chat.postMessage")
            card = slack.posted(AGENTS_CHANNEL)[0]
            conversation_id = (await conversation_of(farm, customer)).id
            await customer.received()

            async def status() -> tuple[ConversationStatus, str | None]:
                c = await farm.store.get_conversation(conversation_id)
                assert c is not None
                return c.status, c.assigned_agent

            await post(farm.url, block_actions_payload("claim", conversation_id, message_ts=card["ts"]))
            await until(lambda: _is(status, (ConversationStatus.AGENT, "slack:U0AGENTANNA")), "claimed")
            await slack.wait_for("chat.update")
            elements = [e for b in slack.message(AGENTS_CHANNEL, card["ts"])["blocks"] if b.get("type") == "actions"
                        for e in b["elements"]]
            assert {"transfer", "back_to_queue"} <= {e["action_id"] for e in elements}

            await post(farm.url, picked(AGENT, "U0MARKETING", card["ts"]))
            await slack.wait_for("chat.postEphemeral")
            assert "not an agent" in slack.ephemerals[-1]["text"]
            assert await status() == (ConversationStatus.AGENT, "slack:U0AGENTANNA")

            await post(farm.url, picked(AGENT, "U0AGENTBEN", card["ts"]))
            await until(lambda: _is(status, (ConversationStatus.AGENT, "slack:U0AGENTBEN")), "transferred")
            await farm.farm.settle()
            assert any("Ben" in f["text"] for f in await customer.received() if f["role"] == "system")

            await post(farm.url, block_actions_payload("back_to_queue", conversation_id, user="U0AGENTBEN",
                                                       message_ts=card["ts"]))
            await until(lambda: _is(status, (ConversationStatus.WAITING, None)), "back in the queue")
            await slack.wait_for("chat.update", count=3)  # claimed, transferred, back in the queue
            assert any("put back in the queue by Ben" in m.get("text", "")
                       for m in slack.posted(AGENTS_CHANNEL, thread_ts=card["ts"]))


async def _is(read: Any, expected: tuple[ConversationStatus, str | None]) -> bool:
    return bool(await read() == expected)
