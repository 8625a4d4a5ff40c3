"""The Slack desk against the fake Slack Web API, over signed HTTP and Socket Mode."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels import slack_card
from channels.slack_desk import SlackDesk
from core.desk import HandoffSummary
from core.errors import RateLimited, Unauthorized
from core.model import Contact, Conversation, ConversationStatus, Event
from tests.desk.conftest import (
    CONVERSATION,
    THREAD,
    RecordingActions,
    Seen,
    Server,
    make_desk,
)
from tests.fakes.slack_api import (
    AGENT,
    AGENTS_CHANNEL,
    SIGNING_SECRET,
    FakeSlackAPI,
    block_actions_payload,
    event_callback,
    message_event,
    signed_action_request,
    signed_event_request,
)
from tests.support.wait import eventually


def summary(**overrides: Any) -> HandoffSummary:
    conversation = Conversation(
        id=CONVERSATION, bot="demo", contact_id="contact_1", status=ConversationStatus.WAITING,
        language="de", slots={"domain": "schmidt-gartenbau.de", "plan": None},
    )
    values: dict[str, Any] = {
        "conversation": conversation,
        "contact": Contact(id="contact_1", bot="demo", display_name="Anna Schmidt"),
        "channel": "whatsapp",
        "reason": "customer asked for a person",
        "intent": "server_down",
        "slots": {"domain": "schmidt-gartenbau.de", "order_id": "[ORDER]"},
        "sentiment": -0.6,
        "last_messages": (
            Event("user", {"text": "Mein Server ist down <!channel>"}, channel="whatsapp"),
            Event("bot", {"text": "Welche Domain ist betroffen?"}),
            Event("user", {"text": "Ich möchte einen Menschen sprechen, IBAN [IBAN]"}, channel="whatsapp"),
            Event("slot", {"name": "domain", "value": "x"}),
        ),
    }
    values.update(overrides)
    return HandoffSummary(**values)


def all_text(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def buttons(blocks: list[dict[str, Any]]) -> dict[str, str]:
    for block in blocks:
        if block.get("type") == "actions":
            return {e["action_id"]: e["value"] for e in block["elements"]}
    return {}


async def post_event(server: Server, event: dict[str, Any], *, event_id: str | None = None,
                     retry_num: int | None = None) -> int:
    body, headers = signed_event_request(event_callback(event, event_id=event_id), SIGNING_SECRET,
                                         retry_num=retry_num)
    status, _ = await server.post(body, headers)
    return status


def _bolt_listener_running() -> bool:
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        code = getattr(coro, "cr_code", None)
        if not task.done() and code is not None and "slack_bolt" in code.co_filename:
            return True
    return False


async def settle() -> None:
    """Wait until Bolt's after-ack listener tasks finished (they run after the 200)."""
    await asyncio.sleep(0)  # a listener scheduled by the ack starts
    await eventually(lambda: not _bolt_listener_running(), message="a Slack listener still runs")


# -- core -> Slack -----------------------------------------------------------------------
async def test_handoff_card_shows_summary_fields_and_buttons(desk: SlackDesk, slack: FakeSlackAPI) -> None:
    ts = await desk.open_handoff(summary())
    assert ts is not None
    card = slack.message(AGENTS_CHANNEL, ts)
    text = all_text(card["blocks"])
    for expected in ("Anna Schmidt", "WhatsApp", "de", "customer asked for a person", "server_down",
                     "schmidt-gartenbau.de", "[ORDER]", "-0.60", "Welche Domain ist betroffen?",
                     "[IBAN]", CONVERSATION):
        assert expected in text, expected
    assert buttons(card["blocks"]) == {"claim": CONVERSATION, "back_to_bot": CONVERSATION, "close": CONVERSATION}
    assert "Anna Schmidt" in card["text"]
    call = slack.calls("chat.postMessage")[0]
    assert call.token == slack.bot_token
    assert call.headers["Content-Type"].startswith("application/json")


async def test_customer_text_cannot_ping_the_channel(desk: SlackDesk, slack: FakeSlackAPI) -> None:
    ts = await desk.open_handoff(summary())
    assert ts is not None
    text = all_text(slack.message(AGENTS_CHANNEL, ts)["blocks"])
    assert "<!channel>" not in text
    assert "&lt;!channel&gt;" in text


