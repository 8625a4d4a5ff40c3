"""The handoff with Slack configured (Socket Mode against the local fake Slack API): the Slack
desk is found through the ``switchboard.desks`` entry point and is the primary desk."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from core.model import ConversationStatus
from tests.fakes.slack_api import (
    AGENT,
    AGENTS_CHANNEL,
    FakeSlackAPI,
    block_actions_payload,
    event_callback,
    message_event,
)
from tests.handoff.handoff_support import Customer, conversation_of, desk_config, handoff_farm
from tests.support.wait import eventually


async def wait_until(check, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    await eventually(check, timeout=timeout)


async def test_slack_agent_claims_and_replies_in_the_thread_and_the_customer_gets_it(tmp_path: Path) -> None:
    async with FakeSlackAPI() as slack:
        desk = {**desk_config(), "slack": {"enabled": True, "bot_token": slack.bot_token,
                                           "app_token": slack.app_token, "channel": AGENTS_CHANNEL,
                                           "agents": [AGENT], "api_base": slack.url}}
        async with handoff_farm(tmp_path, desk=desk) as (farm, _), aiohttp.ClientSession() as http:
            customer = await Customer.connect(http, farm.url)
            await customer.say("Mitarbeiter bitte")
            await farm.farm.settle()
            await customer.received()
            conversation = await conversation_of(farm, customer)
            [card] = [m for m in slack.posted(AGENTS_CHANNEL) if not m.get("thread_ts")]
            assert conversation.desk_thread == card["ts"]  # Slack is the primary desk

            await customer.say("Meine IBAN ist DE89 3704 0044 0532 0130 00")
            await farm.farm.settle()
            replies = slack.posted(AGENTS_CHANNEL, thread_ts=card["ts"])
            assert any("DE89 •••• … 3000" in m["text"] for m in replies)
            assert not any("0532 0130" in m["text"] for m in replies)

            await slack.wait_for_ack(await slack.push_action(
                block_actions_payload("claim", conversation.id, message_ts=card["ts"])))

            async def claimed() -> bool:
                current = await farm.store.get_conversation(conversation.id)
                return current is not None and current.status is ConversationStatus.AGENT

            await wait_until(claimed)
            await slack.wait_for_ack(await slack.push_event(event_callback(
                message_event("Hallo, Anna hier.", thread_ts=card["ts"]))))
            await slack.wait_for_ack(await slack.push_event(event_callback(
                message_event("!nur intern", thread_ts=card["ts"]))))

            async def answered() -> bool:
                notes = [e for e in await farm.store.transcript(conversation.id) if e.type == "note"]
                return bool(notes)

            await wait_until(answered)
            await farm.farm.settle()
            frames = await customer.received()
            assert [(f["role"], f["author"], f["text"]) for f in frames if f["role"] == "agent"] == [
                ("agent", "Anna", "Hallo, Anna hier.")]
            assert all("intern" not in f["text"] for f in frames)
            current = await farm.store.get_conversation(conversation.id)
            assert current is not None and current.assigned_agent == "slack:U0AGENTANNA"
