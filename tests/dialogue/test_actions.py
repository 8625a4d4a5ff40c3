"""Custom actions through rasa-sdk: in-process executor and the real rasa-sdk action server."""

from __future__ import annotations

import asyncio
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

from core.dialogue.actions import InProcessActions, RemoteActions, import_actions_package
from core.dialogue.engine import RasaEngine
from core.dialogue.testing import Conversator, actions_of
from core.errors import DialogueError
from tests.support.wait import eventually_sync

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
    own = InProcessActions(import_actions_package(handoff_project / "actions"))
    assert own.knows("action_escalate") and not own.knows("action_lookup_order")
    demo = InProcessActions(import_actions_package(ROOT / "actions"))
    assert demo.knows("action_lookup_order") and demo.knows("validate_order_status_form") and not demo.knows("action_escalate")


def test_demo_finds_its_actions_through_the_switchboard_actions_setting(demo_engine: RasaEngine) -> None:
    assert isinstance(demo_engine.runner, InProcessActions)
    assert demo_engine.runner.knows("action_lookup_order") and demo_engine.runner.knows("validate_order_status_form")


def _project(base: Path, name: str, files: dict[str, str], *, rules: str = "", domain_extra: str = "",
             config_extra: str = "") -> Path:
    """Moodbot with the given files (actions/...), extra rules, domain entries and config."""
    project = base / name
    shutil.copytree(MOODBOT, project, ignore=shutil.ignore_patterns(".switchboard-models", "actions"))
    for relative, text in files.items():
        target = project / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    if domain_extra:
        domain = (project / "domain.yml").read_text()
        (project / "domain.yml").write_text(domain.replace("responses:", textwrap.dedent(domain_extra).lstrip() + "\nresponses:"))
    if rules:
        path = project / "data" / "rules.yml"
        path.write_text(path.read_text() + textwrap.dedent(rules))
    if config_extra:
        path = project / "config.yml"
        path.write_text(path.read_text() + textwrap.dedent(config_extra))
    return project


def _whoami_project(base: Path, name: str, label: str) -> Path:
    """A bot answering "are you a bot?" with ``action_whoami``, which imports ``actions.labels``."""
    project = _project(base, name, {
        "actions/__init__.py": "",
        "actions/labels.py": f"LABEL = {label!r}\n",
        "actions/actions.py": """
            from rasa_sdk import Action

            from actions.labels import LABEL


            class ActionWhoAmI(Action):
                def name(self):
                    return "action_whoami"

                def run(self, dispatcher, tracker, domain):
                    dispatcher.utter_message(text=f"I am {LABEL}")
                    return []
            """,
    }, domain_extra="actions:\n  - action_whoami\n")
    rules = project / "data" / "rules.yml"
    rules.write_text(rules.read_text().replace("action: utter_iamabot", "action: action_whoami"))
    return project


async def test_project_actions_import_each_other_as_the_actions_package(tmp_path: Path) -> None:
    project = _whoami_project(tmp_path, "bot", "the parcel bot")
    engine = RasaEngine.load(project, bot="bot", languages=["en"], default_language="en", model_dir=tmp_path / "m")
    out = await Conversator(engine, "c1").say("are you a bot?")
    assert actions_of(out) == ["action_whoami"] and out.replies[0].text == "I am the parcel bot"


async def test_two_bots_in_one_process_each_run_their_own_actions_package(tmp_path: Path) -> None:
    first = RasaEngine.load(_whoami_project(tmp_path, "first", "bot one"), bot="first", languages=["en"],
                            default_language="en", model_dir=tmp_path / "m1")
    second = RasaEngine.load(_whoami_project(tmp_path, "second", "bot two"), bot="second", languages=["en"],
                             default_language="en", model_dir=tmp_path / "m2")
    one = await Conversator(first, "a").say("are you a bot?")
    two = await Conversator(second, "b").say("are you a bot?")
    assert (one.replies[0].text, two.replies[0].text) == ("I am bot one", "I am bot two")


GATED_ACTIONS = """
    import asyncio
    import threading

    from rasa_sdk import Action

    RELEASE = threading.Event()
    STARTED = threading.Event()


    class ActionSlow(Action):
        def name(self):
            return "action_slow"

        def run(self, dispatcher, tracker, domain):
            STARTED.set()
            RELEASE.wait(timeout=30)
            dispatcher.utter_message(text="done at last")
            return []


    class ActionHang(Action):
        def name(self):
            return "action_hang"

        async def run(self, dispatcher, tracker, domain):
            await asyncio.Event().wait()
            return []
    """


@pytest.fixture
def gated_project(tmp_path: Path) -> Path:
    return _project(tmp_path, "gated", {"actions/__init__.py": "", "actions/actions.py": GATED_ACTIONS},
                    domain_extra="actions:\n  - action_slow\n  - action_hang\n", rules="""
        - rule: slow when sad
          steps:
          - intent: mood_unhappy
          - action: action_slow
        - rule: hang on denial
          steps:
          - intent: deny
          - action: action_hang
        """, config_extra="\nswitchboard:\n  action_timeout: 10\n")


async def test_a_slow_synchronous_action_does_not_delay_another_conversation(gated_project: Path, tmp_path: Path) -> None:
    engine = RasaEngine.load(gated_project, bot="gated", languages=["en"], default_language="en", model_dir=tmp_path / "m")
    gate = sys.modules["actions.actions"]
    gate.RELEASE.clear()
    slow = asyncio.create_task(Conversator(engine, "slow").say("I am very sad"))
    try:
        assert await asyncio.to_thread(gate.STARTED.wait, 10)
        other = await Conversator(engine, "other").say("hello there")
        assert actions_of(other) == ["utter_greet"]
        assert not slow.done()  # the other customer was answered while the action still ran
    finally:
        gate.RELEASE.set()
    out = await slow
    assert actions_of(out) == ["action_slow"] and out.replies[-1].text == "done at last"
    await engine.close()