async def test_previous_agent_is_mentioned_on_the_card(desk: SlackDesk, slack: FakeSlackAPI) -> None:
    ts = await desk.open_handoff(summary(previous_agent="slack:U0AGENTANNA"))
    assert ts is not None
    card = slack.message(AGENTS_CHANNEL, ts)
    assert "<@U0AGENTANNA>" in all_text(card["blocks"])
    assert "<@U0AGENTANNA>" in card["text"]


async def test_customer_message_goes_into_the_thread(desk: SlackDesk, slack: FakeSlackAPI) -> None:
    ts = await desk.open_handoff(summary())
    conversation = summary().conversation.evolve(desk_thread=ts)
    await desk.customer_message(conversation, Event("user", {"text": "Hallo? [PHONE]"}, channel="whatsapp"))
    replies = slack.posted(AGENTS_CHANNEL, thread_ts=ts)
    assert len(replies) == 1
    assert replies[0]["text"] == "*Anna Schmidt* (WhatsApp): Hallo? [PHONE]"


async def test_thread_posts_are_paced_to_about_one_per_second_after_a_short_burst(
    desk: SlackDesk, slack: FakeSlackAPI
) -> None:
    ts = await desk.open_handoff(summary())
    conversation = summary().conversation.evolve(desk_thread=ts)
    for n in range(7):  # the card plus 7 messages: 3 beyond the burst of 5
        await desk.customer_message(conversation, Event("user", {"text": f"message {n}"}, channel="whatsapp"))
    posts = [c.at for c in slack.calls("chat.postMessage")]
    assert len(posts) == 8
    assert posts[-1] - posts[0] >= 2.5  # Slack's ~1 msg/s per channel, not 8 posts at once
    assert posts[4] - posts[0] < 0.5  # the burst itself is not slowed


async def test_claimed_status_updates_card_buttons_and_thread(desk: SlackDesk, slack: FakeSlackAPI) -> None:
    ts = await desk.open_handoff(summary())
    claimed = summary().conversation.evolve(desk_thread=ts, status=ConversationStatus.AGENT,
                                            assigned_agent="slack:U0AGENTANNA")
    await desk.status_changed(claimed, "claimed by Anna")
    card = slack.message(AGENTS_CHANNEL, ts)
    assert "Claimed by <@U0AGENTANNA>" in all_text(card["blocks"])
    assert "Anna Schmidt" in all_text(card["blocks"])  # the summary stays
    assert set(buttons(card["blocks"])) == {"back_to_bot", "close", "back_to_queue"}
    assert slack.posted(AGENTS_CHANNEL, thread_ts=ts)[-1]["text"].endswith("claimed by Anna")


async def test_closed_status_removes_buttons_and_shows_csat_in_thread(desk: SlackDesk, slack: FakeSlackAPI) -> None:
    ts = await desk.open_handoff(summary())
    closed = summary().conversation.evolve(desk_thread=ts, status=ConversationStatus.CLOSED)
    await desk.status_changed(closed)
    await desk.status_changed(closed, "CSAT 5/5")
    card = slack.message(AGENTS_CHANNEL, ts)
    assert buttons(card["blocks"]) == {}
    assert "Closed" in all_text(card["blocks"])
    assert "CSAT 5/5" in slack.posted(AGENTS_CHANNEL, thread_ts=ts)[-1]["text"]


async def test_status_update_after_restart_reads_the_card_back(
    slack: FakeSlackAPI, actions: RecordingActions, threads: dict[str, str],
) -> None:
    first = make_desk(slack, actions, threads)
    await first.start()
    ts = await first.open_handoff(summary())
    await first.stop()
    second = make_desk(slack, actions, threads)
    await second.start()
    try:
        back = summary().conversation.evolve(desk_thread=ts, status=ConversationStatus.BOT)
        await second.status_changed(back, "handed back")
    finally:
        await second.stop()
    assert slack.count("conversations.replies") == 1
    blocks = slack.message(AGENTS_CHANNEL, str(ts))["blocks"]
    assert "Anna Schmidt" in all_text(blocks)
    assert "Back with the bot" in all_text(blocks)
    assert sum(1 for b in blocks if b.get("block_id") == "handoff_status") == 1


