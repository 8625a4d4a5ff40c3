"""Link codes, disclosure and erasure on request, through the real ingest and turn runner."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from core.identity import IdentityService
from core.model import Inbound, Outbound
from core.pipeline.ingest import Ingest
from core.pipeline.turns import BotRuntime, TurnRunner
from core.privacy.config import PrivacyConfig
from core.privacy.interceptors import (
    DisclosurePostProcessor,
    ForgetAfterCommit,
    LinkCodeInterceptor,
)
from core.privacy.service import PrivacyService
from core.store.sqlite import SQLiteStore
from tests.privacy.engines import IMAGE, ForgetDialogueEngine
from tests.privacy.support import file_bytes, parse_one, telegram, telegram_update, webchat

PHRASE = "Heidelbeer-Kompass-4471"
DE_DISCLOSURE = "automatischen Assistenten"
EN_DISCLOSURE = "automated assistant"


@dataclass
class Pipeline:
    store: SQLiteStore
    ingest: Ingest
    runner: TurnRunner
    identity: IdentityService
    db_path: Path
    sent: list[Outbound]

    async def say(self, inbound: Inbound) -> list[Outbound]:
        """Ingest one message, run its turn, 'deliver' what was queued; return the new outbound messages."""
        await self.ingest.accept_message(inbound)
        await self.runner.idle()
        new: list[Outbound] = []
        while items := await self.store.claim_outbox("test", limit=100, lease_seconds=30):
            for item in items:
                await self.store.outbox_sent(item.outbound.id, f"{item.outbound.channel}:{item.outbound.id}")
                new.append(item.outbound)
        self.sent.extend(new)
        return new


def bot_config(**privacy: Any) -> Any:
    return SimpleNamespace(default_language="de", privacy=PrivacyConfig(**privacy))


@pytest.fixture
async def pipeline(tmp_path: Path) -> AsyncIterator[Pipeline]:
    db_path = tmp_path / "switchboard.db"
    store = SQLiteStore(db_path)
    await store.open()
    config = bot_config(link_code_ttl_seconds=300, link_code_attempts=3)
    identity = IdentityService(store, {"demo": config.privacy})
    link = LinkCodeInterceptor(identity, store)
    runtime = BotRuntime(
        name="demo", engine=ForgetDialogueEngine(), config=config,
        interceptors=[link], post=[DisclosurePostProcessor()],
        after=[link, ForgetAfterCommit(PrivacyService(store), store)],
    )
    runner = TurnRunner(store, {"demo": runtime}, owner="test")
    ingest = Ingest(store, identity, runner)
    try:
        yield Pipeline(store, ingest, runner, identity, db_path, [])
    finally:
        await runner.stop()
        await store.close()


async def test_first_bot_message_discloses_the_assistant_once(pipeline: Pipeline) -> None:
    [first] = await pipeline.say(webchat("demo", "s1", "Hallo"))
    assert first.text.startswith("Sie schreiben mit einem automatischen Assistenten")
    assert "„Mensch“" in first.text and first.text.endswith("echo: Hallo")
    [second] = await pipeline.say(webchat("demo", "s1", "Noch was"))
    assert second.text == "echo: Noch was"


async def test_disclosure_follows_the_conversation_language(pipeline: Pipeline) -> None:
    message = webchat("demo", "s-en", "Hello")
    contact = await pipeline.identity.resolve(message)
    conversation = await pipeline.store.conversation_for("demo", contact.id)
    await pipeline.store.save_conversation(conversation.evolve(language="en"))
    [first] = await pipeline.say(message)
    assert first.text.startswith("You are chatting with an automated assistant") and '"human"' in first.text


async def test_disclosure_is_its_own_message_when_the_first_reply_has_no_text(pipeline: Pipeline) -> None:
    disclosure, image = await pipeline.say(webchat("demo", "s2", "attachment only"))
    assert DE_DISCLOSURE in disclosure.text
    assert image.attachments[0].url == IMAGE


async def test_link_code_asked_on_telegram_and_typed_in_web_chat_links_both(pipeline: Pipeline) -> None:
    tg = telegram()
    await pipeline.say(parse_one(tg, telegram_update("text_message.json")))
    [answer] = await pipeline.say(parse_one(tg, telegram_update("text_message.json", text="/link", update_id=1)))
    assert "Verknüpfungscode" in answer.text and answer.channel == "telegram"
    code = next(word for word in answer.text.replace(".", " ").split() if word.isdigit() and len(word) == 6)

    await pipeline.say(webchat("demo", "web-anna", "Hallo im Web"))
    [confirmation] = await pipeline.say(webchat("demo", "web-anna", code))
    assert confirmation.channel == "webchat" and confirmation.chat_id == "web-anna"
    assert "verknüpft" in confirmation.text

    tg_contact = (await pipeline.store.find_contacts("demo", identity=_identity("telegram", "111222333")))[0]
    assert {i.channel for i in tg_contact.identities} == {"telegram", "webchat"}
    assert await pipeline.store.count_conversations("demo") == 1
    conversation = await pipeline.store.conversation_for("demo", tg_contact.id)
    events = await pipeline.store.transcript(conversation.id)
    user_texts = [(e.channel, e.data["text"]) for e in events if e.type == "user"]
    assert user_texts == [("telegram", "Hallo, mein Server ist nicht erreichbar"), ("telegram", "/link"),
                          ("webchat", "Hallo im Web"), ("webchat", code)]
    assert [e.data["parse_data"]["intent"]["name"] for e in events if e.type == "user"][1] == "link_account"
    assert events[-1].type == "bot" and "verknüpft" in events[-1].data["text"]
    assert [e.seq for e in events] == sorted(e.seq for e in events)

    # The code is used up; the next person typing it is answered by the bot as usual.
    [reply] = await pipeline.say(webchat("demo", "someone-else", code))
    assert code in reply.text and "verknüpft" not in reply.text


async def test_wrong_link_command_is_answered_and_six_digits_alone_reach_the_bot(pipeline: Pipeline) -> None:
    await pipeline.say(webchat("demo", "s3", "Hallo"))
    [invalid] = await pipeline.say(webchat("demo", "s3", "/link 000000"))
    assert "ungültig" in invalid.text
    for number in ("123456", "654 321"):  # order numbers: answered by the bot, but counted as attempts
        [order] = await pipeline.say(webchat("demo", "s3", number))
        assert order.text == f"echo: {number}"
    [locked] = await pipeline.say(webchat("demo", "s3", "link code"))
    assert "Zu viele falsche Codes" in locked.text


async def test_customer_asks_to_delete_data_confirms_is_told_and_nothing_remains(pipeline: Pipeline) -> None:
    tg = telegram()
    await pipeline.say(parse_one(tg, telegram_update("text_message.json", text=f"Mein Passwort ist {PHRASE}")))
    [question] = await pipeline.say(parse_one(tg, telegram_update("text_message.json", text="lösch meine daten",
                                                                  update_id=2)))
    assert "wirklich" in question.text
    contact = (await pipeline.store.find_contacts("demo", identity=_identity("telegram", "111222333")))[0]
    assert PHRASE.encode() in file_bytes(pipeline.db_path)

    told = await pipeline.say(parse_one(tg, telegram_update("text_message.json", text="ja", update_id=3)))
    assert [o.text for o in told] == [
        "Ihre Daten und dieser Chatverlauf wurden gelöscht. Wenn Sie wieder schreiben, beginnen wir neu."
    ]
    assert told[0].channel == "telegram" and told[0].chat_id == "111222333"

    assert PHRASE.encode() not in file_bytes(pipeline.db_path)
    assert await PrivacyService(pipeline.store).export(contact.id, actor="admin:test") == {}
    assert any(a.action == "forget" and a.actor == "customer" for a in await pipeline.store.audit_log(bot="demo"))

    # Writing again starts afresh: a new contact, and the disclosure again.
    [fresh] = await pipeline.say(parse_one(tg, telegram_update("text_message.json", text="Hallo?", update_id=4)))
    assert DE_DISCLOSURE in fresh.text
    again = (await pipeline.store.find_contacts("demo", identity=_identity("telegram", "111222333")))[0]
    assert again.id != contact.id


def _identity(channel: str, user: str) -> Any:
    from core.model import Identity

    return Identity(channel, user, user)
