"""Cost of privacy at rest per turn, in-process: ``python -m bench.privacy_at_rest``.

Sealing and opening a queued message (Fernet), and the commit step (masking the turn's texts,
sealing a sensitive slot) on a typical demo turn.
"""

from __future__ import annotations

import timeit
from datetime import UTC, datetime

from cryptography.fernet import Fernet

from core.model import Conversation, Event, Inbound, Outbound
from core.privacy.at_rest import AtRest, Sealer
from core.privacy.config import PrivacyConfig

N = 5000
TEXT = "Hallo, meine Bestellung HW-123456 ist noch nicht da, bitte helfen"
REPLY = "Bestellung HW-123456 (Webhosting Pro): bereitgestellt am 12. März."


def main() -> None:
    at_rest = AtRest(Sealer(Fernet.generate_key()), {"demo": PrivacyConfig(sensitive_slots=["iban"])})
    message = Inbound(bot="demo", channel="webchat", channel_user_id="u", chat_id="u", platform_message_id="1",
                      text=TEXT, timestamp=datetime.now(UTC))
    user = Event("user", {"text": TEXT, "parse_data": {"text": TEXT, "intent": {"name": "order_status"},
                                                       "entities": [{"entity": "order_number", "value": "HW-123456"}]}})
    bot = Event("bot", {"text": REPLY})
    out = [Outbound(conversation_id="c", bot="demo", channel="webchat", chat_id="u", text=REPLY)]
    sensitive = Conversation(id="c", bot="demo", contact_id="x", slots={"iban": "DE89370400440532013000"})
    stored = at_rest.commit(sensitive, [user, Event("slot", {"name": "iban", "value": "DE89370400440532013000"}), bot],
                            out)[0]
    plain = Conversation(id="p", bot="demo", contact_id="y", slots={"language": "de"})
    for label, work in (
        ("seal + open a queued message", lambda: at_rest.inbound(at_rest.seal_inbound(message))),
        ("commit, plain turn (mask 2 events)", lambda: at_rest.commit(plain, [user, bot], out)),
        ("open + commit with a sensitive slot", lambda: at_rest.commit(at_rest.conversation(stored), [user, bot], out)),
    ):
        print(f"{label}: {timeit.timeit(work, number=N) / N * 1e6:.1f} µs")


if __name__ == "__main__":
    main()
