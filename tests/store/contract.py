"""`StoreContract`: the conformance suite every `Store` implementation passes, all concerns together.

The suite is split by port (``contract_<concern>.py``: contacts, conversations, inbox,
transcript, outbox, hot path, coordination, privacy); `StoreContract` runs them all.
Subclass it (or one concern's class) in a test module and provide an async ``store``
fixture that yields an opened, empty store::

    class TestMyStore(StoreContract):
        @pytest.fixture
        async def store(self, tmp_path):
            s = MyStore(..., clock=FakeClock()); await s.open(); yield s; await s.close()

Expiry tests move the store's clock on (``contract_support.advance``) instead of sleeping,
so the store must be built with a `tests.support.clock.FakeClock`.

Tests that race use ``asyncio.gather`` on one store; the MongoDB-specific tests in
``tests/store/test_mongo_store.py`` add races between separate clients.
"""

from __future__ import annotations

from tests.store.contract_contacts import ContactContract
from tests.store.contract_conversations import ConversationContract
from tests.store.contract_coordination import CoordinationContract
from tests.store.contract_hotpath import TurnUnitOfWorkContract
from tests.store.contract_inbox import InboxContract
from tests.store.contract_outbox import OutboxContract
from tests.store.contract_privacy import PrivacyContract
from tests.store.contract_support import (
    BOT,
    OTHER_BOT,
    T0,
    contact_and_conversation,
    event,
    identity,
    inbound,
    outbound,
    queue,
    turn_started,
)
from tests.store.contract_transcript import TranscriptContract

__all__ = [
    "BOT",
    "OTHER_BOT",
    "T0",
    "StoreContract",
    "contact_and_conversation",
    "event",
    "identity",
    "inbound",
    "outbound",
    "queue",
    "turn_started",
]

class StoreContract(
    ContactContract,
    ConversationContract,
    InboxContract,
    TranscriptContract,
    OutboxContract,
    TurnUnitOfWorkContract,
    CoordinationContract,
    PrivacyContract,
):
    """Behaviour every `Store` must show; test methods need an async ``store`` fixture."""
