"""What waits in the inbox: a message holding a card number or an IBAN is encrypted until its
turn reads it back; a message with nothing to mask waits as the transcript will keep it."""

from __future__ import annotations

from cryptography.fernet import Fernet

from core.model import Inbound
from core.privacy.at_rest import AtRest, Sealer
from core.privacy.config import PrivacyConfig


def message(text: str) -> Inbound:
    return Inbound(bot="demo", channel="webchat", channel_user_id="u1", chat_id="c1",
                   platform_message_id="webchat:1", text=text)


def at_rest(**privacy: object) -> AtRest:
    return AtRest(Sealer(Fernet.generate_key()), {"demo": PrivacyConfig.model_validate(privacy)})


def test_a_card_number_waits_encrypted_and_the_turn_reads_it_back() -> None:
    hook = at_rest()
    text = "Meine Karte ist 4111 1111 1111 1111, bitte abbuchen"
    queued = hook.seal_inbound(message(text))
    assert "4111" not in queued.text
    assert hook.inbound(queued).text == text


def test_an_iban_waits_encrypted() -> None:
    hook = at_rest()
    queued = hook.seal_inbound(message("IBAN DE89 3704 0044 0532 0130 00"))
    assert "3704" not in queued.text


def test_a_message_with_nothing_to_mask_waits_as_written() -> None:
    hook = at_rest()
    queued = hook.seal_inbound(message("Wo ist meine Bestellung 12345?"))
    assert queued.text == "Wo ist meine Bestellung 12345?"
    assert hook.inbound(queued).text == "Wo ist meine Bestellung 12345?"


def test_a_configured_pattern_counts_as_something_to_mask() -> None:
    hook = at_rest(mask_patterns=[r"KD-\d{6}"])
    queued = hook.seal_inbound(message("Kundennummer KD-123456"))
    assert "123456" not in queued.text
    assert hook.inbound(queued).text == "Kundennummer KD-123456"


def test_without_masking_at_rest_nothing_is_encrypted() -> None:
    hook = at_rest(mask_at_rest=False)
    text = "Karte 4111 1111 1111 1111"
    assert hook.seal_inbound(message(text)).text == text