async def test_rate_limited_post_is_retried_after_retry_after(desk: SlackDesk, slack: FakeSlackAPI) -> None:
    slack.rate_limit("chat.postMessage", times=1, retry_after=1)
    started = time.monotonic()
    ts = await desk.open_handoff(summary())
    assert ts is not None
    assert time.monotonic() - started >= 1.0
    statuses = [c.status for c in slack.calls("chat.postMessage")]
    assert statuses == [429, 200]


async def test_rate_limit_beyond_retries_raises_rate_limited(desk: SlackDesk, slack: FakeSlackAPI) -> None:
    ts = await desk.open_handoff(summary())
    slack.rate_limit("chat.update", times=5, retry_after=0)
    conversation = summary().conversation.evolve(desk_thread=ts)
    with pytest.raises(RateLimited):
        await desk.status_changed(conversation)
    assert slack.count("chat.update") == 3  # first try + rate_limit_retries=2


async def test_wrong_bot_token_fails_start(slack: FakeSlackAPI, actions: RecordingActions,
                                           threads: dict[str, str]) -> None:
    desk = make_desk(slack, actions, threads, bot_token="xoxb-wrong")
    with pytest.raises(Unauthorized):
        await desk.start()
    await desk.stop()


# -- Slack -> core over HTTP -------------------------------------------------------------
async def test_claim_click_by_agent_calls_claim(server: Server, actions: RecordingActions) -> None:
    body, headers = signed_action_request(block_actions_payload("claim", CONVERSATION), SIGNING_SECRET)
    status, _ = await server.post(body, headers)
    assert status == 200
    await actions.wait(1)
    assert actions.calls == [("claim", (CONVERSATION, "slack:U0AGENTANNA", "Anna"))]


@pytest.mark.parametrize("action_id", ["back_to_bot", "close"])
async def test_other_buttons_call_their_action(server: Server, actions: RecordingActions, action_id: str) -> None:
    body, headers = signed_action_request(block_actions_payload(action_id, CONVERSATION), SIGNING_SECRET)
    assert (await server.post(body, headers))[0] == 200
    await actions.wait(1)
    assert actions.names() == [action_id]


async def test_click_by_non_agent_is_refused_with_ephemeral(
    server: Server, actions: RecordingActions, slack: FakeSlackAPI,
) -> None:
    body, headers = signed_action_request(block_actions_payload("claim", CONVERSATION, user="U0MARKETING"),
                                          SIGNING_SECRET)
    assert (await server.post(body, headers))[0] == 200
    await slack.wait_for("chat.postEphemeral")
    assert actions.calls == []
    assert slack.ephemerals[0]["user"] == "U0MARKETING"


async def test_failed_action_is_reported_to_the_agent(
    server: Server, actions: RecordingActions, slack: FakeSlackAPI, not_found: Exception,
) -> None:
    actions.fail_with = not_found
    body, headers = signed_action_request(block_actions_payload("close", "conv_gone"), SIGNING_SECRET)
    assert (await server.post(body, headers))[0] == 200
    await slack.wait_for("chat.postEphemeral")
    assert "not found" in slack.ephemerals[0]["text"]


async def test_thread_reply_by_agent_becomes_agent_reply_with_display_name(
    server: Server, actions: RecordingActions, slack: FakeSlackAPI,
) -> None:
    text = "Hallo Frau Schmidt, ich schaue mir Ihren Server sofort an &amp; melde mich."
    assert await post_event(server, message_event(text, thread_ts=THREAD)) == 200
    await actions.wait(1)
    assert actions.calls == [("agent_reply", (
        CONVERSATION, "slack:U0AGENTANNA", "Anna",
        "Hallo Frau Schmidt, ich schaue mir Ihren Server sofort an & melde mich.",
    ))]
    # a second reply uses the cached name
    assert await post_event(server, message_event("Noch da?", thread_ts=THREAD)) == 200
    await actions.wait(2)
    assert slack.count("users.info") == 1


