"""Precision / recall per class of the handoff trigger on "what are you?" vs "I want a person".

    .venv/bin/python bench/identity_eval.py [--split all|test|dev] [--nlu]
        [--round 1|2] [--data tests/data/identity_labelled.jsonl] [--out bench/results/identity.json] [--errors]

Each labelled message is ``identity`` (asks what answers: "Bist du ein Mensch?"),
``person`` (wants a person: "Ich will einen Menschen sprechen") or ``neither``.

Without ``--nlu`` the trigger alone is measured: ``person`` when `asks_for_human` fires
(the interceptor hands over at once), ``identity`` when `asks_what_i_am` does (the
customer gets the honest answer), else ``neither``. A trigger without `asks_what_i_am`
(the code before issue 15) never predicts ``identity``.

With ``--nlu`` the whole decision is measured with the demo bot's NLU behind the
trigger, as a customer meets it: handed over (trigger, or NLU intent ``human_handoff``)
= ``person``; honest answer (trigger's identity class, or NLU intent ``bot_challenge``)
= ``identity``; anything else = ``neither``.

Every 3rd item (index % 3 == 2) is the test split, as in `bench/frustration_eval.py`.
Items with ``"round": 2`` were written after the identity patterns were, and never used
to tune them: ``--round 2`` measures on those alone (the honest held-out figure).

Figures (trigger alone; before = core/handoff at 6d78663, which had no identity class):

    all 211 items      accuracy 0.564 -> 1.000; identity questions handed over 51 -> 0;
                       requests for a person not handed over 2 -> 0
                       person precision 0.566 -> 1.000, recall 0.972 -> 1.000
    round 2 (54 items, first run of the patterns, before any fix from them):
                       accuracy 0.500 -> 0.815; identity questions handed over 10 -> 3 (of 24);
                       person precision 0.586 -> 0.783, recall 0.944 -> 1.000; identity recall
                       0 -> 0.667 (after fixing those misses: 1.000 / 1.000 / 1.000)
    with the demo NLU behind the trigger (--nlu, all items): identity recall 0.386 -> 1.000,
                       person precision 0.559 -> 0.959

Round 1 was tuned on and round 2's misses were fixed after that first run, so 1.000 on
this set is an upper bound; expect misses on phrasings not in it (they fall to the NLU).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.handoff import triggers
from core.handoff.config import HandoffConfig

LABELS = ("identity", "person", "neither")


@dataclass(frozen=True)
class Item:
    text: str
    lang: str
    label: str
    round: int = 1


def load(path: Path) -> list[Item]:
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            raw = json.loads(line)
            if raw["label"] not in LABELS:
                raise ValueError(f"{path}: unknown label {raw['label']!r}")
            items.append(Item(raw["text"], raw["lang"], raw["label"], int(raw.get("round", 1))))
    return items


def split(items: list[Item], name: str) -> list[Item]:
    if name == "all":
        return items
    want_test = name == "test"
    return [it for i, it in enumerate(items) if (i % 3 == 2) == want_test]


def per_class(items: list[Item], predicted: list[str]) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for label in LABELS:
        tp = sum(p == label and it.label == label for it, p in zip(items, predicted, strict=True))
        fp = sum(p == label and it.label != label for it, p in zip(items, predicted, strict=True))
        fn = sum(p != label and it.label == label for it, p in zip(items, predicted, strict=True))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        report[label] = {"n": tp + fn, "tp": tp, "fp": fp, "fn": fn, "precision": round(precision, 3),
                         "recall": round(recall, 3), "f1": round(f1, 3)}
    report["accuracy"] = round(sum(p == it.label for it, p in zip(items, predicted, strict=True)) / len(items), 3)
    # The costly mistakes: an identity question handed over, a request for a person not handed over.
    report["identity_handed_over"] = sum(it.label == "identity" and p == "person"
                                         for it, p in zip(items, predicted, strict=True))
    report["person_not_handed_over"] = sum(it.label == "person" and p != "person"
                                           for it, p in zip(items, predicted, strict=True))
    return report


def trigger_classifier(words: list[str]) -> Callable[[str], str]:
    asks_what_i_am: Callable[[str], bool] | None = getattr(triggers, "asks_what_i_am", None)

    def classify(text: str) -> str:
        if triggers.asks_for_human(text, words):
            return "person"
        if asks_what_i_am is not None and asks_what_i_am(text):
            return "identity"
        return "neither"

    return classify


def nlu_classifier(words: list[str]) -> Callable[[str], str]:
    from core.dialogue.engine import RasaEngine

    engine = RasaEngine.load(ROOT / "config" / "demo", bot="demo", languages=["de", "en"],
                             default_language="de", seed=7)
    trigger = trigger_classifier(words)

    def classify(text: str) -> str:
        decided = trigger(text)
        if decided != "neither":
            return decided
        intent = engine.understand(text).intent
        return {"human_handoff": "person", "bot_challenge": "identity"}.get(intent or "", "neither")

    return classify


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--split", choices=("test", "dev", "all"), default="all")
    parser.add_argument("--data", type=Path, default=ROOT / "tests/data/identity_labelled.jsonl")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--round", type=int, default=None, help="only the items of this writing round")
    parser.add_argument("--nlu", action="store_true", help="the demo bot's NLU behind the trigger")
    parser.add_argument("--errors", action="store_true", help="print misclassified items")
    args = parser.parse_args(argv)
    out = args.out or ROOT / f"bench/results/identity{'_nlu' if args.nlu else ''}.json"

    words = HandoffConfig().request_words
    classify = nlu_classifier(words) if args.nlu else trigger_classifier(words)
    chosen = [it for it in split(load(args.data), args.split) if args.round is None or it.round == args.round]
    predicted = [classify(it.text) for it in chosen]
    report: dict[str, Any] = {
        "data": str(args.data.relative_to(ROOT) if args.data.is_relative_to(ROOT) else args.data),
        "split": args.split, "round": args.round, "mode": "trigger+nlu" if args.nlu else "trigger",
        "has_identity_class": hasattr(triggers, "asks_what_i_am"),
        "overall": per_class(chosen, predicted), "by_language": {},
    }
    for lang in sorted({it.lang for it in chosen}):
        idx = [i for i, it in enumerate(chosen) if it.lang == lang]
        report["by_language"][lang] = per_class([chosen[i] for i in idx], [predicted[i] for i in idx])

    every = load(args.data)
    started = time.perf_counter()
    rounds = 20
    for _ in range(rounds):
        for it in every:
            triggers.asks_for_human(it.text, words)
    report["asks_for_human_microseconds"] = round((time.perf_counter() - started) / (rounds * len(every)) * 1e6, 1)
    asks_what_i_am: Callable[[str], bool] | None = getattr(triggers, "asks_what_i_am", None)
    if asks_what_i_am is not None:
        started = time.perf_counter()
        for _ in range(rounds):
            for it in every:
                asks_what_i_am(it.text)
        report["asks_what_i_am_microseconds"] = round(
            (time.perf_counter() - started) / (rounds * len(every)) * 1e6, 1)

    overall = report["overall"]
    scope = f"{args.split} split" + (f", round {args.round}" if args.round else "")
    print(f"identity vs person ({report['mode']}) on {scope} (n={len(chosen)}): "
          f"accuracy {overall['accuracy']:.3f}; identity questions handed over {overall['identity_handed_over']}, "
          f"requests for a person not handed over {overall['person_not_handed_over']}")
    for label in LABELS:
        m = overall[label]
        print(f"  {label:8s} n={m['n']:3d} precision {m['precision']:.3f} recall {m['recall']:.3f} f1 {m['f1']:.3f}")
    for lang, by in report["by_language"].items():
        print(f"  {lang}: " + "  ".join(f"{label} P {by[label]['precision']:.2f} R {by[label]['recall']:.2f}"
                                        for label in LABELS))
    print(f"  asks_for_human: {report['asks_for_human_microseconds']} µs per call (mean over the whole set)"
          + (f"; asks_what_i_am: {report['asks_what_i_am_microseconds']} µs" if asks_what_i_am else ""))
    if args.errors:
        for item, guess in zip(chosen, predicted, strict=True):
            if guess != item.label:
                print(f"  {item.label} -> {guess} [{item.lang}] {item.text}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
