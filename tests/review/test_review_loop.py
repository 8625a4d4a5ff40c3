"""The review loop through the public doors: customers on the web chat, the desk's HTTP API,
and the ``switchboard review | check | forget`` commands on the farm's own files."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path

import aiohttp
import yaml
from typer.testing import CliRunner, Result

from core.cli import app
from core.model import Identity
from tests.handoff.handoff_support import Customer, conversation_of, csat_payload, service
from tests.review.support import GIBBERISH, desk_login, review_farm, review_service
from tests.support.farm import RunningFarm

CARD = "4111 1111 1111 1111"
WRITE = {"X-Desk-Request": "1"}


def session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # keeps the desk cookie of 127.0.0.1


async def cli(*args: str) -> Result:
    """``switchboard ...`` beside the running farm (its own event loop, in a thread)."""
    return await asyncio.to_thread(CliRunner().invoke, app, list(args))


async def a_bad_case(farm: RunningFarm, http: aiohttp.ClientSession, *, rating: int) -> Customer:
    """A customer the bot does not understand, who asks for a person and rates the case."""
    customer = await Customer.connect(http, farm.url)
    await customer.say(f"{GIBBERISH} meine Karte {CARD}")
    await customer.say("Hallo")
    await customer.say("Wo ist meine Bestellung?")
    await customer.say("ich will mit einem Menschen sprechen")
    await farm.farm.settle()
    conversation = await conversation_of(farm, customer)
    await service(farm).claim(conversation.id, "web:anna", "Anna")
    await service(farm).close(conversation.id, "web:anna", "Anna")
    await farm.farm.settle()
    await customer.press(csat_payload(rating), str(rating))
    await farm.farm.settle()
    return customer


async def test_fallback_handoff_and_low_rated_messages_are_queued_masked(tmp_path: Path) -> None:
    async with review_farm(tmp_path) as (farm, _), session() as http:
        await a_bad_case(farm, http, rating=2)
        await desk_login(http, farm.url, "anna")
        async with http.get(f"{farm.url}/desk/api/review?bot=demo") as response:
            assert response.status == 200
            page = await response.json()
    by_text = {item["text"]: item for item in page["items"]}
    fallback = next(item for text, item in by_text.items() if text.startswith(GIBBERISH))
    assert CARD not in fallback["text"] and "•••• 1111" in fallback["text"]  # masked as everywhere
    assert set(fallback["reasons"]) == {"fallback", "low_rating"} and fallback["predicted_intent"] == "nlu_fallback"
    assert set(by_text["ich will mit einem Menschen sprechen"]["reasons"]) == {"handoff", "low_rating"}
    assert by_text["ich will mit einem Menschen sprechen"]["handoff_reason"] == "requested"
    assert by_text["Wo ist meine Bestellung?"]["reasons"] == ["low_rating"]
    assert by_text["Wo ist meine Bestellung?"]["rating"] == 2
    assert page["can_label"] is True and "order_status" in page["intents"]


async def test_a_well_rated_case_queues_only_what_the_bot_failed(tmp_path: Path) -> None:
    async with review_farm(tmp_path) as (farm, _), session() as http:
        await a_bad_case(farm, http, rating=5)
        items = await review_service(farm).queue("demo")
    assert sorted(tuple(sorted(i.reasons)) for i in items) == [("fallback",), ("handoff",)]


async def test_low_confidence_follows_the_configured_threshold(tmp_path: Path) -> None:
    async with review_farm(tmp_path, confidence_threshold=1.0) as (farm, _), session() as http:
        customer = await Customer.connect(http, farm.url)
        await customer.say("Wo ist meine Bestellung?")
        await farm.farm.settle()
        (item,) = await review_service(farm).queue("demo")
    assert item.reasons == ("low_confidence",) and item.predicted_intent == "order_status"


async def test_only_a_lead_labels_and_any_agent_flags(tmp_path: Path) -> None:
    async with review_farm(tmp_path) as (farm, project), session() as lead, \
            session() as agent:
        customer = await Customer.connect(lead, farm.url)
        await customer.say("Hallo")
        await farm.farm.settle()
        conversation = await conversation_of(farm, customer)
        await desk_login(agent, farm.url, "ben")
        async with agent.post(f"{farm.url}/desk/api/review/flag", json={"conversation": conversation.id, "seq": None},
                              headers=WRITE) as response:
            assert response.status == 200, await response.text()
            flagged = (await response.json())["item"]
        assert flagged["text"] == "Hallo" and flagged["reasons"] == ["flagged"]
        async with agent.post(f"{farm.url}/desk/api/review/items/{flagged['id']}", json={"intent": "greet"},
                              headers=WRITE) as response:
            assert response.status == 403
        await desk_login(lead, farm.url, "anna")
        async with lead.post(f"{farm.url}/desk/api/review/items/{flagged['id']}", json={"intent": "no_such_intent"},
                             headers=WRITE) as response:
            assert response.status == 400
        async with lead.post(f"{farm.url}/desk/api/review/items/{flagged['id']}", json={"intent": "greet"}) as response:
            assert response.status == 403  # no X-Desk-Request: a cross-site form cannot label
        async with lead.post(f"{farm.url}/desk/api/review/items/{flagged['id']}", json={"intent": "greet"},
                             headers=WRITE) as response:
            assert response.status == 200
            assert (await response.json())["item"]["label"] == "greet"
    written = yaml.safe_load((project / "data" / "review" / "demo.yml").read_text(encoding="utf-8"))
    assert written == {"version": "3.1", "nlu": [{"intent": "greet", "examples": "- Hallo\n"}]}


async def test_export_import_writes_rasa_yaml_that_check_accepts(tmp_path: Path) -> None:
    async with review_farm(tmp_path) as (farm, project), session() as http:
        await a_bad_case(farm, http, rating=1)
        config = str(farm.config_path)
        exported = await cli("review", "export", "--bot", "demo", "--config", config)
        assert exported.exit_code == 0, exported.output
        rows = list(csv.DictReader(io.StringIO(exported.stdout)))
        assert {r["text"] for r in rows} >= {"Wo ist meine Bestellung?", "ich will mit einem Menschen sprechen"}
        for row in rows:  # labelled elsewhere, e.g. in a spreadsheet
            row["label"] = {"Wo ist meine Bestellung?": "order_status", "Hallo": "greet",
                            "ich will mit einem Menschen sprechen": "human_handoff"}.get(row["text"], "out_of_scope")
            row["holdout"] = "yes" if row["text"] == "Hallo" else ""
        labelled = tmp_path / "labelled.csv"
        with labelled.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        imported = await cli("review", "import", str(labelled), "--bot", "demo", "--config", config)
        assert imported.exit_code == 0, imported.output
        assert f"{len(rows)} labelled (0 new), 0 skipped" in imported.stdout
        more = tmp_path / "more.yml"
        more.write_text('version: "3.1"\nnlu:\n- intent: order_status\n  examples: |\n    - wo bleibt mein Päckchen\n',
                        encoding="utf-8")
        imported = await cli("review", "import", str(more), "--bot", "demo", "--config", config)
        assert imported.exit_code == 0 and "1 labelled (1 new), 0 skipped" in imported.stdout
        as_yaml = await cli("review", "export", "--bot", "demo", "--config", config, "--format", "yaml")
        checked = await cli("check", "--config", config)
    labels = yaml.safe_load((project / "data" / "review" / "demo.yml").read_text(encoding="utf-8"))
    assert labels["version"] == "3.1"
    assert {block["intent"]: block["examples"] for block in labels["nlu"]} == {
        "human_handoff": "- ich will mit einem Menschen sprechen\n",
        "order_status": "- Wo ist meine Bestellung?\n- wo bleibt mein Päckchen\n",
    }
    heldout = yaml.safe_load((project / "tests" / "review" / "demo_nlu.yml").read_text(encoding="utf-8"))
    assert heldout == {"version": "3.1", "nlu": [{"intent": "greet", "examples": "- Hallo\n"}]}  # never trained on
    assert {block["intent"] for block in yaml.safe_load(as_yaml.stdout)["nlu"]} == {
        "greet", "human_handoff", "order_status"}
    assert checked.exit_code == 0, checked.output
    assert "review/demo.yml" not in checked.output  # not even a warning


async def test_forget_empties_the_review_queue_of_that_customer(tmp_path: Path) -> None:
    async with review_farm(tmp_path) as (farm, _), session() as http:
        forgotten = await a_bad_case(farm, http, rating=2)
        kept = await Customer.connect(http, farm.url)
        await kept.say(GIBBERISH)
        await farm.farm.settle()
        (contact,) = await farm.store.find_contacts("demo", identity=Identity("webchat", forgotten.session,
                                                                              forgotten.session))
        assert len(await review_service(farm).queue("demo")) == 5
        result = await cli("forget", "--contact", contact.id, "--config", str(farm.config_path), "--yes")
        assert result.exit_code == 0, result.output
        items = await review_service(farm).queue("demo", status=None)
        listed = await cli("review", "list", "--bot", "demo", "--config", str(farm.config_path))
        kept_contact = (await conversation_of(farm, kept)).contact_id
    assert [i.contact_id for i in items] == [kept_contact]
    assert "Wo ist meine Bestellung" not in listed.stdout and "1 item(s)" in listed.output
