"""Masked at rest: a card number and an IBAN typed into the web chat never reach the SQLite
files in clear while the conversation lives, and the demo's payment action still gets the IBAN
it needs through the sensitive ``iban`` slot (stored encrypted, shown to nobody).

Through the public door: a running farm with the real demo bot (its NLU, rules, forms and
rasa-sdk actions), a customer on the web chat socket.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from cryptography.fernet import Fernet

from core.errors import ConfigError
from core.handoff.service import HandoffService
from tests.handoff.handoff_support import Customer, bots, conversation_of
from tests.support.farm import running_farm

CARD = "4111 1111 1111 1111"
IBAN = "DE89 3704 0044 0532 0130 00"
CLEAR = (CARD, CARD.replace(" ", ""), IBAN, IBAN.replace(" ", ""), "0532 0130", "05320130")


def raw_files(db: Path) -> bytes:
    """The main database file, its write-ahead log and shared-memory index, byte for byte."""
    return b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists())


async def replies(farm: object, customer: Customer) -> list[str]:
    await farm.farm.settle()  # type: ignore[attr-defined]
    return [str(f["text"]) for f in await customer.received()]


async def test_card_and_iban_are_never_in_clear_on_disk_and_the_payment_action_still_works(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_DATA_KEY", Fernet.generate_key().decode())
    settings = bots()
    settings["demo"]["privacy"] = {"sensitive_slots": ["iban"]}
    async with running_farm(tmp_path, bots=settings) as farm, aiohttp.ClientSession() as http:
        customer = await Customer.connect(http, farm.url)
        await customer.say(f"Hallo, meine Kreditkarte {CARD} wurde abgelehnt")
        await replies(farm, customer)
        await customer.say("Ich möchte per Lastschrift zahlen")
        assert any("IBAN" in t for t in await replies(farm, customer))
        await customer.say(IBAN)
        answer = await replies(farm, customer)
        # The action validated the full IBAN (a masked one fails mod 97) and read its bank code.
        assert any("Bank 37040044" in t and "3000" in t for t in answer), answer

        conversation = await conversation_of(farm, customer)
        assert conversation.status.value == "bot"  # alive: nothing was forgotten or purged
        on_disk = raw_files(farm.db_path)
        for clear in CLEAR:
            assert clear.encode() not in on_disk, clear
        assert "•••• •••• •••• 1111".encode() in on_disk and "DE89 •••• … 3000".encode() in on_disk

        stored = [e.data["value"] for e in await farm.store.transcript(conversation.id)
                  if e.type == "slot" and e.data.get("name") == "iban" and e.data.get("value")]
        assert stored and all(str(v).startswith("sealed:v1:") for v in stored)
        assert str(conversation.slots["iban"]).startswith("sealed:v1:")

        handoff = farm.farm.services["handoff"]
        assert isinstance(handoff, HandoffService)
        summary = await handoff.summary(conversation)
        assert summary.slots["iban"] == "[sensitive]"  # agents never see it
        users = [e.data["text"] for e in await farm.store.transcript(conversation.id) if e.type == "user"]
        assert users[-1] == "DE89 •••• … 3000"


async def test_a_sensitive_slot_the_domain_lacks_stops_the_farm(tmp_path: Path) -> None:
    settings = bots()
    settings["demo"]["privacy"] = {"sensitive_slots": ["ibn"]}  # a typo would otherwise be stored in clear
    with pytest.raises(ConfigError, match=r"\['ibn'\]"):
        async with running_farm(tmp_path, bots=settings):
            pass
