"""CPU time per turn of the Rasa engine alone (the demo project, no HTTP, no store).

    python -m bench.engine_turns [--turns 600] [--rounds 3] [--against DIR]

One conversation of the benchmark's demo texts, its transcript fed back as the history
window the turn runner passes (the last 60 events), timed with the process's CPU clock,
so a busy machine disturbs it far less than the HTTP benchmark. ``--against DIR`` runs
the same measurement in another checkout (its own code and demo project), alternating
with this one, and prints both (medians over ``--rounds``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HISTORY = 60  # core.pipeline.turns.HISTORY_LIMIT
WARMUP_TURNS = 50

# The measurement runs in a child process per checkout: two versions of `core` cannot share one.
_CHILD = """
import asyncio, logging, sys, time
from pathlib import Path
import structlog
logging.disable(logging.CRITICAL)
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
from bench.load import DEMO_TEXTS
from core.dialogue.engine import RasaEngine
from core.engine import TurnInput
from core.model import Contact, Conversation, Event, Inbound

engine = RasaEngine.load(Path("config/demo"), bot="bench", languages=["en"], default_language="en")

async def conversation(turns):
    contact = Contact(id="c1", bot="bench")
    conv = Conversation(id="v1", bot="bench", contact_id="c1")
    history, seq = [], 0
    for i in range(turns):
        message = Inbound(bot="bench", channel="telegram", channel_user_id="u1", chat_id="u1",
                          platform_message_id=f"telegram:{i}", text=DEMO_TEXTS[i % len(DEMO_TEXTS)],
                          language_hint="en")
        out = await engine.handle(TurnInput(conv, contact, message, history[-HISTORY:]))
        conv = out.conversation
        for e in out.events:
            seq += 1
            history.append(Event(e.type, e.data, e.channel or "telegram", e.timestamp, seq=seq))

asyncio.run(conversation(WARMUP))
turns = int(sys.argv[1])
started = time.process_time()
asyncio.run(conversation(turns))
print((time.process_time() - started) / turns * 1e6)
"""


def measure(root: Path, turns: int) -> float:
    """Microseconds of CPU per turn in the checkout ``root``."""
    code = _CHILD.replace("HISTORY", str(HISTORY)).replace("WARMUP", str(WARMUP_TURNS))
    done = subprocess.run([sys.executable, "-c", code, str(turns)], cwd=root, check=True, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(root)})
    return float(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict[str, list[float]]:
    parser = argparse.ArgumentParser(prog="python -m bench.engine_turns", description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--against", type=Path, default=None, help="another checkout, measured alternately")
    args = parser.parse_args(argv)
    trees = {"this": ROOT} | ({"against": args.against.resolve()} if args.against else {})
    results: dict[str, list[float]] = {name: [] for name in trees}
    for round_ in range(args.rounds):
        for name, root in (list(trees.items()) if round_ % 2 == 0 else list(trees.items())[::-1]):
            results[name].append(measure(root, args.turns))
    for name, root in trees.items():
        runs = ", ".join(f"{r:.0f}" for r in results[name])
        print(f"{name} ({root}): median {statistics.median(results[name]):.0f} µs CPU per turn (runs: {runs})")
    return results


if __name__ == "__main__":
    main()
