"""The handoff story end to end with the real demo bot (config/demo) through the web chat socket.

Customer asks for a person mid-form → the desks get the summary → an agent logs in to the
web desk, claims and replies → the customer receives the reply with the agent's name →
an internal note stays internal → Close → the customer answers the CSAT question → stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from core.model import ConversationStatus
from tests.handoff.handoff_support import (
    PASSWORDS,
    Customer,
    RecordingDesk,
    bots,
    conversation_of,
    csat_payload,
    desk_config,
    events_of,
    service,
)
from tests.support.farm import running_farm

DESK_HEADERS = {"X-Desk-Request": "1"}


async def desk_post(http: aiohttp.ClientSession, url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    async with http.post(f"{url}/desk/api/{path}", json=body or {}, headers=DESK_HEADERS) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def test_customer_asks_for_a_person_mid_form_and_is_served_by_a_named_agent(tmp_path: Path) -> None:
    async with running_farm(tmp_path, bots=bots(), desk=desk_config()) as farm, \
            aiohttp.ClientSession() as chat_http, \
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as agent_http:
        recording = RecordingDesk()
        service(farm).add_desk(recording)
        customer = await Customer.connect(chat_http, farm.url)

        # Mid-form: the demo bot's order status form asks for the order number.
        await customer.say("Wo ist meine Bestellung?")
        await farm.farm.settle()
        assert any("Bestellnummer" in f["text"] for f in await customer.received())
        assert (await conversation_of(farm, customer)).active_form == "order_status_form"

        # The customer asks for a person instead of answering the form.
        await customer.say("Ich möchte lieber mit einem Mitarbeiter sprechen")
        await farm.farm.settle()
        [notice] = await customer.received()
        assert "Person" in notice["text"] and "Minuten" in notice["text"]
        conversation = await conversation_of(farm, customer)
        assert conversation.status is ConversationStatus.WAITING
        assert conversation.handoff_reason == "requested"

        [summary] = recording.summaries
        assert summary.reason == "requested" and summary.topic == "order_status"
        assert summary.channel == "webchat" and summary.conversation.language == "de"
        assert [e.data["text"] for e in summary.last_messages if e.type == "user"][-2:] == [
            "Wo ist meine Bestellung?", "Ich möchte lieber mit einem Mitarbeiter sprechen"]

        # An agent logs in to the web desk, sees the conversation waiting, claims and replies.
        await desk_post(agent_http, farm.url, "login", {"agent": "anna", "password": PASSWORDS["anna"]})
        async with agent_http.get(f"{farm.url}/desk/api/queue") as response:
            queue = (await response.json())["conversations"]
        assert [(c["id"], c["status"], c["reason"]) for c in queue] == [(conversation.id, "waiting", "requested")]
        base = f"conversations/{conversation.id}"
        await desk_post(agent_http, farm.url, f"{base}/claim")
        await desk_post(agent_http, farm.url, f"{base}/reply", {"text": "Hallo, hier ist Anna. Ich sehe nach."})
        await desk_post(agent_http, farm.url, f"{base}/note", {"text": "Kunde wartet seit gestern"})
        await farm.farm.settle()
        frames = await customer.received()
        assert [(f["role"], f["author"], f["text"]) for f in frames] == [
            ("system", None, "Anna Schmidt aus unserem Team antwortet Ihnen jetzt."),
            ("agent", "Anna Schmidt", "Hallo, hier ist Anna. Ich sehe nach."),
        ]
        assert all("gestern" not in f["text"] for f in frames)  # the internal note stays internal
        [note] = await events_of(farm, conversation.id, "note")
        assert note.data["agent_name"] == "Anna Schmidt"

        # While the agent has it, the bot stays silent and the customer's words reach the desk.
        await customer.say("Danke! Die Nummer ist HW-123456")
        await farm.farm.settle()
        assert await customer.received() == []
        assert recording.messages[-1][1].data["text"] == "Danke! Die Nummer ist HW-123456"

        # Close: the bot resumes and asks for a rating; the answer is stored and shown to the desk.
        await desk_post(agent_http, farm.url, f"{base}/close")
        await farm.farm.settle()
        frames = await customer.received()
        question = frames[-1]
        assert "zufrieden" in question["text"]
        assert [b["title"] for b in question["buttons"]] == ["1", "2", "3", "4", "5"]
        await customer.press(csat_payload(5), "5")
        await farm.farm.settle()
        assert [f["text"] for f in await customer.received()] == ["Danke für Ihre Bewertung!"]
        [csat] = await events_of(farm, conversation.id, "csat")
        assert csat.data["score"] == 5 and csat.data["agent_name"] == "Anna Schmidt"
        assert recording.details()[-1] == "customer rating (CSAT): 5/5"
        assert (await farm.store.get_conversation(conversation.id)).status is ConversationStatus.CLOSED  # type: ignore[union-attr]

        # The transcript logs the agent's reply as a Rasa bot event with the agent as author.
        agent_events = [e for e in await events_of(farm, conversation.id, "bot")
                        if e.data["metadata"].get("author") == "agent"]
        assert [(e.data["text"], e.data["metadata"]["author_name"]) for e in agent_events] == [
            ("Hallo, hier ist Anna. Ich sehe nach.", "Anna Schmidt")]
        assert agent_events[0].data["metadata"]["outbound_id"]
        await customer.ws.close()
