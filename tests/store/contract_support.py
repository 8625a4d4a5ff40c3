"""Helpers of the store contract suites (``tests/store/contract_*.py``): ids, messages, a started turn."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from core.model import (
    Contact,
    Conversation,
    Event,
    Identity,
    Inbound,
    Outbound,
)
from core.store.base import Store, TurnState
from tests.support.clock import FakeClock

BOT = "acme"
OTHER_BOT = "globex"
T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def identity(user: str = "u1", channel: str = "telegram") -> Identity:
    return Identity(channel=channel, channel_user_id=user, chat_id=f"chat-{user}")


def inbound(n: int, *, user: str = "u1", channel: str = "telegram", bot: str = BOT, text: str | None = None) -> Inbound:
    return Inbound(
        bot=bot,
        channel=channel,
        channel_user_id=user,
        chat_id=f"chat-{user}",
        platform_message_id=f"{channel}:{user}:{n}",
        text=f"message {n}" if text is None else text,
        timestamp=T0 + timedelta(seconds=n),
    )


def event(n: int, text: str | None = None, *, kind: str = "user", at: datetime | None = None) -> Event:
    return Event(
        type=kind,
        data={"text": text if text is not None else f"text {n}", "n": n},
        channel="telegram",
        timestamp=at or T0 + timedelta(seconds=n),
    )


def outbound(conv: Conversation, text: str, **kwargs: Any) -> Outbound:
    return Outbound(conversation_id=conv.id, bot=conv.bot, channel="telegram", chat_id="chat-u1", text=text, **kwargs)


def advance(store: Store, seconds: float) -> None:
    """Move the store's clock ``seconds`` on: how a contract test reaches an expiry."""
    clock = store.clock
    if not isinstance(clock, FakeClock):
        raise TypeError("the store fixture must build its store with clock=FakeClock()")
    clock.advance(seconds)


async def contact_and_conversation(
    store: Store, user: str = "u1", bot: str = BOT, channel: str = "telegram"
) -> tuple[Contact, Conversation]:
    contact = await store.resolve_contact(bot, identity(user, channel))
    return contact, await store.conversation_for(bot, contact.id)


async def turn_started(store: Store) -> tuple[Conversation, str, TurnState]:
    """A conversation with message 1 pending, its turn started by owner "w1" (lease taken)."""
    _, conv = await contact_and_conversation(store)
    lease = f"turn:{conv.id}"
    await store.ingest(conv.id, inbound(1))
    state = await store.next_turn(conv.id, lease=lease, owner="w1", lease_seconds=30, history=10)
    assert state is not None
    return conv, lease, state


async def queue(store: Store, conv: Conversation, *texts: str) -> list[Outbound]:
    """Queue outbound messages for ``conv`` in order (outside a turn)."""
    items = [outbound(conv, t) for t in texts]
    await store.append_events(conv.id, [], items)
    return items
