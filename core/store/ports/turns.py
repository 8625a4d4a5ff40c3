"""`TurnUnitOfWork`: the fused hot path of every message, each step one named unit of work.

accept (contact + conversation + inbox), next turn (turn lease + inbox head + conversation +
contact + transcript window) and finish turn (conversation + inbox + transcript + outbox claim
+ lease release) span several concerns; an implementation composes the concern stores'
operations in one transaction / round trip where it can (``core/store/sqlite/hotpath.py``),
or calls them one by one (`core.store.base.Store`'s defaults).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from core.model import Conversation, Event, Inbound, Outbound
from core.store.records import Accepted, TurnCommit, TurnState


class TurnUnitOfWork(ABC):
    """The three steps of a message's way through the store, plus the plain turn commit."""

    @abstractmethod
    async def commit_turn(
        self,
        conversation: Conversation,
        *,
        inbox_ids: Sequence[int] = (),
        events: Sequence[Event] = (),
        outbound: Sequence[Outbound] = (),
    ) -> Conversation:
        """Atomically: save ``conversation`` (version check as `save_conversation`), mark the
        inbox items processed, append ``events`` to its transcript and queue ``outbound``.

        Returns the saved conversation. Raises `ConcurrencyConflict` (and writes nothing) when
        the version is stale or one of the inbox items was already processed.
        """

    @abstractmethod
    async def accept_inbound(self, inbound: Inbound, *, phone: str | None = None) -> Accepted | None:
        """`resolve_contact` + `conversation_for` + `ingest`: the hot path of every webhook.

        ``phone``: the number the message verifies as its sender's. If the contact does
        not have it as its verified phone yet, only the contact is resolved and None is
        returned: the caller links contacts by that number first, then ingests (so the
        message lands in the linked conversation).
        """

    @abstractmethod
    async def next_turn(
        self,
        conversation_id: str,
        *,
        lease: str,
        owner: str,
        lease_seconds: float,
        history: int,
        cached: tuple[int, int] | None = None,
    ) -> TurnState | None:
        """Take or renew ``lease`` for ``owner``, then read what the next turn needs.

        None if another owner holds the lease. Otherwise the oldest pending inbox item (none
        while it backs off after a failed turn)
        with the conversation, its contact and the transcript: the newest ``history``
        events, or, when ``cached=(version, seq)`` names the conversation's current
        version, only the events after ``seq``. When nothing is pending the lease is
        released and the state has no item.
        """

    @abstractmethod
    async def finish_turn(
        self,
        conversation: Conversation,
        *,
        inbox_ids: Sequence[int] = (),
        events: Sequence[Event] = (),
        outbound: Sequence[Outbound] = (),
        owner: str,
        lease_seconds: float,
        claim: bool = True,
        release: str | None = None,
    ) -> TurnCommit:
        """`commit_turn`, then, in the same unit where the store can:

        - ``claim``: claim for ``owner`` the first of ``outbound`` if it is now its
          conversation's next item to send (as `claim_outbox` would, leased for
          ``lease_seconds``), so the sender sends it without another round trip;
        - ``release``: when no inbox item of the conversation is left pending, release
          that turn lease of ``owner`` (the turn loop then ends without another call).
        """
