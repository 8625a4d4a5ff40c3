"""Dialogue on the demo bot: rules, forms, fallback, handoff, restart, sessions, event shapes."""

from __future__ import annotations

from datetime import timedelta

from core.dialogue.engine import RasaEngine
from core.dialogue.testing import Conversator, actions_of
from core.model import Event


async def test_german_greeting_and_opening_hours_are_answered_in_german(demo_engine: RasaEngine) -> None:
    talk = Conversator(demo_engine, "de-1")
    hello = await talk.say("Hallo")
    assert hello.replies[0].text.startswith("Hallo! Ich bin der digitale Assistent")
    hours = await talk.say("Wie sind eure Öffnungszeiten?")
    assert actions_of(hours) == ["utter_opening_hours"]
    assert "Montag bis Freitag" in hours.replies[0].text
    assert hours.conversation.language == "de" and hours.conversation.slots["language"] == "de"


async def test_english_message_gets_english_answer(demo_engine: RasaEngine) -> None:
    out = await Conversator(demo_engine, "en-1").say("What are your opening hours?")
    assert "Monday to Friday" in out.replies[0].text and out.understanding.language == "en"


async def test_events_start_with_rasa_user_event_and_end_with_listen(demo_engine: RasaEngine) -> None:
    out = await Conversator(demo_engine, "ev-1").say("Hello")
    user = out.events[0]
    assert user.type == "user" and user.data["text"] == "Hello" and user.data["input_channel"] == "test"
    parse = user.data["parse_data"]
    assert parse["intent"]["name"] == "greet" and parse["intent_ranking"][0]["name"] == "greet"
    assert user.data["message_id"] == "test:1"
    kinds = [(e.type, e.data.get("name")) for e in out.events]
    assert ("action", "action_session_start") in kinds and ("session_started", None) in kinds
    assert ("action", "utter_greet") in kinds and kinds[-1] == ("action", "action_listen")
    bot = next(e for e in out.events if e.type == "bot")
    assert bot.data["metadata"] == {"utter_action": "utter_greet"}


async def test_order_form_re_asks_after_failed_validation_then_looks_up(demo_engine: RasaEngine) -> None:
    talk = Conversator(demo_engine, "form-1")
    first = await talk.say("Where is my order?")
    assert actions_of(first) == ["order_status_form"]
    assert first.conversation.active_form == "order_status_form"
    assert "order number" in first.replies[0].text
    assert any(e.type == "active_loop" and e.data["name"] == "order_status_form" for e in first.events)
    bad = await talk.say("it is 12345")
    assert actions_of(bad) == ["order_status_form"]
    assert [r.response for r in bad.replies] == ["utter_invalid_order_number", "utter_ask_order_number"]
    assert bad.conversation.slots["order_number"] is None and bad.conversation.active_form == "order_status_form"
    good = await talk.say("hw 654321")
    assert actions_of(good) == ["order_status_form", "action_lookup_order"]
    assert "Order HW-654321 (Managed Server M)" in good.replies[-1].text
    assert good.conversation.active_form is None and good.conversation.slots["order_number"] is None


async def test_order_number_in_first_message_skips_the_question(demo_engine: RasaEngine) -> None:
    out = await Conversator(demo_engine, "form-2").say("Wo ist meine Bestellung HW-999999?")
    assert actions_of(out) == ["order_status_form", "action_lookup_order"]
    assert "HW-999999" in out.replies[-1].text and "finde ich leider nichts" in out.replies[-1].text


async def test_bot_question_inside_form_is_answered_then_form_resumes(demo_engine: RasaEngine) -> None:
    talk = Conversator(demo_engine, "form-3")
    await talk.say("Where is my order?")
    out = await talk.say("are you a bot?")
    assert actions_of(out) == ["utter_iamabot", "order_status_form"]
    assert out.replies[0].text.startswith("I'm an automated assistant")
    assert out.conversation.active_form == "order_status_form"


async def test_asking_for_a_human_inside_form_hands_off_and_ends_form(demo_engine: RasaEngine) -> None:
    talk = Conversator(demo_engine, "form-4")
    await talk.say("Wo ist meine Bestellung?")
    out = await talk.say("Ich möchte mit einem Menschen sprechen")
    assert out.handoff is not None and out.handoff.reason == "requested"
    assert out.conversation.active_form is None
    assert any(e.type == "action_execution_rejected" for e in out.events)


async def test_two_stage_fallback_asks_to_rephrase_then_offers_a_person(demo_engine: RasaEngine) -> None:
    talk = Conversator(demo_engine, "fb-1")
    await talk.say("Hello")
    first = await talk.say("zorp blivet quanx")
    assert actions_of(first) == ["action_two_stage_fallback"] and first.handoff is None
    assert first.replies[0].response == "utter_ask_rephrase"
    second = await talk.say("florb wibble")
    assert second.replies[0].response == "utter_offer_human" and second.handoff is None
    accepted = await talk.say(payload="/affirm")
    assert accepted.handoff is not None and accepted.handoff.reason == "fallback"
    assert accepted.conversation.active_form is None


async def test_two_stage_fallback_exhausted_hands_off(demo_engine: RasaEngine) -> None:
    talk = Conversator(demo_engine, "fb-2")
    for text in ("zorp blivet", "florb wibble"):
        await talk.say(text)
    out = await talk.say("qux quux")
    assert out.handoff is not None and out.handoff.reason == "fallback"
    assert out.replies[-1].response == "utter_default"


