"""The fake Slack API answers like Slack, so the desk tests mean something."""

from __future__ import annotations

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_api import AGENT, AGENTS_CHANNEL, FakeSlackAPI


async def test_auth_test_is_a_form_post_returning_bot_ids(slack: FakeSlackAPI) -> None:
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.url)
    result = await client.auth_test()
    assert (result["user_id"], result["bot_id"], result["team_id"]) == ("U0BOTUSER", "B0SWITCHB", "T0001AGENT")
    call = slack.calls("auth.test")[0]
    assert call.http_method == "POST"
    assert call.headers["Content-Type"].startswith("application/x-www-form-urlencoded")


async def test_users_info_is_a_get_with_query(slack: FakeSlackAPI) -> None:
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.url)
    result = await client.users_info(user=AGENT)
    assert result["user"]["profile"]["display_name"] == "Anna"
    assert slack.calls("users.info")[0].http_method == "GET"


async def test_wrong_token_gets_invalid_auth(slack: FakeSlackAPI) -> None:
    client = AsyncWebClient(token="xoxb-wrong", base_url=slack.url)
    with pytest.raises(SlackApiError) as info:
        await client.chat_postMessage(channel=AGENTS_CHANNEL, text="hi")
    assert info.value.response["error"] == "invalid_auth"
    assert slack.posted() == []


async def test_rate_limit_answers_429_with_retry_after_and_slack_body(slack: FakeSlackAPI) -> None:
    slack.rate_limit("chat.postMessage", times=1, retry_after=7)
    async with aiohttp.ClientSession() as session:
        async with session.post(slack.url + "chat.postMessage", json={"channel": AGENTS_CHANNEL, "text": "x"},
                                headers={"Authorization": f"Bearer {slack.bot_token}"}) as resp:
            assert resp.status == 429
            assert resp.headers["Retry-After"] == "7"
            assert await resp.json() == {"ok": False, "error": "ratelimited"}
        async with session.post(slack.url + "chat.postMessage", json={"channel": AGENTS_CHANNEL, "text": "x"},
                                headers={"Authorization": f"Bearer {slack.bot_token}"}) as resp:
            assert (await resp.json())["ok"] is True
    assert slack.counts()["chat.postMessage"] == 2


async def test_unknown_channel_and_oversized_blocks_are_refused(slack: FakeSlackAPI) -> None:
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.url)
    with pytest.raises(SlackApiError) as info:
        await client.chat_postMessage(channel="C0NOPE", text="x")
    assert info.value.response["error"] == "channel_not_found"
    too_long = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    with pytest.raises(SlackApiError) as info:
        await client.chat_postMessage(channel=AGENTS_CHANNEL, text="x", blocks=too_long)
    assert info.value.response["error"] == "invalid_blocks"


async def test_app_token_opens_a_socket_mode_url(slack: FakeSlackAPI) -> None:
    client = AsyncWebClient(base_url=slack.url)
    result = await client.apps_connections_open(app_token=slack.app_token)
    assert result["url"] == f"ws://127.0.0.1:{slack.port}/link"
    with pytest.raises(SlackApiError):
        await client.apps_connections_open(app_token=slack.bot_token)
