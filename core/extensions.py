"""Plugs the handoff, privacy and desk layers into a farm's turns and routes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.farm import Farm


def install(farm: Farm) -> None:
    """Called once by `Farm.start` after adapters are built and before routes are mounted.

    Order matters: the handoff interceptor comes first (a request for a person works
    from any state), then privacy puts link codes in front of it and the disclosure
    last among the post-processors.
    """
    from core.handoff.wiring import install_handoff
    from core.privacy.install import install as install_privacy

    install_handoff(farm)
    install_privacy(farm)
