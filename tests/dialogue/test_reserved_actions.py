"""A project's own actions win over built-ins of the same name; Switchboard's built-ins are namespaced."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from core.dialogue.engine import RasaEngine
from core.dialogue.testing import Conversator, actions_of

ROOT = Path(__file__).parents[2]
MOODBOT = ROOT / "tests" / "rasa_projects" / "moodbot"

OWN_ACTIONS = '''
from rasa_sdk import Action
from rasa_sdk.events import ActionExecuted, SessionStarted, SlotSet


class ActionSessionStart(Action):
    def name(self):
        return "action_session_start"

    def run(self, dispatcher, tracker, domain):
        dispatcher.utter_message(text="our own session start")
        return [SessionStarted(), SlotSet("tier", "gold"), ActionExecuted("action_listen")]


class ActionHandoff(Action):
    def name(self):
        return "action_handoff"

    def run(self, dispatcher, tracker, domain):
        dispatcher.utter_message(text=f"our own handoff for a {tracker.get_slot('tier')} customer")
        return []
'''


@pytest.fixture(scope="module")
def own_actions_engine(tmp_path_factory: pytest.TempPathFactory) -> RasaEngine:
    project = tmp_path_factory.mktemp("reserved") / "bot"
    shutil.copytree(MOODBOT, project, ignore=shutil.ignore_patterns(".switchboard-models"))
    (project / "actions" / "actions.py").write_text(OWN_ACTIONS)
    domain = (project / "domain.yml").read_text().replace("  - bot_challenge\n", "  - bot_challenge\n  - human_handoff\n", 1)
    domain = domain.replace("responses:", "slots:\n  tier:\n    type: text\n    influence_conversation: false\n"
                            "    mappings:\n    - type: custom\n\nactions:\n  - action_session_start\n  - action_handoff\n\nresponses:")
    (project / "domain.yml").write_text(domain)
    nlu = project / "data" / "nlu.yml"
    nlu.write_text(nlu.read_text() + textwrap.dedent("""
        - intent: human_handoff
          examples: |
            - I want a human
            - let me talk to a person
            - connect me to an agent
            - a real person please
        """))
    rules = project / "data" / "rules.yml"
    rules.write_text(rules.read_text() + textwrap.dedent("""
        - rule: A person
          steps:
          - intent: human_handoff
          - action: action_handoff
        """))
    (project / "config.yml").write_text((project / "config.yml").read_text() + "\nswitchboard:\n  handoff_intents: []\n")
    return RasaEngine.load(project, bot="own", languages=["en"], default_language="en", seed=3)


async def test_projects_own_session_start_runs_instead_of_the_default(own_actions_engine: RasaEngine) -> None:
    out = await Conversator(own_actions_engine, "own-1").say("hello")
    assert out.replies[0].text == "our own session start"
    assert out.conversation.slots["tier"] == "gold"
    assert actions_of(out) == ["utter_greet"]


async def test_projects_own_action_handoff_runs_and_is_not_the_builtin(own_actions_engine: RasaEngine) -> None:
    talk = Conversator(own_actions_engine, "own-2")
    await talk.say("hello")
    out = await talk.say("I want a human")
    assert actions_of(out) == ["action_handoff"]
    assert out.replies[-1].text == "our own handoff for a gold customer"
    assert out.handoff is None


async def test_demo_builtin_handoff_is_namespaced(demo_engine: RasaEngine) -> None:
    out = await Conversator(demo_engine, "ns-1").say("I'd like to speak to a real person")
    assert actions_of(out) == ["action_switchboard_handoff"]
    assert out.handoff is not None and out.handoff.reason == "requested"

