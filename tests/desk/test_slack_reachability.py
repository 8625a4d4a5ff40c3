"""The Slack desk's reachability signal (the core tells a customer honestly when no desk can
answer): the last Web API call's result; after a failure, a bounded ``auth.test`` at most every
30 seconds finds out whether Slack is back. A rate limit still means Slack is there."""

from __future__ import annotations

from channels.slack_desk import PROBE_AFTER, SlackDesk
from channels.slack_desk_config import SlackDeskConfig
from core.desk import DeadLetterNotice
from core.errors import ChannelError
from tests.desk.conftest import RecordingActions, Seen, make_config
from tests.fakes.slack_api import FakeSlackAPI

NOTICE = DeadLetterNotice(id=7, bot="demo", conversation_id="conv_1", channel="whatsapp", text="hallo",
                          error="boom", attempts=3, customer_told=True)


def clocked_desk(config: SlackDeskConfig, now: list[float]) -> SlackDesk:
    async def resolve(thread: str) -> str | None:
        return None

    return SlackDesk(config, RecordingActions(), resolve, Seen(), rate_limit_retries=0, clock=lambda: now[0])


async def post_fails(desk: SlackDesk) -> None:
    try:
        await desk.dead_letter(NOTICE)  # one chat.postMessage to the agents' channel
    except ChannelError:
        return
    raise AssertionError("the post should have failed")


async def test_slack_counts_unreachable_after_a_refused_post_and_reachable_again_once_it_answers(
    slack: FakeSlackAPI,
) -> None:
    now = [1000.0]
    desk = clocked_desk(make_config(slack), now)
    await desk.start()
    try:
        assert await desk.reachable("demo")
        slack.fail_next("chat.postMessage", "channel_not_found")
        await post_fails(desk)
        calls = slack.count("auth.test")
        assert not await desk.reachable("demo")
        now[0] += PROBE_AFTER - 1
        assert not await desk.reachable("demo")
        assert slack.count("auth.test") == calls, "no probe before the interval"

        now[0] += 2
        slack.fail_next("auth.test", "invalid_auth")  # the token was revoked meanwhile
        assert not await desk.reachable("demo")
        assert slack.count("auth.test") == calls + 1
        now[0] += PROBE_AFTER + 1
        assert await desk.reachable("demo")  # the probe works: Slack is back
        await desk.dead_letter(NOTICE)
        assert await desk.reachable("demo")
    finally:
        await desk.stop()


async def test_a_rate_limit_or_one_bad_request_leaves_slack_reachable(slack: FakeSlackAPI) -> None:
    desk = clocked_desk(make_config(slack), [0.0])
    await desk.start()
    try:
        slack.rate_limit("chat.postMessage", times=1)
        await post_fails(desk)
        assert await desk.reachable("demo")
        slack.fail_next("chat.postMessage", "msg_too_long")
        await post_fails(desk)
        assert await desk.reachable("demo")
    finally:
        await desk.stop()
