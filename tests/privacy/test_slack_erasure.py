"""Forget and retention reach the copies in Slack: card and thread deleted or blanked, through
the outbox (retried while Slack is down), audited with counts; the CLI reports and shows status.

A real farm with the Slack desk in Socket Mode against the local fake Slack API, a web chat
customer over the web socket, agents acting through Slack events and buttons.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from core.engine import TurnInput, TurnOutput
from core.model import ConversationStatus
from core.privacy.service import PrivacyService
from tests.fakes.slack_api import (
    AGENT,
    AGENTS_CHANNEL,
    FakeSlackAPI,
    block_actions_payload,
    event_callback,
)
from tests.handoff.handoff_support import (
    Customer,
    conversation_of,
    desk_config,
    handoff_farm,
    service,
)
from tests.handoff.scripted_engine import ScriptedEngine
from tests.support.farm import RunningFarm
from tests.support.wait import eventually

NAME = "Jana Kowalski"
SAID = ("Mitarbeiter bitte", "Meine Rechnung 2024-7781 ist doppelt abgebucht worden",
        "Bitte ruft mich an, Wohnort Leipzig")


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    await eventually(check, timeout=timeout)


def slack_desk(slack: FakeSlackAPI, **extra: Any) -> dict[str, Any]:
    return {**desk_config(), "slack": {"enabled": True, "bot_token": slack.bot_token, "app_token": slack.app_token,
                                       "channel": AGENTS_CHANNEL, "agents": [AGENT], "api_base": slack.url,
                                       **extra}}


class PoisonEngine(ScriptedEngine):
    """The scripted engine, except that "poison" yields a slot value the store cannot encode."""

    async def handle(self, turn: TurnInput) -> TurnOutput:
        output = await super().handle(turn)
        if "poison" in turn.message.text:
            return replace(output, conversation=output.conversation.evolve(slots={"quote": Decimal("9.99")}))
        return output


@contextlib.asynccontextmanager
async def slack_farm(tmp_path: Path, *, admin: bool) -> AsyncIterator[tuple[FakeSlackAPI, RunningFarm,
                                                                           aiohttp.ClientSession]]:
    async with FakeSlackAPI() as slack:
        extra = {"erasure_token": slack.admin_token} if admin else {}
        async with handoff_farm(tmp_path, desk=slack_desk(slack, **extra), engine=PoisonEngine()) as (farm, _), \
                aiohttp.ClientSession() as http:
            yield slack, farm, http


def everything_slack_holds(slack: FakeSlackAPI) -> str:
    return json.dumps(slack.messages, ensure_ascii=False)


async def handed_off_with_thread(farm: RunningFarm, slack: FakeSlackAPI, http: aiohttp.ClientSession) -> tuple[str, str]:
    """A customer with a profile name asks for a person, writes into the thread, Anna claims and
    answers in Slack. Returns (contact id, card ts)."""
    handoff = service(farm)
    handoff.desks = [d for d in handoff.desks if d.name != "recording"]  # only the real desks hold copies
    customer = await Customer.connect(http, farm.url)
    await customer.say("Hallo")
    await farm.farm.settle()
    conversation = await conversation_of(farm, customer)
    contact = await farm.store.get_contact(conversation.contact_id)
    assert contact is not None
    await farm.store.save_contact(replace(contact, display_name=NAME))
    for text in SAID:
        await customer.say(text)
        await farm.farm.settle()
    conversation = await conversation_of(farm, customer)
    card = conversation.desk_thread
    assert card is not None
    await slack.wait_for_ack(await slack.push_action(block_actions_payload("claim", conversation.id, message_ts=card)))

    async def claimed() -> bool:
        current = await farm.store.get_conversation(conversation.id)
        return current is not None and current.status is ConversationStatus.AGENT

    await wait_until(claimed)
    await slack.wait_for_ack(await slack.push_event(event_callback(
        slack.agent_says(f"Hallo {NAME.split()[0]}, ich sehe mir die Rechnung an.", thread_ts=card))))

    async def replied() -> bool:
        return any(e.type == "bot" and (e.data.get("metadata") or {}).get("author") == "agent"
                   for e in await farm.store.transcript(conversation.id))

    await wait_until(replied)
    await farm.farm.settle()
    held = everything_slack_holds(slack)
    assert NAME in held and "doppelt abgebucht" in held and "Leipzig" in held  # the copies exist
    return conversation.contact_id, card


async def test_forget_deletes_the_card_and_the_thread_in_slack_and_audits_the_counts(tmp_path: Path) -> None:
    async with slack_farm(tmp_path, admin=True) as (slack, farm, http):
            contact_id, card = await handed_off_with_thread(farm, slack, http)
            privacy = farm.farm.services["privacy"]
            assert isinstance(privacy, PrivacyService)
            exported = await privacy.export(contact_id, actor="admin:test")  # DSAR: where copies went
            assert [(t["desk"], t["thread"], t["status"]) for t in exported["copies"]["desk_threads"]] == [
                ("slack", card, "held")]
            report = await privacy.forget(contact_id, actor="admin:test")
            assert [(j.desk, j.thread) for j in report.jobs] == [("slack", card)]

            async def erased() -> bool:
                return all(j.state == "sent" for j in await privacy.erasure_status(contact_id))

            await farm.farm.settle()
            await wait_until(erased)
            held = everything_slack_holds(slack)
            for secret in (NAME, "Jana", "Rechnung", "doppelt abgebucht", "Leipzig", "Mitarbeiter"):
                assert secret not in held, secret
            assert slack.messages.get(AGENTS_CHANNEL, {}) == {}  # nothing left, not even a tombstone
            deleted = {ts for _, ts in slack.deleted}
            assert card in deleted
            agent_reply_deletes = [c for c in slack.calls("chat.delete") if c.token == slack.admin_token]
            assert len(agent_reply_deletes) == 1  # the bot token may not delete Anna's reply: the admin token did
            [status] = await privacy.erasure_status(contact_id)
            assert status.count is not None and status.count.deleted >= 5 and status.count.left == 0
            audit = await farm.store.audit_log(bot="demo", limit=50)
            [erasure] = [a for a in audit if a.action == "erasure"]
            assert erasure.detail["thread"] == card and erasure.detail["deleted"] == status.count.deleted
            [forget] = [a for a in audit if a.action == "forget"]
            assert forget.detail["desk_copies"] == [{"desk": "slack", "thread": card, "job": status.id}]


async def test_without_an_admin_token_agents_replies_are_blanked_where_allowed_or_reported_left(
        tmp_path: Path) -> None:
    async with slack_farm(tmp_path, admin=False) as (slack, farm, http):
            contact_id, _ = await handed_off_with_thread(farm, slack, http)
            privacy = farm.farm.services["privacy"]
            await privacy.forget(contact_id, actor="admin:test")

            async def erased() -> bool:
                return all(j.state == "sent" for j in await privacy.erasure_status(contact_id))

            await wait_until(erased)
            [status] = await privacy.erasure_status(contact_id)
            assert status.count is not None and status.count.left == 1  # Anna's own reply: Slack refuses the bot
            assert {c.params.get("ts") for c in slack.calls("chat.update") if c.status == 200} <= set(
                slack.messages.get(AGENTS_CHANNEL, {}))
            held = everything_slack_holds(slack)
            for secret in ("doppelt abgebucht", "Leipzig", "Mitarbeiter", "Kowalski"):  # what the customer said
                assert secret not in held, secret
            assert [m["user"] for m in slack.messages[AGENTS_CHANNEL].values() if m.get("subtype") != "tombstone"] == [
                AGENT]


async def _cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "switchboard"), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **(env or {})})
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode()


async def test_forget_while_slack_is_down_stays_pending_and_completes_after_it_recovers(tmp_path: Path) -> None:
    async with slack_farm(tmp_path, admin=True) as (slack, farm, http):
            contact_id, card = await handed_off_with_thread(farm, slack, http)
            slack.down = True
            code, out = await _cli("forget", "--contact", contact_id, "--yes", "--config", str(farm.config_path))
            assert code == 0, out
            assert f"forgot {contact_id}" in out
            assert f"slack thread {card}: pending" in out and "service_unavailable" in out
            code, out = await _cli("forget", "--status", "--contact", contact_id, "--config", str(farm.config_path))
            assert code == 0 and "0 erased, 1 pending, 0 failed" in out, out
            assert NAME in everything_slack_holds(slack)

            downtime_calls = len(slack.calls())
            await asyncio.sleep(0)  # the farm keeps retrying meanwhile (backoff from the delivery config)

            async def retried() -> bool:
                return len(slack.calls()) > downtime_calls + 1

            await wait_until(retried)
            slack.down = False

            async def erased() -> bool:
                status = await farm.farm.services["privacy"].erasure_status(contact_id)
                return all(j.state == "sent" for j in status)

            await wait_until(erased, timeout=20)
            assert NAME not in everything_slack_holds(slack) and "Leipzig" not in everything_slack_holds(slack)
            code, out = await _cli("forget", "--status", "--contact", contact_id, "--config", str(farm.config_path))
            assert "1 erased, 0 pending, 0 failed" in out and f"slack thread {card}: erased" in out, out
            code, out = await _cli("export", "--contact", contact_id, "--config", str(farm.config_path))
            [job] = json.loads(out[out.index("{"):out.rindex("}") + 1])["erasure"]
            assert (job["desk"], job["thread"], job["status"]) == ("slack", card, "erased")
            assert job["attempts"] >= 2 and job["counts"]["left"] == 0


async def test_retention_purge_erases_the_slack_threads_of_purged_handoffs(tmp_path: Path) -> None:
    async with slack_farm(tmp_path, admin=True) as (slack, farm, http):
        await handed_off_with_thread(farm, slack, http)
        privacy = farm.farm.services["privacy"]
        assert await privacy.purge("demo", 0) > 0  # retention 0 days: everything so far is older

        async def erased() -> bool:
            status = await privacy.erasure_status("purge:demo")
            return bool(status) and all(j.state == "sent" for j in status)

        await wait_until(erased)
        assert slack.messages.get(AGENTS_CHANNEL, {}) == {}
        [purge] = [a for a in await farm.store.audit_log(bot="demo")
                   if a.action == "purge" and a.detail["retention_days"] == 0]  # not the scheduler's own run
        assert purge.detail["desk_copies"] == 1


async def test_a_dead_letter_posted_in_slack_is_erased_with_the_contact(tmp_path: Path) -> None:
    async with slack_farm(tmp_path, admin=False) as (slack, farm, http):
        farm.farm.turns.config = farm.config.turns.model_copy(  # quick retries for the test
            update={"max_attempts": 2, "backoff_initial": 0.05, "backoff_max": 0.1})
        customer = await Customer.connect(http, farm.url)
        await customer.say("poison, meine Nummer ist 0341 12345678")

        async def posted() -> bool:
            return any("could not be processed" in m.get("text", "") for m in slack.posted(AGENTS_CHANNEL))

        await wait_until(posted)
        contact_id = (await conversation_of(farm, customer)).contact_id
        privacy = farm.farm.services["privacy"]
        report = await privacy.forget(contact_id, actor="admin:test")
        assert [j.desk for j in report.jobs] == ["slack"]

        async def erased() -> bool:
            return all(j.state == "sent" for j in await privacy.erasure_status(contact_id))

        await wait_until(erased)
        assert not any("could not be processed" in m.get("text", "") for m in slack.posted(AGENTS_CHANNEL))