async def test_note_prefix_makes_an_internal_note(server: Server, actions: RecordingActions) -> None:
    text = "!Kunde hatte schon im Oktober Ausfall, bitte Kulanz prüfen"
    assert await post_event(server, message_event(text, thread_ts=THREAD)) == 200
    await actions.wait(1)
    assert actions.calls == [("internal_note", (
        CONVERSATION, "slack:U0AGENTANNA", "Anna", "Kunde hatte schon im Oktober Ausfall, bitte Kulanz prüfen",
    ))]


async def test_agent_group_member_may_reply_and_group_is_cached(
    server: Server, actions: RecordingActions, slack: FakeSlackAPI,
    threads: dict[str, str],
) -> None:
    desk = make_desk(slack, actions, threads, agents=[], agent_group="S0AGENTS")
    await desk.start()
    try:
        from aiohttp import web
        app = web.Application()
        route = desk.routes()[0]
        app.router.add_route(route.method, route.path, route.handler)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        group_server = Server(f"http://127.0.0.1:{port}", server.session)
        assert await post_event(group_server, message_event("Ich übernehme", user="U0AGENTBEN", thread_ts=THREAD)) == 200
        assert await post_event(group_server, message_event("Wer ist das?", user="U0MARKETING", thread_ts=THREAD)) == 200
        assert await post_event(group_server, message_event("Gleich fertig", user="U0AGENTBEN", thread_ts=THREAD)) == 200
        await actions.wait(2)
        await settle()
        await runner.cleanup()
    finally:
        await desk.stop()
    assert [c[1][2] for c in actions.calls] == ["Ben", "Ben"]
    assert slack.count("usergroups.users.list") == 1


async def test_reply_by_non_agent_is_ignored(server: Server, actions: RecordingActions) -> None:
    assert await post_event(server, message_event("Wer ist das?", user="U0MARKETING", thread_ts=THREAD)) == 200
    await settle()
    assert actions.calls == []


@pytest.mark.parametrize("event", [
    message_event("Anna (WhatsApp): Danke!", thread_ts=THREAD, bot_id="B0SWITCHB"),
    message_event("ein anderer Bot", thread_ts=THREAD, bot_id="B0OTHERBOT"),
    message_event("Guten Morgen Team"),  # top level, not in a thread
    message_event("joined", subtype="channel_join"),
    message_event("Mittagessen?", channel="C0RANDOM99", thread_ts=THREAD),
    message_event("Antwort in fremdem Thread", thread_ts="1763000000.000001"),
], ids=["own-bot", "other-bot", "top-level", "join", "other-channel", "unknown-thread"])
async def test_noise_is_not_acted_on(server: Server, actions: RecordingActions, event: dict[str, Any]) -> None:
    assert await post_event(server, event) == 200
    await settle()
    assert actions.calls == []


async def test_edits_are_ignored(server: Server, actions: RecordingActions) -> None:
    event = {
        "type": "message", "subtype": "message_changed", "hidden": True, "channel": AGENTS_CHANNEL,
        "ts": "1763820250.000700", "event_ts": "1763820250.000700", "channel_type": "channel",
        "message": {"type": "message", "user": AGENT, "text": "korrigiert",
                    "ts": "1763820200.000200", "thread_ts": THREAD},
    }
    assert await post_event(server, event) == 200
    await settle()
    assert actions.calls == []


async def test_duplicate_event_id_is_acted_on_once(server: Server, actions: RecordingActions) -> None:
    event = message_event("Ich bin dran.", thread_ts=THREAD)
    assert await post_event(server, event, event_id="Ev0AGENTREPLY1") == 200
    assert await post_event(server, event, event_id="Ev0AGENTREPLY1", retry_num=1) == 200
    await actions.wait(1)
    await settle()
    assert actions.names() == ["agent_reply"]


async def test_forged_signature_is_rejected(server: Server, actions: RecordingActions) -> None:
    body, headers = signed_event_request(event_callback(message_event("x", thread_ts=THREAD)), "not-the-secret")
    status, _ = await server.post(body, headers)
    assert status == 401
    body, headers = signed_action_request(block_actions_payload("claim", CONVERSATION), "not-the-secret")
    assert (await server.post(body, headers))[0] == 401
    await settle()
    assert actions.calls == []