async def test_rephrasing_after_fallback_continues_normally(demo_engine: RasaEngine) -> None:
    talk = Conversator(demo_engine, "fb-3")
    await talk.say("zorp blivet quanx")
    out = await talk.say("How much does hosting cost?")
    assert actions_of(out) == ["action_two_stage_fallback", "utter_pricing"]
    assert out.conversation.active_form is None and out.handoff is None


async def test_delete_my_data_needs_confirmation(demo_engine: RasaEngine) -> None:
    talk = Conversator(demo_engine, "del-1")
    ask = await talk.say("Bitte löscht alle meine Daten")
    assert [b.payload for b in ask.replies[0].buttons] == ["/affirm", "/deny"]
    assert "system_action" not in ask.meta
    confirmed = await talk.say("Ja, löschen", payload="/affirm")
    assert confirmed.meta == {"system_action": "forget_contact"}


async def test_button_payload_with_entities_is_read_as_rasa_does(demo_engine: RasaEngine) -> None:
    out = await Conversator(demo_engine, "pay-1").say(payload='/order_status{"order_number": "HW-123456"}')
    assert out.understanding.intent == "order_status" and out.understanding.confidence == 1.0
    assert actions_of(out) == ["order_status_form", "action_lookup_order"]


async def test_restart_resets_slots_and_form(demo_engine: RasaEngine) -> None:
    talk = Conversator(demo_engine, "rs-1")
    await talk.say("Where is my order?")
    out = await talk.say(payload="/restart")
    assert actions_of(out) == ["action_restart"]
    assert any(e.type == "restart" for e in out.events)
    assert out.conversation.active_form is None and out.conversation.slots.get("requested_slot") is None


async def test_session_expires_after_an_hour_and_carries_slots_over(demo_engine: RasaEngine) -> None:
    talk = Conversator(demo_engine, "sess-1")
    await talk.say("Wo ist meine Bestellung?")
    later = await talk.say("Hallo", after=timedelta(hours=2))
    kinds = [e.type for e in later.events]
    assert kinds[0] == "user" and "session_started" in kinds
    assert actions_of(later) == ["utter_greet"]  # the old form does not survive the new session
    assert later.conversation.active_form is None and later.conversation.slots["language"] == "de"
    soon = await talk.say("Danke", after=timedelta(minutes=5))
    assert "session_started" not in [e.type for e in soon.events]


async def test_own_event_types_in_history_are_ignored(demo_engine: RasaEngine) -> None:
    talk = Conversator(demo_engine, "own-1")
    await talk.say("Hello")
    talk.history.extend([Event("handoff", {"reason": "requested"}), Event("note", {"text": "x"}), Event("csat", {"score": 5})])
    out = await talk.say("What are your prices?")
    assert actions_of(out) == ["utter_pricing"]


def test_render_uses_conversation_language(demo_engine: RasaEngine) -> None:
    from core.model import Conversation

    conversation = Conversation(id="c", bot="demo", contact_id="k", language="de")
    replies = demo_engine.render("utter_greet", conversation, "webchat")
    assert replies[0].text.startswith("Hallo!")
    assert demo_engine.render("utter_nonexistent", conversation, "webchat") == []


def test_understand_reports_intent_and_language(demo_engine: RasaEngine) -> None:
    result = demo_engine.understand("Meine Webseite ist nicht erreichbar")
    assert (result.intent, result.language) == ("server_down", "de")


async def test_form_continues_when_its_activation_is_older_than_the_history_window(
    demo_engine: RasaEngine,
) -> None:
    talk = Conversator(demo_engine, "window-1")
    await talk.say("Hallo")
    await talk.say("Wo ist meine Bestellung?")
    assert talk.conversation.active_form == "order_status_form"
    # The turn runner passes only a window of the transcript; here it starts after the
    # form was activated. The conversation record still says the form is active.
    talk.history = talk.history[-3:]
    assert not any(e.type == "active_loop" for e in talk.history)
    out = await talk.say("it is 12345")  # only the active form makes this an (invalid) order number
    assert actions_of(out) == ["order_status_form"]
    assert [r.response for r in out.replies] == ["utter_invalid_order_number", "utter_ask_order_number"]


async def test_session_start_message_only_starts_a_session(demo_engine: RasaEngine) -> None:
    talk = Conversator(demo_engine, "ss-1")
    await talk.say("Hallo")
    out = await talk.say(payload="/session_start")
    assert [e.data["name"] for e in out.events if e.type == "action"] == ["action_session_start", "action_listen"]
    assert out.replies == () and "session_started" in [e.type for e in out.events]
    after = await talk.say("Wie sind eure Öffnungszeiten?")
    assert actions_of(after) == ["utter_opening_hours"]


async def test_rephrased_message_after_fallback_is_answered_as_if_the_fallback_never_happened(demo_engine: RasaEngine) -> None:
    talk = Conversator(demo_engine, "ss-2")
    await talk.say("Hallo")
    await talk.say(payload="/nlu_fallback")
    out = await talk.say("Wo ist meine Bestellung?")
    assert actions_of(out) == ["action_two_stage_fallback", "order_status_form"]
    assert out.conversation.active_form == "order_status_form"
