"""Export, forget, retention and audit (core/privacy/service.py) on a real SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from core.identity import IdentityService
from core.model import Event, Outbound, utcnow
from core.privacy.config import PrivacyConfig
from core.privacy.service import PrivacyService, RetentionScheduler
from core.store.sqlite import SQLiteStore
from tests.privacy.support import (
    file_bytes,
    parse_one,
    telegram,
    telegram_update,
    webchat,
    whatsapp,
    whatsapp_text,
)
from tests.support.wait import eventually

PHRASE = "Quittenmarmelade-Zebrastreifen-7731"
NAME = "Zebulon Quartzfeld"
PHONE = "491701234567"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "switchboard.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SQLiteStore]:
    instance = SQLiteStore(db_path)
    await instance.open()
    try:
        yield instance
    finally:
        await instance.close()


async def converse(store: SQLiteStore, bot: str, inbound_text: str, *, session: str, name: str | None = None,
                   phone: str | None = None) -> tuple[str, str]:
    """A full turn as the runner writes it: inbox, user + bot events, a sent outbound. Returns (contact, conv)."""
    identity = IdentityService(store, {})
    message = webchat(bot, session, inbound_text, mid=inbound_text[:8])
    if name or phone:
        message = type(message)(**{**{f: getattr(message, f) for f in message.__slots__},
                                   "display_name": name, "shared_phone": phone})
    contact = await identity.resolve(message)
    conversation = await store.conversation_for(bot, contact.id)
    await store.ingest(conversation.id, message)
    [item] = await store.pending_inbox(conversation.id)
    out = Outbound(conversation_id=conversation.id, bot=bot, channel="webchat", chat_id=session,
                   text=f"Sie schrieben: {inbound_text}")
    await store.commit_turn(conversation, inbox_ids=[item.id], events=[
        Event("user", {"text": inbound_text, "parse_data": {"intent": {"name": "greet"}}}, channel="webchat"),
        Event("bot", {"text": out.text, "metadata": {"outbound_id": out.id}}, channel="webchat"),
    ], outbound=[out])
    await store.outbox_sent(out.id, f"webchat:{out.id}")
    return contact.id, conversation.id


async def test_after_forget_no_personal_text_remains_in_the_sqlite_file(store: SQLiteStore, db_path: Path) -> None:
    contact_id, conversation_id = await converse(
        store, "demo", f"Meine Lieblingsspeise ist {PHRASE}", session="sess-forget", name=NAME, phone=PHONE)
    await converse(store, "demo", "Ich bin jemand anderes", session="sess-keep")
    await store.kv_set("some:key", {"x": 1})
    before = file_bytes(db_path)
    assert PHRASE.encode() in before and NAME.encode() in before and PHONE.encode() in before

    service = PrivacyService(store)
    await service.forget(contact_id, actor="admin:test")

    after = file_bytes(db_path)
    for secret in (PHRASE, NAME, PHONE, "sess-forget"):
        assert secret.encode() not in after, secret
    assert b"Ich bin jemand anderes" in after  # other people's data stays
    assert await service.export(contact_id, actor="admin:test") == {}
    assert await store.count_conversations("demo") == 2  # anonymous counts stay
    assert len(await store.transcript(conversation_id)) == 2
    audit = await store.audit_log(bot="demo")
    assert [(a.action, a.actor) for a in audit[:2]] == [("export", "admin:test"), ("forget", "admin:test")]
    await store.close()
    assert PHRASE.encode() not in file_bytes(db_path)


async def test_export_holds_everything_about_the_contact_and_is_audited(store: SQLiteStore) -> None:
    contact_id, _ = await converse(store, "demo", f"Hallo {PHRASE}", session="s1", name=NAME)
    data = await PrivacyService(store).export(contact_id, actor="agent:U123")
    assert data["contact"]["id"] == contact_id and data["contact"]["display_name"] == NAME
    texts = [e["data"].get("text") for c in data["conversations"] for e in c["transcript"]]
    assert f"Hallo {PHRASE}" in texts
    [entry] = [a for a in await store.audit_log(bot="demo") if a.action == "export"]
    assert entry.actor == "agent:U123" and entry.target == contact_id and PHRASE not in str(entry.detail)


async def test_export_of_one_bots_contact_never_contains_another_bots_data(store: SQLiteStore) -> None:
    identity = IdentityService(store, {})
    tg_demo = parse_one(telegram("demo"), telegram_update("contact_shared_own.json"))
    wa_other = parse_one(whatsapp("other"), whatsapp_text(PHONE, f"other brand {PHRASE}", when=1763820020,
                                                          wamid="wamid.x"))
    demo_contact = await identity.resolve(tg_demo)
    other_contact = await identity.resolve(wa_other)
    other_conv = await store.conversation_for("other", other_contact.id)
    await store.append_events(other_conv.id, [Event("user", {"text": wa_other.text}, channel="whatsapp")])
    demo_conv = await store.conversation_for("demo", demo_contact.id)
    await store.append_events(demo_conv.id, [Event("user", {"text": "demo only"}, channel="telegram")])

    exported = await PrivacyService(store).export(demo_contact.id, actor="admin:test")
    assert PHRASE not in str(exported) and "demo only" in str(exported)
    assert {c["bot"] for c in exported["conversations"]} == {"demo"}
    assert all(a.bot == "demo" for a in await store.audit_log(bot="demo"))


async def test_forget_of_an_unknown_contact_raises_not_found(store: SQLiteStore) -> None:
    from core.errors import NotFound

    with pytest.raises(NotFound):
        await PrivacyService(store).forget("ct_missing", actor="admin:test")


async def test_purge_removes_only_events_older_than_retention(store: SQLiteStore) -> None:
    _, conversation_id = await converse(store, "demo", "neu", session="s1")
    old = utcnow() - timedelta(days=40)
    await store.append_events(conversation_id, [Event("user", {"text": "uralt"}, channel="webchat", timestamp=old)])
    _, other_conv = await converse(store, "other", "andere", session="s2")
    await store.append_events(other_conv, [Event("user", {"text": "alt"}, channel="webchat", timestamp=old)])

    assert await PrivacyService(store).purge("demo", retention_days=30) == 1
    assert [e.data["text"] for e in await store.transcript(conversation_id) if e.type == "user"] == ["neu"]
    assert len(await store.transcript(other_conv)) == 3  # another bot keeps its own retention
    [entry] = [a for a in await store.audit_log(bot="demo") if a.action == "purge"]
    assert entry.actor == "system" and entry.detail == {"events": 1, "retention_days": 30, "desk_copies": 0}


async def test_retention_scheduler_purges_on_its_interval(store: SQLiteStore) -> None:
    _, conversation_id = await converse(store, "demo", "neu", session="s1")
    old = utcnow() - timedelta(days=10)
    await store.append_events(conversation_id, [Event("user", {"text": "alt 1"}, channel="webchat", timestamp=old)])
    scheduler = RetentionScheduler(store, {"demo": PrivacyConfig(retention_days=7),
                                           "keep": PrivacyConfig(retention_days=None)}, interval_seconds=0.05)
    await scheduler.start()
    try:
        await eventually(lambda: scheduler.runs >= 1)
        assert [e.data["text"] for e in await store.transcript(conversation_id) if e.type == "user"] == ["neu"]
        await store.append_events(conversation_id, [Event("user", {"text": "alt 2"}, channel="webchat",
                                                          timestamp=old)])
        runs = scheduler.runs
        await eventually(lambda: scheduler.runs > runs)
        assert "alt 2" not in [e.data.get("text") for e in await store.transcript(conversation_id)]
    finally:
        await scheduler.stop()
    assert scheduler.failures == 0
    assert not [a for a in await store.audit_log() if a.target == "keep"]


async def test_only_one_of_two_schedulers_on_one_store_purges(store: SQLiteStore) -> None:
    configs = {"demo": PrivacyConfig(retention_days=7)}
    first = RetentionScheduler(store, configs, interval_seconds=60)
    second = RetentionScheduler(store, configs, interval_seconds=60)
    assert await first.run_once() == {"demo": 0}
    assert await second.run_once() == {}


async def test_agent_viewing_a_transcript_is_audited(store: SQLiteStore) -> None:
    _, conversation_id = await converse(store, "demo", "hallo", session="s1")
    await PrivacyService(store).audit_view(conversation_id, "U0AGENT", desk="slack")
    [entry] = [a for a in await store.audit_log(bot="demo") if a.action == "viewed"]
    assert (entry.actor, entry.target, entry.detail) == ("agent:U0AGENT", conversation_id, {"desk": "slack"})
    assert entry.at is not None
