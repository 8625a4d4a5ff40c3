"""The `Store` conformance suite, one class per port, on every implementation
(``store`` fixture: sqlite, sqlite-second-opener, mongodb; see ``tests/store/conftest.py``)."""

from __future__ import annotations

from tests.store.contract_analytics import AnalyticsContract
from tests.store.contract_contacts import ContactContract
from tests.store.contract_conversations import ConversationContract
from tests.store.contract_coordination import CoordinationContract
from tests.store.contract_hotpath import TurnUnitOfWorkContract
from tests.store.contract_inbox import InboxContract
from tests.store.contract_outbox import OutboxContract
from tests.store.contract_privacy import PrivacyContract
from tests.store.contract_review import ReviewContract
from tests.store.contract_transcript import TranscriptContract


class TestContacts(ContactContract):
    """`ContactStore`."""


class TestConversations(ConversationContract):
    """`ConversationStore` (and tenants)."""


class TestInbox(InboxContract):
    """`InboxStore` (and dead letters)."""


class TestTranscript(TranscriptContract):
    """`TranscriptStore` and `commit_turn`."""


class TestOutbox(OutboxContract):
    """`OutboxStore` and `ReceiptStore`."""


class TestTurnUnitOfWork(TurnUnitOfWorkContract):
    """`TurnUnitOfWork`: the hot path."""


class TestCoordination(CoordinationContract):
    """`LeaseStore` and `KeyValueStore`."""


class TestPrivacy(PrivacyContract):
    """`PrivacyStore` and `AuditStore`."""


class TestAnalytics(AnalyticsContract):
    """`AnalyticsStore`: service cases and their figures."""


class TestReview(ReviewContract):
    """`ReviewStore` (the review queue)."""
