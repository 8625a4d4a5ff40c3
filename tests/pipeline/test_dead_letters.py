"""A poison message ends as a dead letter, end to end through the web chat socket.

A custom action returns a slot value the store cannot encode (``Decimal``): the turn is
tried ``turns.max_attempts`` times with backoff, then the message is dead-lettered. The
customer gets one apology, the agents are told on the web desk (live stream and list) and
in the (fake) Slack channel, ``/metrics`` counts it, and another customer is answered
meanwhile. After the action is fixed, ``switchboard dead-letters replay`` gets the
customer the answer.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from typer.testing import CliRunner

from core.cli import app
from core.i18n import builtin
from tests.fakes.slack_api import AGENTS_CHANNEL, FakeSlackAPI
from tests.handoff.handoff_support import PASSWORDS, desk_config
from tests.support.farm import running_farm
from tests.support.webchat import receive

MOODBOT = Path(__file__).parents[1] / "rasa_projects" / "moodbot"
DESK = {"X-Desk-Request": "1"}

QUOTE_ACTIONS = '''
from decimal import Decimal
from pathlib import Path

from rasa_sdk import Action
from rasa_sdk.events import SlotSet

HERE = Path(__file__).parent


class ActionQuote(Action):
    def name(self):
        return "action_quote"

    def run(self, dispatcher, tracker, domain):
        with open(HERE / "runs.log", "a") as runs:
            runs.write("run\\n")
        if (HERE / "FIXED").exists():
            dispatcher.utter_message(text="Your quote is 9.99 EUR.")
            return [SlotSet("quote", "9.99")]
        dispatcher.utter_message(text="Your quote is ready.")
        return [SlotSet("quote", Decimal("9.99"))]
'''


@pytest.fixture(scope="module")
def quote_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Moodbot whose answer to "are you a bot?" is a custom action that sets a Decimal slot."""
    project = tmp_path_factory.mktemp("quote") / "bot"
    shutil.copytree(MOODBOT, project, ignore=shutil.ignore_patterns(".switchboard-models"))
    (project / "actions" / "actions.py").write_text(QUOTE_ACTIONS)
    domain = (project / "domain.yml").read_text().replace(
        "responses:", "slots:\n  quote:\n    type: any\n    mappings:\n    - type: custom\n\n"
        "actions:\n  - action_quote\n\nresponses:")
    (project / "domain.yml").write_text(domain)
    rules = (project / "data" / "rules.yml").read_text().replace("action: utter_iamabot", "action: action_quote")
    (project / "data" / "rules.yml").write_text(rules)
    return project




async def say(ws: aiohttp.ClientWebSocketResponse, frame_id: str, text: str) -> None:
    await ws.send_json({"type": "message", "id": frame_id, "text": text})


async def connect(http: aiohttp.ClientSession, url: str) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(f"{url}/chat/mood/ws")
    await ws.send_json({"type": "hello", "session": None})
    await receive(ws, "welcome")
    await receive(ws, "history")
    return ws


async def messages(ws: aiohttp.ClientWebSocketResponse, quiet: float = 0.5) -> list[str]:
    """Texts of the message frames until the socket is quiet for ``quiet`` seconds."""
    texts = []
    while True:
        try:
            frame = await asyncio.wait_for(ws.receive_json(), timeout=quiet)
        except TimeoutError:
            return texts
        if frame["type"] == "message":
            texts.append(frame["text"])