async def test_stale_timestamp_is_rejected(server: Server, actions: RecordingActions) -> None:
    stale = int(time.time()) - 301
    body, headers = signed_event_request(event_callback(message_event("x", thread_ts=THREAD)), SIGNING_SECRET,
                                         timestamp=stale)
    assert (await server.post(body, headers))[0] == 401
    await settle()
    assert actions.calls == []


async def test_url_verification_is_answered(server: Server) -> None:
    body = json.dumps({"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": "3eZbrw1aBm2r",
                       "type": "url_verification"}).encode()
    from tests.fakes.slack_api import signed_headers
    status, text = await server.post(body, signed_headers(body, SIGNING_SECRET))
    assert status == 200
    assert json.loads(text) == {"challenge": "3eZbrw1aBm2r"}


# -- Slack -> core over Socket Mode ------------------------------------------------------
async def test_socket_mode_envelope_is_acked_and_acted_on(
    slack: FakeSlackAPI, actions: RecordingActions, threads: dict[str, str],
) -> None:
    desk = make_desk(slack, actions, threads, app_token=slack.app_token, signing_secret="")
    assert desk.routes() == ()
    await desk.start()
    try:
        envelope = await slack.push_event(event_callback(message_event("Hallo aus Socket Mode", thread_ts=THREAD)))
        ack = await slack.wait_for_ack(envelope)
        assert ack["envelope_id"] == envelope
        await actions.wait(1)
        click = await slack.push_action(block_actions_payload("claim", CONVERSATION))
        await slack.wait_for_ack(click)
        await actions.wait(2)
    finally:
        await desk.stop()
    assert actions.calls == [
        ("agent_reply", (CONVERSATION, "slack:U0AGENTANNA", "Anna", "Hallo aus Socket Mode")),
        ("claim", (CONVERSATION, "slack:U0AGENTANNA", "Anna")),
    ]
    open_call = slack.calls("apps.connections.open")[0]
    assert open_call.token == slack.app_token


async def test_socket_mode_redelivery_is_acted_on_once(
    slack: FakeSlackAPI, actions: RecordingActions, threads: dict[str, str],
) -> None:
    seen = Seen()
    desk = make_desk(slack, actions, threads, app_token=slack.app_token, signing_secret="", seen=seen)
    await desk.start()
    try:
        body = event_callback(message_event("einmal", thread_ts=THREAD), event_id="Ev0ONCE")
        await slack.wait_for_ack(await slack.push_event(body))
        await slack.wait_for_ack(await slack.push_event(body, retry_attempt=1, retry_reason="timeout"))
        await actions.wait(1)
        await settle()
    finally:
        await desk.stop()
    assert actions.names() == ["agent_reply"]
    assert "slack:event:Ev0ONCE" in seen.keys


def test_desk_without_token_or_channel_is_a_config_error(slack: FakeSlackAPI) -> None:
    from core.errors import ConfigError
    with pytest.raises(ConfigError):
        make_desk(slack, RecordingActions(), {}, bot_token="")
    with pytest.raises(ConfigError):
        make_desk(slack, RecordingActions(), {}, channel="")
    with pytest.raises(ConfigError):
        make_desk(slack, RecordingActions(), {}, signing_secret="", app_token=None)


async def test_long_transcript_and_slots_fit_slack_limits(desk: SlackDesk, slack: FakeSlackAPI) -> None:
    long = summary(
        reason="r" * 500,
        slots={f"slot_{i}": "v" * 300 for i in range(30)},
        last_messages=tuple(Event("user", {"text": f"{i} " + "x" * 400}) for i in range(40)),
        contact=Contact(id="contact_1", bot="demo", display_name="N" * 300),
    )
    ts = await desk.open_handoff(long)  # the fake refuses blocks over Slack's limits
    assert ts is not None
    text = all_text(slack.message(AGENTS_CHANNEL, ts)["blocks"])
    assert "39 x" in text  # the most recent message is kept


@given(st.text(max_size=300))
@settings(max_examples=200, deadline=None)
def test_escaped_text_has_no_slack_control_sequences(text: str) -> None:
    escaped = slack_card.escape(text)
    assert "<" not in escaped and ">" not in escaped
    assert slack_card.to_plain(escaped) == text
