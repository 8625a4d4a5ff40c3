"""Custom actions of the Hostwerk demo bot (config/demo), written with rasa-sdk.

``validate_order_status_form`` normalises and checks the order number (HW-123456);
``action_lookup_order`` looks it up in a small in-code order table and answers in the
conversation's language. ``validate_payment_form`` checks an IBAN (ISO 13616 mod 97) and
``action_save_payment`` "files" the direct-debit mandate: the ``iban`` slot is declared sensitive
in farm.yml, so Switchboard stores it encrypted, yet these actions see it as typed. All run
in-process or on a rasa-sdk action server alike.
"""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

ORDER_NUMBER = re.compile(r"\bHW[-\s]?(\d{6})\b", re.IGNORECASE)

# A stand-in for the order system: number -> product and status per language.
ORDERS: dict[str, dict[str, Any]] = {
    "HW-123456": {"product": "Webhosting Pro", "status": {
        "de": "bereitgestellt am 12. März, die Zugangsdaten haben wir per E-Mail geschickt",
        "en": "provisioned on 12 March; we've emailed you the login details"}},
    "HW-654321": {"product": "Managed Server M", "status": {
        "de": "in Bearbeitung, die Bereitstellung ist für morgen geplant",
        "en": "being set up; provisioning is scheduled for tomorrow"}},
    "HW-111222": {"product": "Domain hostwerk-kunde.de", "status": {
        "de": "wartet auf die Bestätigung der Registrierungsstelle (meist 1–2 Werktage)",
        "en": "waiting for the registry's confirmation (usually 1–2 business days)"}},
}


def normalise_order_number(text: str | None) -> str | None:
    """``hw 123456``, ``HW123456`` or ``Bestellung HW-123456`` → ``HW-123456``; None if absent."""
    if not text:
        return None
    match = ORDER_NUMBER.search(str(text))
    return f"HW-{match.group(1)}" if match else None


class ValidateOrderStatusForm(FormValidationAction):
    def name(self) -> str:
        return "validate_order_status_form"

    def validate_order_number(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict,
    ) -> dict[str, Any]:
        number = normalise_order_number(slot_value if isinstance(slot_value, str) else None)
        if number is None:
            dispatcher.utter_message(response="utter_invalid_order_number")
            return {"order_number": None}
        return {"order_number": number}


class ActionLookupOrder(Action):
    def name(self) -> str:
        return "action_lookup_order"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        number = normalise_order_number(tracker.get_slot("order_number"))
        language = tracker.get_slot("language") or "de"
        order = ORDERS.get(number or "")
        if order is None:
            dispatcher.utter_message(response="utter_order_not_found", order_number=number or "?")
        else:
            status = order["status"].get(language, order["status"]["en"])
            dispatcher.utter_message(response="utter_order_found", order_number=number, product=order["product"], status=status)
        return [SlotSet("order_number", None)]


IBAN = re.compile(r"\b([A-Z]{2}\d{2}(?:\s?[A-Z0-9]){11,30})\b", re.IGNORECASE)


def normalise_iban(text: str | None) -> str | None:
    """The IBAN in ``text`` without spaces, upper case, if its mod-97 check holds; else None."""
    match = IBAN.search(str(text or ""))
    if not match:
        return None
    iban = re.sub(r"\s", "", match.group(1)).upper()
    number = "".join(str(int(ch, 36)) for ch in iban[4:] + iban[:4])
    return iban if int(number) % 97 == 1 else None


class ValidatePaymentForm(FormValidationAction):
    def name(self) -> str:
        return "validate_payment_form"

    def validate_iban(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict,
    ) -> dict[str, Any]:
        iban = normalise_iban(slot_value if isinstance(slot_value, str) else None)
        if iban is None:
            dispatcher.utter_message(response="utter_invalid_iban")
        return {"iban": iban}


class ActionSavePayment(Action):
    def name(self) -> str:
        return "action_save_payment"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        iban = normalise_iban(tracker.get_slot("iban"))
        if iban is None:  # only a readable, valid IBAN gets this far; a masked one would not
            dispatcher.utter_message(response="utter_invalid_iban")
            return [SlotSet("iban", None)]
        bank_code = iban[4:12] if iban.startswith("DE") else iban[4:8]
        dispatcher.utter_message(response="utter_payment_saved", bank_code=bank_code, last4=iban[-4:])
        return []
