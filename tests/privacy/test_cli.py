"""`switchboard export` / `switchboard forget` against a farm.yml and its SQLite file."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from core.model import Identity
from core.privacy_cli import app
from core.store.sqlite import SQLiteStore
from tests.privacy.support import file_bytes
from tests.privacy.test_service import converse

PHRASE = "Rhabarber-Leuchtturm-9182"


@pytest.fixture
def farm(tmp_path: Path) -> tuple[Path, Path, str]:
    """A farm.yml, its SQLite file with one conversation, and the contact id."""
    project = tmp_path / "bot"
    project.mkdir()
    db_path = tmp_path / "data" / "switchboard.db"
    config = tmp_path / "farm.yml"
    config.write_text(yaml.safe_dump({
        "store": {"kind": "sqlite", "path": str(db_path)},
        "bots": {"demo": {"project": str(project)}},
    }), encoding="utf-8")

    async def seed() -> str:
        store = SQLiteStore(db_path)
        await store.open()
        try:
            contact_id, _ = await converse(store, "demo", f"Mein Geheimnis: {PHRASE}", session="cli-1",
                                           name="Cli Kunde")
            return contact_id
        finally:
            await store.close()

    return config, db_path, asyncio.run(seed())


def audit_actions(db_path: Path) -> list[tuple[str, str]]:
    async def read() -> list[tuple[str, str]]:
        store = SQLiteStore(db_path)
        await store.open()
        try:
            return [(a.action, a.actor) for a in await store.audit_log(bot="demo")]
        finally:
            await store.close()

    return asyncio.run(read())


def test_export_prints_everything_about_the_contact_as_json(farm: tuple[Path, Path, str]) -> None:
    config, db_path, contact_id = farm
    result = CliRunner().invoke(app, ["export", "--contact", contact_id, "--config", str(config)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["contact"]["id"] == contact_id
    assert f"Mein Geheimnis: {PHRASE}" in json.dumps(data, ensure_ascii=False)
    action, actor = audit_actions(db_path)[0]
    assert action == "export" and actor.startswith("admin:")


def test_export_writes_to_a_file(farm: tuple[Path, Path, str], tmp_path: Path) -> None:
    config, _, contact_id = farm
    out = tmp_path / "export.json"
    result = CliRunner().invoke(app, ["export", "--contact", contact_id, "--config", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text(encoding="utf-8"))["contact"]["id"] == contact_id


def test_forget_erases_the_contact_and_export_is_then_empty(farm: tuple[Path, Path, str]) -> None:
    config, db_path, contact_id = farm
    result = CliRunner().invoke(app, ["forget", "--contact", contact_id, "--config", str(config), "--yes"])
    assert result.exit_code == 0, result.output
    assert PHRASE.encode() not in file_bytes(db_path) and b"Cli Kunde" not in file_bytes(db_path)
    exported = CliRunner().invoke(app, ["export", "--contact", contact_id, "--config", str(config)])
    assert exported.exit_code == 0 and json.loads(exported.stdout) == {}
    assert [a for a, _ in audit_actions(db_path)[:2]] == ["export", "forget"]


def test_forget_asks_first_and_does_nothing_when_declined(farm: tuple[Path, Path, str]) -> None:
    config, db_path, contact_id = farm
    result = CliRunner().invoke(app, ["forget", "--contact", contact_id, "--config", str(config)], input="n\n")
    assert result.exit_code == 1
    assert PHRASE.encode() in file_bytes(db_path)


def test_forget_of_an_unknown_contact_fails_clearly(farm: tuple[Path, Path, str]) -> None:
    config, _, _ = farm
    result = CliRunner().invoke(app, ["forget", "--contact", "ct_nope", "--config", str(config), "--yes"])
    assert result.exit_code == 1 and "unknown contact" in result.output


def test_missing_config_is_reported_with_the_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["export", "--contact", "x", "--config", str(tmp_path / "nope.yml")])
    assert result.exit_code == 2 and "nope.yml" in result.output


def test_unlink_splits_a_channel_identity_off_into_its_own_contact(farm: tuple[Path, Path, str]) -> None:
    config, db_path, contact = farm

    async def link_telegram() -> None:
        store = SQLiteStore(db_path)
        await store.open()
        try:
            other = await store.resolve_contact("demo", Identity("telegram", "777", "777"))
            await store.merge_contacts(contact, other.id)
        finally:
            await store.close()

    asyncio.run(link_telegram())
    result = CliRunner().invoke(app, ["unlink", "--contact", contact, "--channel", "telegram", "--config", str(config)])
    assert result.exit_code == 0, result.output
    # (the output may also carry log lines, depending on how earlier tests configured logging)
    found = re.search(r"is now contact (ct_\w+)", result.output)
    assert found, result.output
    new_contact = found.group(1)

    async def identities() -> tuple[list[str], list[str]]:
        store = SQLiteStore(db_path)
        await store.open()
        try:
            old, new = await store.get_contact(contact), await store.get_contact(new_contact)
            assert old is not None and new is not None
            return [i.channel for i in old.identities], [i.channel for i in new.identities]
        finally:
            await store.close()

    assert asyncio.run(identities()) == (["webchat"], ["telegram"])
    assert any(action == "unlink" and actor.startswith("admin:") for action, actor in audit_actions(db_path))
    missing = CliRunner().invoke(app, ["unlink", "--contact", contact, "--channel", "whatsapp", "--config", str(config)])
    assert missing.exit_code == 1 and "no whatsapp identity" in missing.output
