"""Dialogue policy benchmark: training time and per-action prediction latency.

For each project (the demo bot and the largest project under ``tests/rasa_projects/``,
by number of story and rule steps) it trains the policy ensemble config.yml asks for
(rules, memoization, the ML policy for TEDPolicy), without the model cache, and then
replays every training story and every test story step by step, timing one
``PolicyEnsemble.predict(state)`` per action (the call the live turn and
``test stories`` make). A made-up project of 300 random stories shows training at
scale. It also times whole demo-bot turns (``RasaEngine.handle``,
NLU included) as the farm runs them.

    .venv/bin/python -m bench.dialogue_policies [--out FILE] [--project DIR ...]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from core import logging as sb_logging
from core.dialogue.dialogue_model import build_ensemble, nlu_intent_of, read_policies
from core.dialogue.ensemble import PolicyEnsemble
from core.dialogue.state import DialogueState
from core.dialogue.training import RULE_SNIPPET, Tracker, rule_trackers, story_trackers
from core.nlu.model import NluModel, load_or_train
from core.rasa.project import RasaProject, load_project
from core.rasa.stories import load_story_file

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "config" / "demo"
PROJECTS = ROOT / "tests" / "rasa_projects"
DEFAULT_OUT = Path(__file__).parent / "results" / "dialogue_policies.json"
ROUNDS = 10


def size(project: RasaProject) -> int:
    blocks = [*project.stories.stories, *project.stories.rules]
    return sum(len(b.steps) for b in blocks)


def largest_test_project() -> Path | None:
    candidates = [p for p in sorted(PROJECTS.iterdir()) if (p / "domain.yml").exists() or (p / "domain").exists()] if PROJECTS.is_dir() else []
    return max(candidates, key=lambda p: size(load_project(p)), default=None)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def prediction_latencies(project: RasaProject, ensemble: PolicyEnsemble, nlu: NluModel) -> list[float]:
    intent_of = nlu_intent_of(nlu.parse)
    stories = list(project.stories.stories)
    for path in project.test_files:
        stories.extend(load_story_file(path, display=project.display(path)).stories)
    trackers = story_trackers(stories, project.domain, intent_of=intent_of)
    trackers += [t for t in rule_trackers(project.stories.rules, project.domain, intent_of=intent_of)]
    timings: list[float] = []
    gc.collect()
    gc.disable()  # the collector's pauses are the process's, not the policies'
    try:
        for _ in range(ROUNDS):
            timings.extend(_replay(trackers, project, ensemble))
    finally:
        gc.enable()
    return timings


def _replay(trackers: list[Tracker], project: RasaProject, ensemble: PolicyEnsemble) -> list[float]:
    timings: list[float] = []
    for tracker in trackers:
        state = DialogueState.initial(project.domain)
        for event in tracker.events:
            if event.type == "action" and event.data.get("name") != RULE_SNIPPET:
                started = time.perf_counter()
                ensemble.predict(state)
                timings.append(time.perf_counter() - started)
            state.apply(event)
    return timings


def bench_project(root: Path) -> dict[str, Any]:
    project = load_project(root)
    nlu, _ = load_or_train(project.nlu, fingerprint=project.nlu_fingerprint(), model_dir=root / ".switchboard-models",
                           entities=project.domain.entities, threshold=project.config.fallback_threshold,
                           ambiguity_threshold=project.config.ambiguity_threshold)
    started = time.perf_counter()
    ensemble, _ = build_ensemble(project, intent_of=nlu_intent_of(nlu.parse), model_dir=None)
    training = time.perf_counter() - started
    timings = prediction_latencies(project, ensemble, nlu)
    settings = read_policies(project.config.policies)
    return {
        "project": str(root.relative_to(ROOT)) if root.is_relative_to(ROOT) else str(root),
        "stories": len(project.stories.stories), "rules": len(project.stories.rules), "steps": size(project),
        "policies": [p.get("name") for p in project.config.policies] or ["(Rasa defaults)"],
        "ml_policy": settings.ml is not None,
        "training_seconds": round(training, 3),
        "predictions": len(timings),
        "predict_median_us": round(statistics.median(timings) * 1e6, 1),
        "predict_p99_us": round(percentile(timings, 0.99) * 1e6, 1),
    }


def bench_synthetic(stories: int, seed: int = 1) -> dict[str, Any]:
    """A made-up project of ``stories`` random stories (40 intents, 60 responses, 3-6 turns): training at scale."""
    import random

    from core.rasa.domain import parse_domain
    from core.rasa.nlu_data import NluData
    from core.rasa.project import ProjectConfig
    from core.rasa.stories import parse_story_doc
    from core.rasa.yamlio import parse_yaml

    rng = random.Random(seed)
    intents = [f"intent_{n}" for n in range(40)]
    actions = [f"utter_{n}" for n in range(60)]
    domain_text = "intents: [" + ", ".join(intents) + "]\nresponses:\n" + "".join(f"  {a}: [{{text: x}}]\n" for a in actions)
    domain = parse_domain(parse_yaml(domain_text, file="domain.yml"), file="domain.yml")
    lines = ["stories:"]
    for number in range(stories):
        lines.append(f"- story: story {number}\n  steps:")
        for _ in range(rng.randint(3, 6)):
            lines.append(f"  - intent: {rng.choice(intents)}")
            lines.extend(f"  - action: {rng.choice(actions)}" for _ in range(rng.randint(1, 2)))
    data = parse_story_doc(parse_yaml("\n".join(lines), file="stories.yml"), file="stories.yml")
    policies = ({"name": "MemoizationPolicy"}, {"name": "RulePolicy"}, {"name": "TEDPolicy"})
    project = RasaProject(root=ROOT, domain=domain, config=ProjectConfig(policies=policies), nlu=NluData(), stories=data)
    started = time.perf_counter()
    ensemble, _ = build_ensemble(project, intent_of=None, model_dir=None)
    training = time.perf_counter() - started
    gc.collect()
    gc.disable()
    try:
        timings = [t for _ in range(2) for t in _replay(story_trackers(data.stories, domain), project, ensemble)]
    finally:
        gc.enable()
    return {"project": f"synthetic ({stories} stories)", "stories": stories, "rules": 0, "steps": size(project),
            "training_seconds": round(training, 3), "predictions": len(timings),
            "predict_median_us": round(statistics.median(timings) * 1e6, 1),
            "predict_p99_us": round(percentile(timings, 0.99) * 1e6, 1)}


async def demo_turns() -> dict[str, Any]:
    from core.dialogue.engine import RasaEngine
    from core.dialogue.testing import Conversator

    engine = RasaEngine.load(DEMO, bot="demo", languages=["de", "en"], default_language="de", seed=1)
    script = ["Hallo", "Wo ist meine Bestellung?", "HW-12", "Was kostet der Pro-Tarif?", "HW-123456", "danke",
              "Wie sind eure Öffnungszeiten?", "tschüss"]
    timings: list[float] = []
    gc.collect()
    gc.disable()
    for round_ in range(20):
        talk = Conversator(engine, f"bench-{round_}")
        for text in script:
            started = time.perf_counter()
            await talk.say(text)
            timings.append(time.perf_counter() - started)
    gc.enable()
    return {"turns": len(timings), "turn_median_ms": round(statistics.median(timings) * 1e3, 3),
            "turn_p99_ms": round(percentile(timings, 0.99) * 1e3, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--project", type=Path, action="append", help="project directories (default: demo + largest test project)")
    parser.add_argument("--synthetic", type=int, default=300, help="stories of the made-up scale project (0: skip)")
    args = parser.parse_args()
    sb_logging.configure("warning")  # the engine logs every turn at info: the figures would drown
    projects: list[Path] = args.project or [p for p in (DEMO, largest_test_project()) if p is not None]
    results = {
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine()},
        "projects": [bench_project(p) for p in projects] + ([bench_synthetic(args.synthetic)] if args.synthetic else []),
        "demo_turns": asyncio.run(demo_turns()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    for row in results["projects"]:
        print(f"{row['project']}: {row['stories']} stories, {row['rules']} rules; training {row['training_seconds']} s; "
              f"predict median {row['predict_median_us']} µs, p99 {row['predict_p99_us']} µs over {row['predictions']} actions")
    turns = results["demo_turns"]
    print(f"demo bot turns (NLU + dialogue + actions): median {turns['turn_median_ms']} ms, p99 {turns['turn_p99_ms']} ms")


if __name__ == "__main__":
    main()
