"""Canned replies in farm.yml (``desk.canned``): checked at start like everything else."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import load_farm_config
from core.errors import ConfigError
from tests.support.farm import write_config


def test_canned_replies_load_from_farm_yml_with_bot_and_language(tmp_path: Path) -> None:
    path = write_config(tmp_path, desk={"canned": [
        {"title": "Rücksendung", "text": "30 Tage Rückgaberecht.", "bot": "demo", "language": "de"},
        {"title": "Thanks", "text": "Thank you!"},
    ]})
    canned = load_farm_config(path).desk.canned
    assert [(c.title, c.bot, c.language) for c in canned] == [("Rücksendung", "demo", "de"), ("Thanks", None, None)]


def test_a_canned_reply_without_text_is_a_config_error(tmp_path: Path) -> None:
    path = write_config(tmp_path, desk={"canned": [{"title": "Leer"}]})
    with pytest.raises(ConfigError, match="canned"):
        load_farm_config(path)
