"""Custom actions through rasa-sdk: in-process executor and the real rasa-sdk action server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.dialogue.actions import InProcessActions, import_actions_package
from core.dialogue.engine import RasaEngine
from core.dialogue.testing import Conversator, actions_of

ROOT = Path(__file__).parents[2]
DEMO = ROOT / "config" / "demo"
MOODBOT = ROOT / "tests" / "rasa_projects" / "moodbot"

HANDOFF_ACTIONS = '''
from rasa_sdk import Action
from rasa_sdk.events import SlotSet


class ActionEscalate(Action):
    def name(self):
        return "action_escalate"

    def run(self, dispatcher, tracker, domain):
        seen = [e["event"] for e in tracker.events]
        dispatcher.utter_message(text=f"escalating; latest intent {tracker.latest_message['intent']['name']}; saw {seen.count('user')} user events")
        return [SlotSet("reason", "angry"), {"event": "handoff", "reason": "customer is angry"}]
'''


@pytest.fixture(scope="module")
def handoff_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Moodbot plus an ``actions/`` package whose action asks for a person."""
    project = tmp_path_factory.mktemp("escalate") / "bot"
    shutil.copytree(MOODBOT, project, ignore=shutil.ignore_patterns(".switchboard-models"))
    (project / "actions" / "actions.py").write_text(HANDOFF_ACTIONS)
    domain = (project / "domain.yml").read_text()
    domain = domain.replace("responses:", "slots:\n  reason:\n    type: text\n    mappings:\n    - type: custom\n\nactions:\n  - action_escalate\n\nresponses:")
    (project / "domain.yml").write_text(domain)
    rules = project / "data" / "rules.yml"
    rules.write_text(rules.read_text() + textwrap.dedent("""
        - rule: Escalate unhappy customers
          steps:
          - intent: mood_unhappy
          - action: action_escalate
        """))
    return project


async def test_in_process_action_sees_a_rasa_sdk_tracker_and_can_request_handoff(handoff_project: Path, tmp_path: Path) -> None:
    engine = RasaEngine.load(handoff_project, bot="esc", languages=["en"], default_language="en", model_dir=tmp_path)
    talk = Conversator(engine, "esc-1")
    await talk.say("hello")
    out = await talk.say("I am sad")
    assert actions_of(out) == ["action_escalate"]
    assert out.replies[0].text == "escalating; latest intent mood_unhappy; saw 2 user events"
    assert out.handoff is not None and (out.handoff.reason, out.handoff.detail) == ("action", "customer is angry")
    assert out.conversation.slots["reason"] == "angry"


def test_only_the_projects_own_actions_are_registered(handoff_project: Path) -> None:
    demo_module = import_actions_package(DEMO, "actions.demo")
    assert demo_module is not None
    own = InProcessActions(import_actions_package(handoff_project, None))  # type: ignore[arg-type]
    assert own.knows("action_escalate") and not own.knows("action_lookup_order")
    demo = InProcessActions(demo_module)
    assert demo.knows("action_lookup_order") and demo.knows("validate_order_status_form") and not demo.knows("action_escalate")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SERVER = """
import sys
from rasa_sdk.endpoint import create_app
from rasa_sdk.executor import ActionExecutor
executor = ActionExecutor()
executor.register_package("actions.demo")
app = create_app(executor)
app.run(host="127.0.0.1", port=int(sys.argv[1]), single_process=True, access_log=False, motd=False)
"""


@pytest.fixture(scope="module")
def action_server() -> Iterator[str]:
    """The real rasa-sdk (sanic) action server with the demo's actions, on a free local port."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port)], cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"action server did not start: {process.stderr.read().decode() if process.stderr else ''}") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/webhook"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


async def test_demo_order_form_runs_against_the_remote_rasa_sdk_action_server(action_server: str) -> None:
    engine = RasaEngine.load(DEMO, bot="demo", languages=["de", "en"], default_language="de", action_endpoint=action_server)
    try:
        talk = Conversator(engine, "remote-1")
        ask = await talk.say("Wo ist meine Bestellung?")
        assert actions_of(ask) == ["order_status_form"]
        bad = await talk.say("weiß ich nicht mehr genau, 4711")
        assert [r.response for r in bad.replies] == ["utter_invalid_order_number", "utter_ask_order_number"]
        good = await talk.say("HW-123456")
        assert actions_of(good) == ["order_status_form", "action_lookup_order"]
        assert good.replies[-1].text.startswith("Bestellung HW-123456 (Webhosting Pro): bereitgestellt")
    finally:
        await engine.close()


async def test_unknown_remote_action_is_logged_and_the_turn_ends(action_server: str) -> None:
    from core.dialogue.actions import RemoteActions
    from core.errors import DialogueError

    runner = RemoteActions(action_server)
    try:
        with pytest.raises(DialogueError, match="has no action 'action_missing'"):
            await runner.run("action_missing", {"sender_id": "x", "events": [], "slots": {}}, {"forms": {}})
    finally:
        await runner.close()
