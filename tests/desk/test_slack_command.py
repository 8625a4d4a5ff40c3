"""The Slack desk's ``/switchboard`` command, through the fake Slack API and the whole farm:
posted form-encoded and signed like Slack posts it, acked at once (Slack's 3 s), answered to
the agent alone through the command's ``response_url``; ``queue`` numbers the handed-off
conversations, ``claim N`` claims like the card's button, ``transfer`` hands one to a colleague
or back to the queue with a note; bad input gets a clear answer."""

from __future__ import annotations

import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

import aiohttp

from channels.slack_desk import SlackDesk
from core.handoff.service import QueueEntry
from core.model import Contact, Conversation, ConversationStatus, Identity
from tests.desk.conftest import RecordingActions, Seen, make_config
from tests.fakes.slack_api import (
    AGENT,
    AGENTS_CHANNEL,
    SIGNING_SECRET,
    FakeSlackAPI,
    signed_command_request,
)
from tests.handoff.handoff_support import (
    Customer,
    conversation_of,
    desk_config,
    events_of,
    handoff_farm,
)
from tests.support.farm import RunningFarm
from tests.support.wait import eventually

SECRET = SIGNING_SECRET


def slack_desk(slack: FakeSlackAPI) -> dict[str, Any]:
    return {**desk_config(), "slack": {"enabled": True, "bot_token": slack.bot_token, "signing_secret": SECRET,
                                       "channel": AGENTS_CHANNEL, "agents": [AGENT, "U0AGENTBEN"],
                                       "api_base": slack.url}}


async def command(farm: RunningFarm, slack: FakeSlackAPI, text: str, user: str = AGENT) -> str:
    """Type ``/switchboard <text>`` as ``user``; the answer the app posts to the response_url."""
    before = len(slack.responses)
    body, headers = signed_command_request(slack.command_payload(text, user=user), SECRET)
    started = time.monotonic()
    async with aiohttp.ClientSession() as http, http.post(f"{farm.url}/slack/events", data=body,
                                                          headers=headers) as response:
        assert response.status == 200
        assert await response.text() == ""  # a bare ack: the answer follows through response_url
    assert time.monotonic() - started < 3.0
    answer = (await slack.wait_for_responses(before + 1))[before]
    assert answer["response_type"] == "ephemeral"
    return str(answer["text"])


async def until(check: Any) -> None:
    await eventually(check)


async def test_slash_command_lists_claims_and_transfers(tmp_path: Path) -> None:
    async with FakeSlackAPI() as slack, handoff_farm(tmp_path, desk=slack_desk(slack)) as (farm, _), \
            aiohttp.ClientSession() as chat:
        assert "No one is waiting" in await command(farm, slack, "queue")
        first = await Customer.connect(chat, farm.url)
        await first.say("Mitarbeiter bitte")
        await farm.farm.settle()
        second = await Customer.connect(chat, farm.url)
        await second.say("Ich will einen Menschen, meine Bestellung fehlt")
        await farm.farm.settle()
        one, two = (await conversation_of(farm, first)).id, (await conversation_of(farm, second)).id

        listing = await command(farm, slack, "queue")
        assert "*2 waiting*" in listing
        lines = listing.splitlines()
        assert lines[1].startswith("1. *") and "(Web chat)" in lines[1]
        assert lines[2].startswith("2. *") and "Bestellung fehlt" in lines[2]

        assert "There is no number 7" in await command(farm, slack, "claim 7")
        assert "is not a number" in await command(farm, slack, "claim zwei")
        assert "Which one?" in await command(farm, slack, "claim")
        assert "only agents" in await command(farm, slack, "claim 1", user="U0MARKETING")

        assert "You claimed" in await command(farm, slack, "claim 2")
        conversation = await farm.store.get_conversation(two)
        assert conversation is not None
        assert (conversation.status, conversation.assigned_agent) == (ConversationStatus.AGENT, "slack:U0AGENTANNA")
        assert "already with you" in await command(farm, slack, "claim 2")

        listing = await command(farm, slack, "queue")
        assert "*1 waiting*" in listing and "*With agents*" in listing and "<@U0AGENTANNA>" in listing

        assert "not an agent" in await command(farm, slack, "transfer <@U0MARKETING|mia>")
        answer = await command(farm, slack, "transfer <@U0AGENTBEN|ben> wants a refund, order 4711")
        assert "is now with <@U0AGENTBEN>" in answer

        async def with_ben() -> bool:
            found = await farm.store.get_conversation(two)
            return found is not None and found.assigned_agent == "slack:U0AGENTBEN"

        await until(with_ben)
        notes = [e.data["text"] for e in await events_of(farm, two, "note")]
        assert "wants a refund, order 4711" in notes

        assert "no claimed conversation" in await command(farm, slack, "transfer queue")  # Anna has none now
        assert "is back in the queue" in await command(farm, slack, "transfer 2 queue", user="U0AGENTBEN")
        conversation = await farm.store.get_conversation(two)
        assert conversation is not None and conversation.status is ConversationStatus.WAITING
        still = await farm.store.get_conversation(one)
        assert still is not None and still.status is ConversationStatus.WAITING

        help_text = await command(farm, slack, "frobnicate")
        assert "I do not know “frobnicate”" in help_text and "/switchboard claim N" in help_text


async def test_forged_slash_command_is_rejected(tmp_path: Path) -> None:
    async with FakeSlackAPI() as slack, handoff_farm(tmp_path, desk=slack_desk(slack)) as (farm, _):
        body, headers = signed_command_request(slack.command_payload("claim 1"), "not-the-secret")
        async with aiohttp.ClientSession() as http, http.post(f"{farm.url}/slack/events", data=body,
                                                              headers=headers) as response:
            assert response.status == 401
        assert slack.responses == []


async def test_slash_command_over_socket_mode_is_acked_then_answered() -> None:
    waiting = QueueEntry(Conversation(id="conv_socket", bot="demo", contact_id="contact_1",
                                      status=ConversationStatus.WAITING, desk_thread="1763820100.000100"),
                         Contact(id="contact_1", bot="demo", identities=(Identity("telegram", "42", "42"),),
                                 display_name="Greta Kunde"), "requested", None, "Hilfe!")

    async def queue(bots: Collection[str] | None = None) -> list[QueueEntry]:
        return [waiting]

    async def resolve(thread: str) -> str | None:
        return None

    async with FakeSlackAPI() as slack:
        actions = RecordingActions()
        desk = SlackDesk(make_config(slack, app_token=slack.app_token, signing_secret=""), actions, resolve, Seen(),
                         queue=queue)
        await desk.start()
        try:
            ack = await slack.wait_for_ack(await slack.push_command(slack.command_payload("queue")))
            assert "payload" not in ack  # acked at once, the answer goes to response_url
            [listing] = await slack.wait_for_responses(1)
            assert "1. *Greta Kunde* (Telegram)" in listing["text"] and "“Hilfe!”" in listing["text"]
            await slack.wait_for_ack(await slack.push_command(slack.command_payload("claim 1")))
            await actions.wait(1)
            assert actions.calls == [("claim", ("conv_socket", "slack:U0AGENTANNA", "Anna"))]
            await slack.wait_for_responses(2)
            assert "You claimed *Greta Kunde*" in slack.responses[1]["text"]
        finally:
            await desk.stop()
