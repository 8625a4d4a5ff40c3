"""Helpers the actions import as ``from actions.parsing import ...`` (a submodule of the project's package)."""

import re

ORDER_NUMBER = re.compile(r"\d{5}")


def normalise_order_number(raw):
    """The five digits of an order number, or None."""
    if raw is None:
        return None
    match = ORDER_NUMBER.search(str(raw))
    return match.group(0) if match else None
