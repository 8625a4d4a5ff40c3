"""Handoff through the whole farm (web chat socket → turn → SQLite → desk): triggers, relay, agents."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from core.handoff.service import AgentNotAllowed, HandoffError
from core.model import ConversationStatus
from core.store.base import OutboxItem
from tests.handoff.handoff_support import (
    Customer,
    RecordingDesk,
    conversation_of,
    csat_payload,
    events_of,
    handoff_farm,
    service,
    texts,
)
from tests.handoff.scripted_engine import ORDER_QUESTION, ScriptedEngine
from tests.support.clock import FakeClock


async def test_request_words_mid_form_hand_off_at_once_with_the_form_details(tmp_path: Path) -> None:
    engine = ScriptedEngine()
    async with handoff_farm(tmp_path, engine=engine) as (farm, desk), aiohttp.ClientSession() as http:
        customer = await Customer.connect(http, farm.url)
        await customer.say("Wo ist meine Bestellung?")
        await farm.farm.settle()
        assert any(ORDER_QUESTION["de"] in t for t in texts(await customer.received()))
        assert (await conversation_of(farm, customer)).active_form == "order_status_form"

        await customer.say("Ich will sofort mit einem Mitarbeiter sprechen")
        await farm.farm.settle()
        [notice] = texts(await customer.received())
        assert "Person" in notice and "Minuten" in notice  # honest, in the conversation's language
        conversation = await conversation_of(farm, customer)
        assert conversation.status is ConversationStatus.WAITING
        assert conversation.handoff_reason == "requested"
        assert conversation.active_form is None
        assert conversation.desk_thread == f"web:{conversation.id}"
        assert engine.handled == ["Wo ist meine Bestellung?"]  # the request never reached the form
        [summary] = desk.summaries
        assert summary.reason == "requested"
        assert summary.topic == "order_status"  # what the customer was doing with the bot
        assert summary.intent == "human_handoff"  # the message that caused the handoff
        assert summary.trigger_text == "Ich will sofort mit einem Mitarbeiter sprechen"
        assert summary.channel == "webchat"
        assert [e.data["text"] for e in summary.last_messages if e.type == "user"] == [
            "Wo ist meine Bestellung?", "Ich will sofort mit einem Mitarbeiter sprechen"]
        [handoff] = await events_of(farm, conversation.id, "handoff")
        assert handoff.data["reason"] == "requested"


@pytest.mark.parametrize("text", ["MENSCH!!!", "Kundenberaterin bitte", "can I talk to an agent?", "Mitarbieter"])
async def test_request_words_in_any_form_reach_a_person(tmp_path: Path, text: str) -> None:
    async with handoff_farm(tmp_path) as (farm, desk), aiohttp.ClientSession() as http:
        customer = await Customer.connect(http, farm.url)
        await customer.say(text)
        await farm.farm.settle()
        assert [s.reason for s in desk.summaries] == ["requested"]


async def test_handoff_button_hands_off(tmp_path: Path) -> None:
    async with handoff_farm(tmp_path) as (farm, desk), aiohttp.ClientSession() as http:
        customer = await Customer.connect(http, farm.url)
        await customer.press("/human_handoff", "Mit einem Menschen sprechen")
        await farm.farm.settle()
        assert [s.reason for s in desk.summaries] == ["requested"]


async def test_two_fallbacks_in_a_row_hand_off_but_one_does_not(tmp_path: Path) -> None:
    async with handoff_farm(tmp_path) as (farm, desk), aiohttp.ClientSession() as http:
        customer = await Customer.connect(http, farm.url)
        await customer.say("blubb")
        await customer.say("Hallo")
        await customer.say("wobbel")
        await farm.farm.settle()
        assert desk.summaries == []
        await customer.say("quatsch")
        await farm.farm.settle()
        assert [s.reason for s in desk.summaries] == ["fallback: 2 fallbacks in a row"]
        assert (await conversation_of(farm, customer)).handoff_reason == "fallback"


async def test_fallback_count_is_configurable_per_bot(tmp_path: Path) -> None:
    async with handoff_farm(tmp_path, handoff={"fallbacks_before_handoff": 3}) as (farm, desk), \
            aiohttp.ClientSession() as http:
        customer = await Customer.connect(http, farm.url)
        for text in ("blubb", "wobbel"):
            await customer.say(text)
        await farm.farm.settle()
        assert desk.summaries == []
        await customer.say("quatsch")
        await farm.farm.settle()
        assert [s.reason.split(":")[0] for s in desk.summaries] == ["fallback"]


async def test_frustration_hands_off_with_negative_sentiment(tmp_path: Path) -> None:
    async with handoff_farm(tmp_path) as (farm, desk), aiohttp.ClientSession() as http:
        customer = await Customer.connect(http, farm.url)
        await customer.say("Hallo")
        await customer.say("DAS IST DOCH SCHEISSE, IHR BOT IST VÖLLIG NUTZLOS!!!")
        await farm.farm.settle()
        [summary] = desk.summaries
        assert summary.reason.startswith("frustration")
        assert summary.sentiment is not None and summary.sentiment <= -0.7


async def test_always_human_intents_hand_off(tmp_path: Path) -> None:
    handoff = {"always_human_intents": ["cancel_contract", "complaint"]}
    async with handoff_farm(tmp_path, handoff=handoff) as (farm, desk), aiohttp.ClientSession() as http:
        customer = await Customer.connect(http, farm.url)
        await customer.say("Ich möchte meinen Vertrag kündigen")
        await farm.farm.settle()
        [summary] = desk.summaries
        assert summary.reason == "intent: cancel_contract"
        assert summary.intent == "cancel_contract"
        frames = texts(await customer.received())
        assert not any("[cancel_contract]" in t for t in frames)  # the bot does not answer it itself


async def test_intent_not_configured_as_always_human_stays_with_the_bot(tmp_path: Path) -> None:
    async with handoff_farm(tmp_path, handoff={"always_human_intents": ["complaint"]}) as (farm, desk), \
            aiohttp.ClientSession() as http:
        customer = await Customer.connect(http, farm.url)
        await customer.say("Ich möchte meinen Vertrag kündigen")
        await farm.farm.settle()
        assert desk.summaries == []


async def test_custom_action_handoff_event_hands_off_with_reason_action(tmp_path: Path) -> None:
    async with handoff_farm(tmp_path) as (farm, desk), aiohttp.ClientSession() as http:
        customer = await Customer.connect(http, farm.url)
        await customer.say("this is a special case")
        await farm.farm.settle()
        assert [s.reason for s in desk.summaries] == ["action: special case"]


async def test_while_waiting_the_bot_is_silent_and_messages_reach_the_desk_masked(tmp_path: Path) -> None:
    engine = ScriptedEngine()
    async with handoff_farm(tmp_path, engine=engine) as (farm, desk), aiohttp.ClientSession() as http:
        customer = await Customer.connect(http, farm.url)
        await customer.say("Mensch bitte")
        await farm.farm.settle()
        await customer.received()
        await customer.say("Meine Karte ist 4111 1111 1111 1111, Bestellung 12345")
        await farm.farm.settle()
        assert await customer.received() == []
        assert engine.handled == []
        [(conversation, event)] = desk.messages
        assert event.data["text"] == "Meine Karte ist •••• •••• •••• 1111, Bestellung 12345"
        assert conversation.status is ConversationStatus.WAITING
        # The card number is masked at rest too (privacy.mask_at_rest, on by default).
        users = await events_of(farm, conversation.id, "user")
        assert users[-1].data["text"] == "Meine Karte ist •••• •••• •••• 1111, Bestellung 12345"


@pytest.mark.parametrize("command", ["zurück zum Bot", "Bot", "back to the bot"])
async def test_customer_returns_to_the_bot_with_a_command(tmp_path: Path, command: str) -> None:
    async with handoff_farm(tmp_path) as (farm, desk), aiohttp.ClientSession() as http:
        customer = await Customer.connect(http, farm.url)
        await customer.say("Mitarbeiter")
        await farm.farm.settle()
        await customer.received()
        await customer.say(command)
        await farm.farm.settle()
        [reply] = texts(await customer.received())
        assert "Bot" in reply or "bot" in reply
        conversation = await conversation_of(farm, customer)
        assert conversation.status is ConversationStatus.BOT
        assert desk.details() == ["the customer went back to the bot"]
        await customer.say("Wo ist meine Bestellung?")
        await farm.farm.settle()
        assert any(ORDER_QUESTION["de"] in t for t in texts(await customer.received()))


async def test_restart_while_waiting_goes_to_the_bot(tmp_path: Path) -> None:
    engine = ScriptedEngine()
    async with handoff_farm(tmp_path, engine=engine) as (farm, desk), aiohttp.ClientSession() as http:
        customer = await Customer.connect(http, farm.url)
        await customer.say("Mitarbeiter")
        await customer.say("/restart")
        await farm.farm.settle()
        assert engine.handled == ["/restart"]
        assert (await conversation_of(farm, customer)).status is ConversationStatus.BOT
        assert "restarted" in desk.details()[-1]


async def test_asking_to_delete_data_while_waiting_reaches_the_bot(tmp_path: Path) -> None:
    engine = ScriptedEngine()
    async with handoff_farm(tmp_path, engine=engine) as (farm, desk), aiohttp.ClientSession() as http:
        customer = await Customer.connect(http, farm.url)
        await customer.say("Mitarbeiter")
        await customer.say("Bitte löschen Sie alle meine Daten")
        await farm.farm.settle()
        assert engine.handled == ["Bitte löschen Sie alle meine Daten"]
        assert desk.messages == []


async def start_handoff(farm, http, text: str = "Mitarbeiter bitte") -> tuple[Customer, str]:  # type: ignore[no-untyped-def]
    customer = await Customer.connect(http, farm.url)
    await customer.say(text)
    await farm.farm.settle()
    await customer.received()
    return customer, (await conversation_of(farm, customer)).id


async def test_agent_reply_reaches_the_customer_named_and_notes_do_not(tmp_path: Path) -> None:
    async with handoff_farm(tmp_path) as (farm, desk), aiohttp.ClientSession() as http:
        customer, conversation_id = await start_handoff(farm, http)
        handoff = service(farm)
        await handoff.claim(conversation_id, "web:anna", "Anna Schmidt")
        await handoff.internal_note(conversation_id, "web:anna", "Anna Schmidt", "Kunde ist VIP")
        await handoff.agent_reply(conversation_id, "web:anna", "Anna Schmidt", "Hallo, ich bin Anna.")
        await farm.farm.settle()
        frames = await customer.received()
        assert [(f["role"], f["author"], f["text"]) for f in frames] == [
            ("system", None, "Anna Schmidt aus unserem Team antwortet Ihnen jetzt."),
            ("agent", "Anna Schmidt", "Hallo, ich bin Anna."),
        ]
        [reply] = [e for e in await events_of(farm, conversation_id, "bot") if e.data["metadata"]["author"] == "agent"]
        assert reply.data["metadata"]["author_name"] == "Anna Schmidt"
        assert reply.data["metadata"]["outbound_id"]
        [note] = await events_of(farm, conversation_id, "note")
        assert note.data["text"] == "Kunde ist VIP"
        conversation = await farm.store.get_conversation(conversation_id)
        assert conversation is not None and conversation.assigned_agent == "web:anna"
        assert desk.details() == ["claimed by Anna Schmidt"]


async def test_reply_from_a_waiting_conversation_claims_it_and_others_cannot_reply(tmp_path: Path) -> None:
    async with handoff_farm(tmp_path) as (farm, _desk), aiohttp.ClientSession() as http:
        _customer, conversation_id = await start_handoff(farm, http)
        handoff = service(farm)
        await handoff.agent_reply(conversation_id, "web:ben", "Ben Wolf", "Ich bin da.")
        conversation = await farm.store.get_conversation(conversation_id)
        assert conversation is not None and conversation.status is ConversationStatus.AGENT
        with pytest.raises(HandoffError):
            await handoff.agent_reply(conversation_id, "web:anna", "Anna Schmidt", "Ich auch!")
        with pytest.raises(HandoffError):
            await handoff.claim(conversation_id, "web:anna", "Anna Schmidt")


async def test_agents_of_other_bots_and_unknown_agents_are_rejected(tmp_path: Path) -> None:
    async with handoff_farm(tmp_path) as (farm, desk), aiohttp.ClientSession() as http:
        customer, conversation_id = await start_handoff(farm, http)
        handoff = service(farm)
        for agent in ("web:carl", "web:nobody", "mallory", "slack:U123"):  # no Slack desk configured
            with pytest.raises(AgentNotAllowed):
                await handoff.claim(conversation_id, agent, "X")
            with pytest.raises(AgentNotAllowed):
                await handoff.agent_reply(conversation_id, agent, "X", "hi")
            with pytest.raises(AgentNotAllowed):
                await handoff.internal_note(conversation_id, agent, "X", "hi")
            with pytest.raises(AgentNotAllowed):
                await handoff.close(conversation_id, agent, "X")
        await farm.farm.settle()
        assert await customer.received() == []
        conversation = await farm.store.get_conversation(conversation_id)
        assert conversation is not None and conversation.status is ConversationStatus.WAITING
        assert desk.statuses == []


async def test_close_asks_for_csat_and_the_answer_is_stored_and_shown(tmp_path: Path) -> None:
    async with handoff_farm(tmp_path) as (farm, desk), aiohttp.ClientSession() as http:
        customer, conversation_id = await start_handoff(farm, http)
        handoff = service(farm)
        await handoff.claim(conversation_id, "web:anna", "Anna Schmidt")
        await handoff.close(conversation_id, "web:anna", "Anna Schmidt")
        await farm.farm.settle()
        frames = await customer.received()
        question = frames[-1]
        assert [b["title"] for b in question["buttons"]] == ["1", "2", "3", "4", "5"]
        assert "zufrieden" in question["text"]
        await customer.press(csat_payload(4), "4")
        await farm.farm.settle()
        assert texts(await customer.received()) == ["Danke für Ihre Bewertung!"]
        [csat] = await events_of(farm, conversation_id, "csat")
        assert csat.data["score"] == 4 and csat.data["agent_id"] == "web:anna"
        assert desk.details()[-1] == "customer rating (CSAT): 4/5"
        conversation = await farm.store.get_conversation(conversation_id)
        assert conversation is not None and conversation.status is ConversationStatus.CLOSED
        # The bot has resumed: a later "4" is not another rating.
        await customer.say("Wo ist meine Bestellung?")
        await farm.farm.settle()
        assert any(ORDER_QUESTION["de"] in t for t in texts(await customer.received()))


async def test_typed_rating_counts_and_other_answers_end_the_question(tmp_path: Path) -> None:
    async with handoff_farm(tmp_path) as (farm, _desk), aiohttp.ClientSession() as http:
        customer, conversation_id = await start_handoff(farm, http)
        handoff = service(farm)
        await handoff.close(conversation_id, "web:anna", "Anna Schmidt")
        await customer.say("5")
        await farm.farm.settle()
        assert [e.data["score"] for e in await events_of(farm, conversation_id, "csat")] == [5]
        await customer.say("3")
        await farm.farm.settle()
        assert len(await events_of(farm, conversation_id, "csat")) == 1


async def test_back_to_bot_by_the_agent_resumes_the_bot(tmp_path: Path) -> None:
    engine = ScriptedEngine()
    async with handoff_farm(tmp_path, engine=engine) as (farm, desk), aiohttp.ClientSession() as http:
        customer, conversation_id = await start_handoff(farm, http)
        await service(farm).back_to_bot(conversation_id, "web:anna", "Anna Schmidt")
        await farm.farm.settle()
        assert "Anna Schmidt" in texts(await customer.received())[0]
        await customer.say("Hallo")
        await farm.farm.settle()
        assert texts(await customer.received()) == ["[greet]"]
        assert desk.details() == ["handed back to the bot by Anna Schmidt"]


async def test_returning_customer_gets_the_agent_who_helped_last(tmp_path: Path) -> None:
    async with handoff_farm(tmp_path) as (farm, desk), aiohttp.ClientSession() as http:
        customer, conversation_id = await start_handoff(farm, http)
        handoff = service(farm)
        assert desk.summaries[0].previous_agent is None
        await handoff.claim(conversation_id, "web:anna", "Anna Schmidt")
        assert (await handoff.view(conversation_id)).summary.previous_agent is None  # Anna is current, not previous
        await handoff.close(conversation_id, "web:anna", "Anna Schmidt")
        await customer.say("Hallo")
        await customer.say("Mitarbeiter bitte")
        await farm.farm.settle()
        assert [s.previous_agent for s in desk.summaries] == [None, "web:anna"]
        assert (await handoff.view(conversation_id)).summary.previous_agent == "web:anna"


async def test_outside_business_hours_the_customer_learns_when_people_are_back(tmp_path: Path) -> None:
    hours = {"business_hours": {d: "08:00-18:00" for d in ("mon", "tue", "wed", "thu", "fri")},
             "timezone": "Europe/Berlin"}
    async with handoff_farm(tmp_path, handoff=hours) as (farm, desk), aiohttp.ClientSession() as http:
        service(farm).clock = lambda: datetime(2026, 11, 28, 15, 0, tzinfo=UTC)  # Saturday
        customer = await Customer.connect(http, farm.url)
        await customer.say("Wo ist meine Bestellung?")
        await customer.say("Mensch!")
        await farm.farm.settle()
        notice = texts(await customer.received())[-1]
        assert "nicht erreichbar" in notice and "am Montag um 08:00 Uhr" in notice
        [summary] = desk.summaries  # queued with everything captured
        assert summary.reason == "requested" and summary.topic == "order_status"
        conversation = await conversation_of(farm, customer)
        assert conversation.status is ConversationStatus.WAITING
        [handoff] = await events_of(farm, conversation.id, "handoff")
        assert handoff.data["open"] is False and handoff.data["back_at"].startswith("2026-11-30T08:00")


async def test_english_conversation_is_told_in_english(tmp_path: Path) -> None:
    async with handoff_farm(tmp_path) as (farm, _desk), aiohttp.ClientSession() as http:
        customer = await Customer.connect(http, farm.url)
        await customer.say("Hallo")
        await farm.farm.settle()
        conversation = await conversation_of(farm, customer)
        await farm.store.save_conversation(conversation.evolve(language="en"))
        await customer.received()
        await customer.say("human please")
        await farm.farm.settle()
        [notice] = texts(await customer.received())
        assert "passing you to a person" in notice and "minutes" in notice


async def test_unclaimed_handoff_is_repinged_and_the_customer_offered_a_callback(tmp_path: Path) -> None:
    clock = FakeClock()
    async with handoff_farm(tmp_path, handoff={"repings_after_seconds": 60.0}, clock=clock) as (farm, desk), \
            aiohttp.ClientSession() as http:
        customer, conversation_id = await start_handoff(farm, http)
        clock.advance(59)
        assert await service(farm).reping_due() == 0
        assert desk.statuses == []  # not before the configured time
        clock.advance(2)
        assert await service(farm).reping_due() == 1
        assert "re-ping 1" in desk.details()[0]
        await farm.farm.settle()
        [offer] = await customer.received()
        assert [b["payload"] for b in offer["buttons"]] == ["/handoff_callback", "/handoff_email", "/handoff_wait"]
        await customer.press("/handoff_callback", offer["buttons"][0]["title"])
        await farm.farm.settle()
        assert "zurück" in texts(await customer.received())[0]
        assert "call back" in desk.details()[-1]
        # Claimed conversations are not re-pinged any more.
        await service(farm).claim(conversation_id, "web:anna", "Anna Schmidt")
        pings = len([d for d in desk.details() if "re-ping" in d])
        clock.advance(120)
        assert await service(farm).reping_due() == 0
        assert len([d for d in desk.details() if "re-ping" in d]) == pings


async def test_closed_whatsapp_window_and_failed_delivery_are_told_to_the_agent(tmp_path: Path) -> None:
    async with handoff_farm(tmp_path) as (farm, desk), aiohttp.ClientSession() as http:
        _customer, conversation_id = await start_handoff(farm, http)
        handoff = service(farm)
        await handoff.claim(conversation_id, "web:anna", "Anna Schmidt")
        [reply] = [e for e in await events_of(farm, conversation_id, "bot")][-1:]
        item = await farm.store.get_outbox_item(reply.data["metadata"]["outbound_id"])
        assert isinstance(item, OutboxItem)
        await handoff.service_window_closed(item)
        await handoff.delivery_failed(item, "RecipientUnavailable: blocked")
        assert "template" in desk.details()[-2]
        assert "could not be delivered" in desk.details()[-1]
        [delivery] = [e for e in await events_of(farm, conversation_id, "delivery") if e.data["status"] == "template"]
        assert delivery.data["outbound_id"] == item.outbound.id


def test_recording_desk_is_a_desk() -> None:
    from core.desk import Desk

    desk: Desk = RecordingDesk()
    assert desk.name == "recording"


async def test_handoffs_queued_outside_business_hours_are_repinged_only_once_people_are_back(tmp_path: Path) -> None:
    settings = {"business_hours": {d: "08:00-18:00" for d in ("mon", "tue", "wed", "thu", "fri")},
                "timezone": "UTC", "repings_after_seconds": 60}
    async with handoff_farm(tmp_path, handoff=settings) as (farm, desk), aiohttp.ClientSession() as http:
        handoff = service(farm)
        now = [datetime(2026, 11, 28, 15, 0, tzinfo=UTC)]  # Saturday afternoon
        handoff.clock = lambda: now[0]
        await start_handoff(farm, http)
        now[0] = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)  # a day later, still the weekend
        assert await handoff.reping_due() == 0
        now[0] = datetime(2026, 11, 30, 8, 0, 30, tzinfo=UTC)  # Monday, 30 s after opening
        assert await handoff.reping_due() == 0
        now[0] = datetime(2026, 11, 30, 8, 1, 1, tzinfo=UTC)
        assert await handoff.reping_due() == 1
        assert await handoff.reping_due() == 0  # not again before another interval
        assert "re-ping 1" in desk.details()[-1]
