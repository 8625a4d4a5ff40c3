from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.parsing import normalise_order_number

SHIPPED = {"12345", "54321"}


class ActionLookupOrder(Action):
    def name(self) -> str:
        return "action_lookup_order"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        number = normalise_order_number(tracker.get_slot("order_number"))
        status = "shipped" if number in SHIPPED else "unknown"
        return [SlotSet("order_number", number), SlotSet("order_status", status)]
