"""The assistant's pure parts: which response answers an intent (rules first, then stories,
then ``utter_<intent>``), the customer's previous cases, the one-line summary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.desk import HandoffSummary
from core.handoff.assist import intent_responses, one_line_summary, previous_cases
from core.model import Contact, Conversation, ConversationStatus, Event
from core.rasa.stories import load_story_file

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_a_rule_wins_over_a_story_and_a_custom_action_is_no_suggestion(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text("""
version: "3.1"
rules:
- rule: hours
  steps:
  - intent: opening_hours
  - action: utter_opening_hours
- rule: order
  steps:
  - intent: order_status
  - action: order_status_form
stories:
- story: hours again
  steps:
  - intent: opening_hours
  - action: utter_hours_short
  - or:
    - intent: thanks
    - intent: affirm
  - action: utter_thanks
""", encoding="utf-8")
    stories = load_story_file(rules)
    found = intent_responses(stories, {"utter_opening_hours", "utter_hours_short", "utter_thanks", "utter_greet"})
    assert found["opening_hours"] == "utter_opening_hours"
    assert found["thanks"] == found["affirm"] == "utter_thanks"
    assert found["greet"] == "utter_greet"  # by name, no rule needed
    assert "order_status" not in found


def test_previous_cases_are_the_closed_handoffs_newest_first_with_agent_and_rating() -> None:
    events = [
        Event("handoff", {"reason": "requested"}, timestamp=at(0)),
        Event("status", {"status": "agent", "agent_name": "Anna Schmidt"}, timestamp=at(1)),
        Event("status", {"status": "closed", "agent_name": "Anna Schmidt"}, timestamp=at(5)),
        Event("csat", {"score": 4, "agent_name": "Anna Schmidt"}, timestamp=at(6)),
        Event("handoff", {"reason": "frustration"}, timestamp=at(60)),
        Event("bot", {"text": "Hallo", "metadata": {"author": "agent", "author_name": "Ben Wolf"}}, timestamp=at(61)),
        Event("status", {"status": "bot", "agent_name": "Ben Wolf"}, timestamp=at(62)),
        Event("handoff", {"reason": "requested"}, timestamp=at(120)),  # open now: not a previous case
        Event("status", {"status": "agent", "agent_name": "Carl"}, timestamp=at(121)),
    ]
    cases = previous_cases(events)
    assert [(c.reason, c.agents, c.rating) for c in cases] == [
        ("frustration", ("Ben Wolf",), None), ("requested", ("Anna Schmidt",), 4)]
    assert cases[1].ended == at(5)


def test_the_summary_says_what_the_customer_wants_and_what_the_bot_did() -> None:
    conversation = Conversation(id="c1", bot="demo", contact_id="k1", status=ConversationStatus.WAITING,
                                slots={"order_number": "HW-123", "language": "de"})
    events = [
        Event("user", {"text": "Wann habt ihr offen?", "parse_data": {"intent": {"name": "opening_hours"}}}),
        Event("bot", {"text": "8-18 Uhr", "metadata": {"utter_action": "utter_opening_hours"}}),
        Event("action", {"name": "action_lookup_order"}),
        Event("user", {"text": "Ich will einen Menschen", "parse_data": {"intent": {"name": "human_handoff"}}}),
    ]
    summary = HandoffSummary(conversation=conversation, contact=Contact(id="k1", bot="demo"), channel="webchat",
                             reason="requested", intent="human_handoff", slots=dict(conversation.slots),
                             trigger_text="Ich will einen Menschen", topic="opening_hours")
    line = one_line_summary(summary, events)
    assert line == ("Wants: opening_hours (“Ich will einen Menschen”); asked about opening_hours; "
                    "bot answered opening_hours; bot ran action_lookup_order; known: order_number=HW-123; "
                    "handed off: requested")
