"""The store's ports, one per concern; `core.store.base.Store` is all of them together."""

from core.store.ports.analytics import AnalyticsStore
from core.store.ports.contacts import ContactStore
from core.store.ports.conversations import ConversationStore
from core.store.ports.coordination import KeyValueStore, LeaseStore
from core.store.ports.inbox import InboxStore
from core.store.ports.outbox import OutboxStore, ReceiptStore
from core.store.ports.privacy import AuditStore, PrivacyStore
from core.store.ports.transcript import TranscriptStore
from core.store.ports.turns import TurnUnitOfWork

__all__ = [
    "AnalyticsStore",
    "AuditStore",
    "ContactStore",
    "ConversationStore",
    "InboxStore",
    "KeyValueStore",
    "LeaseStore",
    "OutboxStore",
    "PrivacyStore",
    "ReceiptStore",
    "TranscriptStore",
    "TurnUnitOfWork",
]
