"""One person across channels (core/identity.py) on a real SQLite store, fed by the real adapters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.identity import IdentityService, LinkStatus, normalise_phone
from core.privacy.config import PrivacyConfig
from core.store.sqlite import SQLiteStore
from tests.privacy.support import (
    parse_one,
    receive,
    telegram,
    telegram_update,
    webchat,
    whatsapp,
    whatsapp_text,
)
from tests.support.clock import FakeClock

ANNA_PHONE = "491701234567"  # the number in telegram/contact_shared_own.json
BERND_PHONE = "491709999999"  # shared by Anna for Bernd in contact_shared_other_person.json


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    instance = SQLiteStore(tmp_path / "switchboard.db", clock=FakeClock())
    await instance.open()
    try:
        yield instance
    finally:
        await instance.close()


@pytest.fixture
def identity(store: SQLiteStore) -> IdentityService:
    return IdentityService(store, {"demo": PrivacyConfig(link_code_ttl_seconds=60, link_code_attempts=3),
                                   "other": PrivacyConfig()})


def test_phone_numbers_normalise_to_e164_digits() -> None:
    assert normalise_phone("+49 151 2345-6789") == "4915123456789"
    assert normalise_phone("491701234567") == "491701234567"
    assert normalise_phone("0049 170 1234567") == "491701234567"
    assert normalise_phone("0170 1234567") is None  # national: no country
    assert normalise_phone("+49 12") is None
    assert normalise_phone("") is None


async def test_same_person_on_telegram_and_whatsapp_ends_up_with_one_transcript(
    store: SQLiteStore, identity: IdentityService
) -> None:
    tg, wa = telegram(), whatsapp()
    first = await receive(store, identity, parse_one(tg, telegram_update("text_message.json")))  # t=...011
    second = await receive(store, identity, parse_one(wa, whatsapp_text(
        ANNA_PHONE, "Hallo, hier Anna per WhatsApp", when=1763820013, wamid="wamid.anna1")))
    assert first.id != second.id and second.phone == ANNA_PHONE
    shared = parse_one(tg, telegram_update("contact_shared_own.json"))  # t=...016
    assert shared.shared_phone is not None
    linked = await receive(store, identity, shared)

    assert linked.id == first.id  # the older contact is kept
    assert {i.channel for i in linked.identities} == {"telegram", "whatsapp"}
    assert linked.phone == ANNA_PHONE and linked.last_channel == "telegram"
    assert await store.get_contact(second.id) is None
    conversation = await store.conversation_for("demo", linked.id)
    events = await store.transcript(conversation.id)
    assert [(e.channel, e.data["text"]) for e in events] == [
        ("telegram", "Hallo, mein Server ist nicht erreichbar"),
        ("whatsapp", "Hallo, hier Anna per WhatsApp"),
        ("telegram", ""),
    ]
    assert [e.timestamp for e in events] == sorted(e.timestamp for e in events)
    assert [e.seq for e in events] == [1, 2, 3]
    audit = await store.audit_log(bot="demo")
    assert any(a.action == "link" and a.actor == "system" and a.detail["dropped"] == second.id for a in audit)


async def test_replies_go_to_the_channel_used_last(store: SQLiteStore, identity: IdentityService) -> None:
    tg, wa = telegram(), whatsapp()
    await receive(store, identity, parse_one(wa, whatsapp_text(ANNA_PHONE, "hi", when=1763820001, wamid="wamid.a")))
    linked = await receive(store, identity, parse_one(tg, telegram_update("contact_shared_own.json")))
    assert linked.reply_identity() is not None and linked.reply_identity().channel == "telegram"  # type: ignore[union-attr]
    again = await receive(store, identity, parse_one(wa, whatsapp_text(
        ANNA_PHONE, "noch da?", when=1763820100, wamid="wamid.b")))
    assert again.id == linked.id
    assert again.reply_identity().channel == "whatsapp"  # type: ignore[union-attr]
    assert again.reply_identity().chat_id == ANNA_PHONE  # type: ignore[union-attr]


async def test_contact_shared_for_someone_else_does_not_link(store: SQLiteStore, identity: IdentityService) -> None:
    tg, wa = telegram(), whatsapp()
    bernd_on_whatsapp = await receive(store, identity, parse_one(wa, whatsapp_text(
        BERND_PHONE, "Ich bin Bernd", when=1763820001, wamid="wamid.bernd", name="Bernd")))
    anna = await receive(store, identity, parse_one(tg, telegram_update("contact_shared_other_person.json")))
    anna = await receive(store, identity, parse_one(tg, telegram_update("contact_shared_without_user_id.json")))

    assert anna.id != bernd_on_whatsapp.id
    assert anna.phone is None and [i.channel for i in anna.identities] == ["telegram"]
    assert [i.channel for i in (await store.get_contact(bernd_on_whatsapp.id)).identities] == ["whatsapp"]  # type: ignore[union-attr]
    conversation = await store.conversation_for("demo", bernd_on_whatsapp.id)
    assert [e.data["text"] for e in await store.transcript(conversation.id)] == ["Ich bin Bernd"]


async def test_same_phone_in_two_bots_is_never_linked(store: SQLiteStore, identity: IdentityService) -> None:
    on_demo = await receive(store, identity, parse_one(telegram("demo"), telegram_update("contact_shared_own.json")))
    on_other = await receive(store, identity, parse_one(whatsapp("other"), whatsapp_text(
        ANNA_PHONE, "andere Marke", when=1763820020, wamid="wamid.other")))
    assert on_demo.id != on_other.id and on_demo.bot == "demo" and on_other.bot == "other"
    assert [c.id for c in await store.find_contacts("demo", phone=ANNA_PHONE)] == [on_demo.id]
    assert [c.id for c in await store.find_contacts("other", phone=ANNA_PHONE)] == [on_other.id]


async def test_link_code_links_web_chat_and_telegram_once(store: SQLiteStore, identity: IdentityService) -> None:
    asker = await receive(store, identity, parse_one(telegram(), telegram_update("text_message.json")))
    web = await receive(store, identity, webchat("demo", "sess-1", "Ich bin es, Anna, im Web"))
    code = await identity.issue_link_code(asker)
    assert len(code) == 6 and code.isdigit()

    linked = await identity.redeem_link_code(web, code)
    assert linked is not None and linked.id == asker.id  # the contact that asked is kept
    assert {i.channel for i in linked.identities} == {"telegram", "webchat"}
    assert linked.last_channel == "webchat"  # the code was just typed there
    conversation = await store.conversation_for("demo", linked.id)
    assert [e.channel for e in await store.transcript(conversation.id)] == ["telegram", "webchat"]

    stranger = await receive(store, identity, webchat("demo", "sess-2", "hallo"))
    assert await identity.redeem_link_code(stranger, code) is None  # single use
    audit = await store.audit_log(bot="demo")
    assert any(a.action == "link" and a.actor == "customer" for a in audit)
    assert any(a.action == "link_code_failed" and a.target == stranger.id for a in audit)
    assert all(code not in str(a.detail) for a in audit)


async def test_link_code_expires(store: SQLiteStore) -> None:
    identity = IdentityService(store, {"demo": PrivacyConfig(link_code_ttl_seconds=1)})
    asker = await receive(store, identity, webchat("demo", "a", "hi"))
    other = await receive(store, identity, webchat("demo", "b", "hi"))
    code = await identity.issue_link_code(asker)
    clock = store.clock
    assert isinstance(clock, FakeClock)
    clock.advance(1.5)
    assert await identity.redeem_link_code(other, code) is None
    assert (await store.get_contact(other.id)) is not None


async def test_link_code_locks_after_limited_attempts(store: SQLiteStore, identity: IdentityService) -> None:
    asker = await receive(store, identity, webchat("demo", "a", "hi"))
    guesser = await receive(store, identity, webchat("demo", "b", "hi"))
    code = await identity.issue_link_code(asker)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(3):
        assert (await identity.claim_link_code(guesser, wrong)).status is LinkStatus.INVALID
    assert await identity.link_locked(guesser)
    assert (await identity.claim_link_code(guesser, code)).status is LinkStatus.LOCKED
    # The code itself is still good for the person it belongs to.
    third = await receive(store, identity, webchat("demo", "c", "hi"))
    assert (await identity.redeem_link_code(third, code)) is not None


async def test_new_link_code_replaces_the_old_one(store: SQLiteStore, identity: IdentityService) -> None:
    asker = await receive(store, identity, webchat("demo", "a", "hi"))
    other = await receive(store, identity, webchat("demo", "b", "hi"))
    old = await identity.issue_link_code(asker)
    new = await identity.issue_link_code(asker)
    if old != new:
        assert await identity.redeem_link_code(other, old) is None
    assert await identity.redeem_link_code(other, new) is not None


async def test_own_code_in_the_same_chat_does_not_link(store: SQLiteStore, identity: IdentityService) -> None:
    asker = await receive(store, identity, webchat("demo", "a", "hi"))
    code = await identity.issue_link_code(asker)
    assert (await identity.claim_link_code(asker, code)).status is LinkStatus.OWN_CODE
    other = await receive(store, identity, webchat("demo", "b", "hi"))
    assert await identity.redeem_link_code(other, code) is not None  # still usable


async def test_link_code_of_one_bot_does_not_work_in_another(store: SQLiteStore, identity: IdentityService) -> None:
    asker = await receive(store, identity, webchat("demo", "a", "hi"))
    elsewhere = await receive(store, identity, webchat("other", "b", "hi"))
    code = await identity.issue_link_code(asker)
    assert await identity.redeem_link_code(elsewhere, code) is None
    assert (await store.get_contact(elsewhere.id)).bot == "other"  # type: ignore[union-attr]


async def test_unlink_moves_the_channel_to_a_new_contact_and_keeps_the_transcript(
    store: SQLiteStore, identity: IdentityService
) -> None:
    tg, wa = telegram(), whatsapp()
    await receive(store, identity, parse_one(tg, telegram_update("text_message.json")))
    await receive(store, identity, parse_one(wa, whatsapp_text(ANNA_PHONE, "per WhatsApp", when=1763820013,
                                                               wamid="wamid.1")))
    linked = await receive(store, identity, parse_one(tg, telegram_update("contact_shared_own.json")))
    assert len(linked.identities) == 2

    fresh = await identity.unlink(linked.id, "whatsapp")
    old = await store.get_contact(linked.id)
    assert old is not None and [i.channel for i in old.identities] == ["telegram"]
    assert [i.channel for i in fresh.identities] == ["whatsapp"] and fresh.id != linked.id
    old_conv = await store.conversation_for("demo", linked.id)
    assert len(await store.transcript(old_conv.id)) == 3  # the transcript stays with the old contact

    # The next WhatsApp message goes to the new contact and is not linked back by phone.
    again = await receive(store, identity, parse_one(wa, whatsapp_text(ANNA_PHONE, "wieder da", when=1763820200,
                                                                       wamid="wamid.2")))
    assert again.id == fresh.id
    assert len(await store.transcript(old_conv.id)) == 3
    assert any(a.action == "unlink" for a in await store.audit_log(bot="demo"))

    # A link code still links them on purpose.
    code = await identity.issue_link_code(old)
    relinked = await identity.redeem_link_code(again, code)
    assert relinked is not None and {i.channel for i in relinked.identities} == {"telegram", "whatsapp"}
