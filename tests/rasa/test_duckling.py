"""DucklingEntityExtractor against a fake Duckling server that answers Duckling's JSON."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.dialogue.engine import RasaEngine
from core.dialogue.testing import Conversator
from core.nlu.duckling import DucklingExtractor, duckling_from_pipeline
from tests.fakes.duckling import FakeDuckling

MOODBOT = Path(__file__).parents[1] / "rasa_projects" / "moodbot"


@pytest.fixture
def duckling() -> Iterator[FakeDuckling]:
    with FakeDuckling() as server:
        yield server


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_entities_carry_rasa_values_and_the_duckling_extractor_name(duckling: FakeDuckling) -> None:
    extractor = DucklingExtractor(url=duckling.url, timezone="Europe/Berlin")
    text = "Send 20 euros to ann@example.com tomorrow, we are 4"
    entities = extractor.extract(text, reference_time=1_700_000_000)
    by_dim = {e["entity"]: e for e in entities}
    assert set(by_dim) == {"amount-of-money", "email", "time", "number"}
    assert all(e["extractor"] == "DucklingEntityExtractor" and e["confidence"] == 1.0 for e in entities)
    money = by_dim["amount-of-money"]
    assert (money["value"], money["text"], text[money["start"]:money["end"]]) == (20, "20 euros", "20 euros")
    assert money["additional_info"] == {"value": 20, "type": "value", "unit": "EUR"}
    assert by_dim["email"]["value"] == "ann@example.com"
    assert by_dim["time"]["value"] == "2023-11-15T00:00:00.000+01:00"
    assert by_dim["number"]["value"] == 4


def test_request_is_form_encoded_as_rasa_sends_it(duckling: FakeDuckling) -> None:
    extractor = DucklingExtractor(url=duckling.url, dimensions=("number",), locale="de_DE", timezone="Europe/Berlin")
    assert [e["value"] for e in extractor.extract("3 Gäste, 12 Euro", reference_time=1_700_000_000.7)] == [3]
    sent = duckling.requests[-1]
    assert sent["_path"] == "/parse" and sent["_content_type"].startswith("application/x-www-form-urlencoded")
    assert (sent["text"], sent["locale"], sent["tz"], json.loads(sent["dims"]), sent["reftime"]) == (
        "3 Gäste, 12 Euro", "de_DE", "Europe/Berlin", ["number"], "1700000000000")


def test_unset_locale_and_timezone_are_not_sent_and_dims_is_null(duckling: FakeDuckling) -> None:
    DucklingExtractor(url=duckling.url).extract("hi")
    sent = duckling.requests[-1]
    assert "locale" not in sent and "tz" not in sent and sent["dims"] == "null"


def test_an_interval_becomes_from_and_to(duckling: FakeDuckling) -> None:
    [weekend] = DucklingExtractor(url=duckling.url, timezone="UTC").extract("this weekend", reference_time=1_700_000_000)
    assert weekend["value"] == {"from": "2023-11-17T18:00:00.000+00:00", "to": "2023-11-20T00:00:00.000+00:00"}


def test_config_reads_url_dimensions_locale_timezone_and_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RASA_DUCKLING_HTTP_URL", raising=False)
    pipeline = [{"name": "WhitespaceTokenizer"}, {"name": "DucklingEntityExtractor", "url": "http://d:8000",
                                                   "dimensions": ["time"], "locale": "en_GB", "timezone": "UTC", "timeout": 1}]
    assert duckling_from_pipeline(pipeline) == DucklingExtractor("http://d:8000", ("time",), "en_GB", "UTC", 1.0)
    monkeypatch.setenv("RASA_DUCKLING_HTTP_URL", "http://other:8000")
    assert (duckling_from_pipeline(pipeline) or DucklingExtractor("")).url == "http://other:8000"
    assert duckling_from_pipeline([{"name": "DIETClassifier"}]) is None


def test_a_stalled_server_costs_at_most_the_timeout(duckling: FakeDuckling) -> None:
    duckling.stall()
    started = time.monotonic()
    assert DucklingExtractor(url=duckling.url, timeout=0.3).extract("4 people") == []
    assert time.monotonic() - started < 3


def _project(tmp_path: Path, url: str) -> Path:
    project = tmp_path / "bot"
    shutil.copytree(MOODBOT, project, ignore=shutil.ignore_patterns(".switchboard-models"))
    config = (project / "config.yml").read_text().replace("pipeline: null", (
        "pipeline:\n  - name: WhitespaceTokenizer\n  - name: CountVectorsFeaturizer\n  - name: DIETClassifier\n"
        f"  - name: DucklingEntityExtractor\n    url: {url}\n    dimensions: [number]\n    timezone: Europe/Berlin\n"
        "  - name: FallbackClassifier\n    threshold: 0.3\n"))
    (project / "config.yml").write_text(config)
    domain = (project / "domain.yml").read_text().replace("responses:", (
        "entities:\n  - number\n\nslots:\n  guests:\n    type: float\n    mappings:\n    - type: from_entity\n"
        "      entity: number\n\nresponses:"))
    (project / "domain.yml").write_text(domain)
    return project


async def test_duckling_entities_reach_the_turn_and_fill_slots(duckling: FakeDuckling, tmp_path: Path) -> None:
    engine = RasaEngine.load(_project(tmp_path, duckling.url), bot="d", languages=["en"], default_language="en",
                             model_dir=tmp_path / "m")
    out = await Conversator(engine, "c").say("hello, we are 4")
    user = next(e for e in out.events if e.type == "user")
    assert [(e["entity"], e["value"], e["extractor"]) for e in user.data["parse_data"]["entities"]] == [
        ("number", 4, "DucklingEntityExtractor")]
    assert out.conversation.slots["guests"] == 4
    assert duckling.requests[-1]["text"] == "hello, we are 4"


async def test_an_unreachable_server_gives_no_entities_a_warning_and_the_turn_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    engine = RasaEngine.load(_project(tmp_path, f"http://127.0.0.1:{_closed_port()}"), bot="d", languages=["en"],
                             default_language="en", model_dir=tmp_path / "m")
    with caplog.at_level(logging.WARNING):
        out = await Conversator(engine, "c").say("hello, we are 4")
    assert [r.text for r in out.replies] == ["Hey! How are you?"]
    assert out.conversation.slots.get("guests") is None
    assert "nlu.duckling_unreachable" in caplog.text
