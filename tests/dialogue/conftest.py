from __future__ import annotations

from pathlib import Path

import pytest

from core.dialogue.engine import RasaEngine

ROOT = Path(__file__).parents[2]
DEMO = ROOT / "config" / "demo"


@pytest.fixture(scope="session")
def demo_engine() -> RasaEngine:
    """The demo bot, trained once (cached in config/demo/.switchboard-models)."""
    return RasaEngine.load(DEMO, bot="demo", languages=["de", "en"], default_language="de", seed=7)
