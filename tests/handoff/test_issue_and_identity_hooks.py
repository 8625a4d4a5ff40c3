"""The handoff hooks' judgement of one issue and of identity questions.

`issue_texts` is pure over transcript events; the rest goes through the web chat socket
of a farm with a scripted engine (its NLU knows no ``bot_challenge``).
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp

from core.engine import Reply, Understanding
from core.handoff.hooks import issue_texts
from core.model import Conversation, ConversationStatus, Event
from tests.handoff.handoff_support import (
    PASSWORDS,
    Customer,
    conversation_of,
    events_of,
    handoff_farm,
    service,
    texts,
)
from tests.handoff.scripted_engine import ScriptedEngine


def user(text: str, payload: str | None = None) -> Event:
    data: dict[str, Any] = {"text": text, "parse_data": {"intent": {"name": "x"}}}
    if payload:
        data["payload"] = payload
    return Event("user", data)


def bot(text: str) -> Event:
    return Event("bot", {"text": text})


ACTION_SESSION_START = Event("action", {"name": "action_session_start"})
SESSION_STARTED = Event("session_started", {})


def test_issue_texts_are_the_recent_typed_messages_oldest_first() -> None:
    events = [user("a"), bot("1"), user("b"), bot("2"), user("c")]
    assert issue_texts(events, 5) == ["a", "b", "c"]
    assert issue_texts(events, 2) == ["b", "c"]


def test_a_handoff_a_status_change_a_rating_or_a_restart_ends_the_issue() -> None:
    for boundary in (Event("handoff", {"reason": "requested"}), Event("status", {"status": "closed"}),
                     Event("csat", {"score": 5}), Event("restart", {})):
        events = [user("Wie sind eure Öffnungszeiten?"), boundary, user("5"), bot("Danke")]
        assert issue_texts(events, 5) == ["5"], boundary.type


def test_a_new_session_ends_the_issue_but_keeps_the_message_that_opened_it() -> None:
    events = [user("Wie sind eure Öffnungszeiten?"), bot("8-18"),
              user("Hallo"), ACTION_SESSION_START, SESSION_STARTED, bot("Hi"), user("Preise?")]
    assert issue_texts(events, 5) == ["Hallo", "Preise?"]


def test_button_presses_are_not_typed_messages() -> None:
    events = [user("Ja", payload="/affirm"), user("/affirm"), user("Wie sind eure Öffnungszeiten?")]
    assert issue_texts(events, 5) == ["Wie sind eure Öffnungszeiten?"]


class EngineWithoutIdentityAnswer(ScriptedEngine):
    """A bot whose domain has no ``utter_iamabot`` (rendering it gives nothing, as in Rasa).

    Its NLU tells English from German by a few words, as a language detector would.
    """

    def understand(self, text: str) -> Understanding:
        understood = super().understand(text)
        english = re.search(r"\b(are|you|is|the)\b", text.lower()) is not None
        return replace(understood, language="en" if english else "de")

    def render(self, response: str, conversation: Conversation, channel: str, **variables: Any) -> list[Reply]:
        return []


async def test_a_bot_without_an_identity_answer_still_answers_honestly_and_keeps_the_customer(
    tmp_path: Path,
) -> None:
    engine = EngineWithoutIdentityAnswer()
    async with handoff_farm(tmp_path, engine=engine) as (farm, desk), aiohttp.ClientSession() as http:
        customer = await Customer.connect(http, farm.url)
        await customer.say("Bist du ein Mensch?")
        await farm.farm.settle()
        [answer] = texts(await customer.received())
        assert "automatischer Assistent" in answer and "„Mensch“" in answer
        await customer.say("Are you a real person?")
        await farm.farm.settle()
        [answer] = texts(await customer.received())
        assert "automated assistant" in answer and '"human"' in answer
        conversation = await conversation_of(farm, customer)
        assert conversation.status is ConversationStatus.BOT and desk.summaries == []
        assert await events_of(farm, conversation.id, "handoff") == []
        assert engine.handled == []  # the engine's fallback never ran (no fallback streak either)
        user_events = await events_of(farm, conversation.id, "user")
        assert [e.data["parse_data"]["intent"]["name"] for e in user_events] == ["bot_challenge"] * 2


async def test_pressing_the_same_button_again_is_not_a_repeated_question(tmp_path: Path) -> None:
    async with handoff_farm(tmp_path) as (farm, desk), aiohttp.ClientSession() as http:
        customer = await Customer.connect(http, farm.url)
        for _ in range(3):
            await customer.press("/order_status", "Wo ist meine Bestellung, bitte?")
            await farm.farm.settle()
            assert await customer.received()
        conversation = await conversation_of(farm, customer)
        assert conversation.status is ConversationStatus.BOT and desk.summaries == []


async def test_an_identity_question_instead_of_a_rating_gets_the_answer_and_skips_the_rating(
    tmp_path: Path,
) -> None:
    engine = EngineWithoutIdentityAnswer()
    async with handoff_farm(tmp_path, engine=engine) as (farm, desk), aiohttp.ClientSession() as http, \
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as agent:
        customer = await Customer.connect(http, farm.url)
        await customer.say("Ich will einen Menschen sprechen")
        await farm.farm.settle()
        conversation = await conversation_of(farm, customer)
        for path, body in (("login", {"agent": "anna", "password": PASSWORDS["anna"]}),
                           (f"conversations/{conversation.id}/claim", None),
                           (f"conversations/{conversation.id}/close", None)):
            async with agent.post(f"{farm.url}/desk/api/{path}", json=body or {},
                                  headers={"X-Desk-Request": "1"}) as response:
                assert response.status == 200, await response.text()
        await farm.farm.settle()
        assert any("zufrieden" in t for t in texts(await customer.received()))
        assert await service(farm).csat_pending(conversation.id) is not None

        await customer.say("Bist du ein Mensch?")
        await farm.farm.settle()
        [answer] = texts(await customer.received())
        assert "automatischer Assistent" in answer
        assert await service(farm).csat_pending(conversation.id) is None
        assert len(desk.summaries) == 1
