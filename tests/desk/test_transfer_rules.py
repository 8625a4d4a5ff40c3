"""Who may transfer to whom (the core's rules, whichever desk asks)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from core.handoff.service import AgentNotAllowed, HandoffError
from core.model import ConversationStatus
from tests.handoff.handoff_support import (
    Customer,
    conversation_of,
    events_of,
    handoff_farm,
    service,
)


async def test_only_the_assigned_agent_transfers_and_only_to_an_agent_of_the_bot(tmp_path: Path) -> None:
    async with handoff_farm(tmp_path) as (farm, desk), aiohttp.ClientSession() as chat:
        customer = await Customer.connect(chat, farm.url)
        await customer.say("Mitarbeiter bitte")
        await farm.farm.settle()
        conversation_id = (await conversation_of(farm, customer)).id
        handoff = service(farm)
        await handoff.claim(conversation_id, "web:anna", "Anna Schmidt")
        with pytest.raises(HandoffError, match="only the assigned agent"):
            await handoff.transfer(conversation_id, "web:ben", "Ben Wolf", to_agent="web:ben", to_name="Ben Wolf")
        with pytest.raises(AgentNotAllowed):
            await handoff.transfer(conversation_id, "web:anna", "Anna Schmidt", to_agent="web:carl", to_name="Carl")
        saved = await handoff.transfer(conversation_id, "web:anna", "Anna Schmidt", to_agent="web:ben",
                                       to_name="Ben Wolf", note="!Rückruf zugesagt")
        assert (saved.status, saved.assigned_agent) == (ConversationStatus.AGENT, "web:ben")
        [note] = await events_of(farm, conversation_id, "note")
        assert note.data["text"] == "Rückruf zugesagt"
        back = await handoff.transfer(conversation_id, "web:ben", "Ben Wolf", to_agent=None)
        assert (back.status, back.assigned_agent) == (ConversationStatus.WAITING, None)
        entries = await handoff.queue()
        assert [(e.conversation.id, e.conversation.status) for e in entries] == [
            (conversation_id, ConversationStatus.WAITING)]
        assert desk.details()[-2:] == ["transferred to Ben Wolf by Anna Schmidt", "put back in the queue by Ben Wolf"]
