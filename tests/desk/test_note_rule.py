"""The one note rule, enforced by the core: `agent_reply` with a "!" text stores a note and sends nothing.

Whatever desk calls it (the web desk's reply endpoint, Slack's thread handler with any configured
prefix), the customer's web chat socket receives nothing but the agent's real reply.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp

from core.desk import is_note, note_text
from tests.handoff.handoff_support import Customer, events_of, handoff_farm, service


def test_the_note_rule_ignores_leading_space_and_strips_the_prefix() -> None:
    assert is_note("  !intern") and note_text("  ! intern ") == "intern"
    assert not is_note("Hallo !") and note_text(" Hallo ! ") == "Hallo !"


async def test_a_bang_reply_is_stored_as_a_note_and_never_reaches_the_customer(tmp_path: Path) -> None:
    async with handoff_farm(tmp_path) as (farm, _desk), aiohttp.ClientSession() as http:
        customer = await Customer.connect(http, farm.url)
        await customer.say("Mitarbeiter bitte")
        await farm.farm.settle()
        await customer.received()
        [conversation] = await farm.store.list_conversations("demo", None)
        handoff = service(farm)
        await handoff.agent_reply(conversation.id, "web:anna", "Anna Schmidt", " !Kunde droht mit Kündigung")
        await handoff.agent_reply(conversation.id, "web:anna", "Anna Schmidt", "Ich helfe Ihnen gern.")
        await farm.farm.settle()
        frames = await customer.received()
        assert [f["text"] for f in frames if f["role"] == "agent"] == ["Ich helfe Ihnen gern."]
        assert not [f for f in frames if "Kündigung" in str(f.get("text"))]
        [note] = await events_of(farm, conversation.id, "note")
        assert note.data["text"] == "Kunde droht mit Kündigung" and note.data["agent_id"] == "web:anna"