async def test_an_action_past_its_timeout_ends_the_turn_without_its_events(gated_project: Path, tmp_path: Path) -> None:
    config = gated_project / "config.yml"
    config.write_text(config.read_text().replace("action_timeout: 10", "action_timeout: 0.5"))
    engine = RasaEngine.load(gated_project, bot="gated", languages=["en"], default_language="en", model_dir=tmp_path / "m")
    started = time.monotonic()
    out = await Conversator(engine, "hang").say("no")
    assert 0.5 <= time.monotonic() - started < 10
    assert "action_hang" not in actions_of(out) and not out.replies
    assert actions_of(await Conversator(engine, "next").say("hello")) == ["utter_greet"]
    await engine.close()


def test_endpoints_yml_wins_by_default_and_in_process_can_be_forced(gated_project: Path, tmp_path: Path) -> None:
    (gated_project / "endpoints.yml").write_text('action_endpoint:\n  url: "http://127.0.0.1:9/webhook"\n')
    auto = RasaEngine.load(gated_project, bot="gated", languages=["en"], default_language="en", model_dir=tmp_path / "m")
    assert isinstance(auto.runner, RemoteActions) and auto.runner.url == "http://127.0.0.1:9/webhook"
    forced = RasaEngine.load(gated_project, bot="gated", languages=["en"], default_language="en",
                             model_dir=tmp_path / "m", actions="in-process")
    assert isinstance(forced.runner, InProcessActions) and forced.runner.knows("action_slow")


def test_endpoint_mode_without_an_endpoint_is_a_clear_error(gated_project: Path, tmp_path: Path) -> None:
    with pytest.raises(DialogueError, match="no action_endpoint in endpoints.yml"):
        RasaEngine.load(gated_project, bot="gated", languages=["en"], default_language="en",
                        model_dir=tmp_path / "m", actions="endpoint")


def test_an_actions_package_that_fails_to_import_names_its_file_and_line(tmp_path: Path) -> None:
    project = _project(tmp_path, "broken", {"actions/__init__.py": "", "actions/actions.py": "import os\nimport no_such_module\n"})
    with pytest.raises(DialogueError) as caught:
        RasaEngine.load(project, bot="broken", languages=["en"], default_language="en", model_dir=tmp_path / "m")
    assert f"{project / 'actions' / 'actions.py'}:2: ModuleNotFoundError" in str(caught.value)


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
        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                    return response.status == 200
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError(f"action server did not start: {process.stderr.read().decode() if process.stderr else ''}") from None
                return False

        eventually_sync(healthy, timeout=30, message="action server did not start")
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


@pytest.fixture
def demo_with_broken_package(tmp_path: Path) -> Path:
    """The demo bot whose in-process actions cannot even be imported: only an action server can run them."""
    project = tmp_path / "demo"
    shutil.copytree(DEMO, project, ignore=shutil.ignore_patterns(".switchboard-models"))
    (project / "broken").mkdir()
    (project / "broken" / "__init__.py").write_text("raise ImportError('this package must not be imported')\n")
    config = project / "config.yml"
    config.write_text(config.read_text().replace("actions: ../../actions", "actions: broken"))
    return project


def test_farm_action_endpoint_is_honoured_by_train_test_and_shell(
        action_server: str, demo_with_broken_package: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from core.cli import app

    farm = tmp_path / "farm.yml"
    farm.write_text(f"bots:\n  demo:\n    project: {demo_with_broken_package}\n    languages: [de, en]\n"
                    f"    default_language: de\n    action_endpoint: {action_server}\n")
    cli = CliRunner()
    trained = cli.invoke(app, ["train", "--bot", "demo", "--config", str(farm)])
    assert trained.exit_code == 0, trained.output
    tested = cli.invoke(app, ["test", "stories", "--bot", "demo", "--config", str(farm), "--mode", "intent",
                        "--fail-on-prediction-errors"])
    assert tested.exit_code == 0, tested.output
    chat = cli.invoke(app, ["shell", "--bot", "demo", "--config", str(farm)], input="Wo ist meine Bestellung?\nHW-123456\n")
    assert chat.exit_code == 0, chat.output
    assert "Bestellung HW-123456 (Webhosting Pro): bereitgestellt" in chat.output


def test_endpoints_yml_is_honoured_by_shell_and_in_process_is_refused_for_a_broken_package(
        action_server: str, demo_with_broken_package: Path) -> None:
    from typer.testing import CliRunner

    from core.cli import app

    (demo_with_broken_package / "endpoints.yml").write_text(f"action_endpoint:\n  url: {action_server}\n")
    cli = CliRunner()
    chat = cli.invoke(app, ["shell", "--project", str(demo_with_broken_package)], input="Wo ist meine Bestellung?\nHW-654321\n")
    assert chat.exit_code == 0, chat.output
    assert "Bestellung HW-654321 (Managed Server M)" in chat.output
    forced = cli.invoke(app, ["shell", "--project", str(demo_with_broken_package), "--actions", "in-process"], input="")
    assert forced.exit_code == 2
    assert "broken/__init__.py:1: ImportError: this package must not be imported" in forced.output
    assert "Traceback" not in forced.output