async def next_desk_event(stream: aiohttp.ClientResponse, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            line = (await stream.content.readline()).decode().strip()
            if line.startswith("data: "):
                item = json.loads(line[6:])
                if item["type"] == kind:
                    return dict(item)


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


async def test_poison_message_is_dead_lettered_told_once_and_replayed_after_the_fix(
    tmp_path: Path, quote_project: Path, slack: FakeSlackAPI
) -> None:
    bots = {"mood": {"project": str(quote_project), "languages": ["en"], "default_language": "en",
                     "channels": {"webchat": {}}}}
    desk = desk_config()
    desk["web"]["agents"][0]["bots"] = ["mood"]
    desk["slack"] = {"enabled": True, "bot_token": slack.bot_token, "signing_secret": "s", "channel": AGENTS_CHANNEL,
                     "agents": ["U0AGENT"], "api_base": slack.url}
    async with running_farm(tmp_path, bots=bots, desk=desk) as farm, \
            aiohttp.ClientSession() as http, \
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as agent:
        farm.farm.turns.config = farm.config.turns.model_copy(  # quick retries for the test
            update={"max_attempts": 3, "backoff_initial": 0.05, "backoff_max": 0.2})
        async with agent.post(f"{farm.url}/desk/api/login", json={"agent": "anna", "password": PASSWORDS["anna"]},
                              headers=DESK) as response:
            assert response.status == 200
        stream = await agent.get(f"{farm.url}/desk/api/stream")
        poisoned, other = await connect(http, farm.url), await connect(http, farm.url)

        await say(poisoned, "p1", "are you a bot?")
        await say(other, "o1", "hello")
        # The other customer is answered while the poison message backs off between attempts.
        [greeting] = await messages(other)
        assert greeting.endswith("Hey! How are you?")  # after the automated-assistant disclosure
        told = await next_desk_event(stream, "dead_letter")
        await farm.farm.settle()
        assert await messages(poisoned) == [builtin()["en"]["unprocessable"]]
        assert (quote_project / "actions" / "runs.log").read_text().count("run") == 3

        # Agents are told: on the web desk (live event above, and the list) and in Slack.
        async with agent.get(f"{farm.url}/desk/api/dead-letters") as response:
            [letter] = (await response.json())["dead_letters"]
        assert letter["id"] == told["id"] and letter["text"] == "are you a bot?" and letter["attempts"] == 3
        assert "Decimal" in letter["error"]
        [posted] = [m for m in slack.posted(AGENTS_CHANNEL) if "could not be processed" in m["text"]]
        assert f"dead-letters replay {letter['id']}" in posted["text"] and "The customer was told." in posted["text"]
        async with http.get(f"{farm.url}/metrics") as response:
            exposition = await response.text()
        assert 'switchboard_dead_letters_total{bot="mood"} 1.0' in exposition
        assert "\nswitchboard_dead_letters_waiting 1.0" in exposition

        # The conversation is not blocked: its next message is answered.
        await say(poisoned, "p2", "hello")
        await farm.farm.settle()
        [greeting] = await messages(poisoned)
        assert greeting.endswith("Hey! How are you?")

        # The action is fixed; an operator replays the dead letter from the command line.
        (quote_project / "actions" / "FIXED").write_text("")
        listed = await asyncio.to_thread(cli, "dead-letters", "list", "--json", "--config", str(farm.config_path))
        assert listed.exit_code == 0, listed.output
        [row] = [json.loads(line) for line in listed.stdout.splitlines() if line.startswith("{")]
        assert (row["id"], row["text"], row["attempts"]) == (letter["id"], "are you a bot?", 3)
        replayed = await asyncio.to_thread(cli, "dead-letters", "replay", str(row["id"]),
                                           "--config", str(farm.config_path))
        assert replayed.exit_code == 0, replayed.output
        await farm.farm.settle()
        assert await messages(poisoned) == ["Your quote is 9.99 EUR."]
        assert await farm.store.dead_letters() == []
        again = await asyncio.to_thread(cli, "dead-letters", "replay", str(row["id"]),
                                        "--config", str(farm.config_path))
        assert again.exit_code == 1
        stream.close()


async def test_a_dead_letter_can_be_dropped_from_the_web_desk(tmp_path: Path, quote_project: Path) -> None:
    bots = {"mood": {"project": str(quote_project), "languages": ["en"], "default_language": "en",
                     "channels": {"webchat": {}}}}
    (quote_project / "actions" / "FIXED").unlink(missing_ok=True)
    async with running_farm(tmp_path, bots=bots, desk=desk_config()) as farm, \
            aiohttp.ClientSession() as http, \
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as agent:
        farm.farm.turns.config = farm.config.turns.model_copy(update={"max_attempts": 1})
        customer = await connect(http, farm.url)
        await say(customer, "p1", "are you a bot?")
        await farm.farm.settle()
        assert await messages(customer) == [builtin()["en"]["unprocessable"]]
        async with agent.post(f"{farm.url}/desk/api/login", json={"agent": "ben", "password": PASSWORDS["ben"]},
                              headers=DESK) as response:
            assert response.status == 200
        async with agent.get(f"{farm.url}/desk/api/dead-letters") as response:
            [letter] = (await response.json())["dead_letters"]
        async with agent.post(f"{farm.url}/desk/api/dead-letters/{letter['id']}/drop", headers=DESK) as response:
            assert response.status == 200
        async with agent.get(f"{farm.url}/desk/api/dead-letters") as response:
            assert (await response.json())["dead_letters"] == []
        async with agent.post(f"{farm.url}/desk/api/dead-letters/{letter['id']}/replay", headers=DESK) as response:
            assert response.status == 404
        [entry] = [a for a in await farm.store.audit_log() if a.action == "dead_letter.drop"]
        assert entry.actor == "web:ben"
        await farm.farm.settle()
        assert await messages(customer) == []
