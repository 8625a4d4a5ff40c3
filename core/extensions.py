"""Plugs the handoff, privacy and desk layers into a farm's turns and routes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.farm import Farm


def install(farm: Farm) -> None:
    """Called once by `Farm.start` after adapters are built and before routes are mounted."""
    from core.handoff.wiring import install_handoff

    install_handoff(farm)
