"""Precision / recall / F1 of `frustration_score` on the labelled set, at a threshold.

    .venv/bin/python bench/frustration_eval.py [--threshold 0.7] [--split test|dev|all]
        [--data tests/data/frustration_labelled.jsonl] [--out bench/results/frustration.json]
        [--errors]

Every 3rd item (index % 3 == 2) is the test split; weights were set on the rest (dev).
The figures reported are those of the test split unless ``--split`` says otherwise. A
threshold sweep over the dev split is written too, to justify the configured default.

Figures at 0.7 on the 339-item set (issue 15 added 90 realistic items: polite closings
said twice, a question again after "Danke, tschüss", re-sent answers, forwarded texts,
"zum zweiten Mal probiert, jetzt klappt es", plus 30 frustrated ones), before -> after
the issue-15 scorer (before = core/handoff at 6d78663):

    test split (n=113)  precision 0.776 -> 0.974   recall 0.717 -> 0.717   F1 0.745 -> 0.826
    all items  (n=339)  precision 0.791 -> 0.992   recall 0.827 -> 0.827   F1 0.809 -> 0.902
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.handoff.config import HandoffConfig
from core.handoff.frustration import frustration_score


@dataclass(frozen=True)
class Item:
    text: str
    lang: str
    frustrated: bool
    history: tuple[str, ...]


def load(path: Path) -> list[Item]:
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            raw = json.loads(line)
            items.append(Item(raw["text"], raw["lang"], bool(raw["frustrated"]), tuple(raw.get("history", ()))))
    return items


def split(items: list[Item], name: str) -> list[Item]:
    if name == "all":
        return items
    want_test = name == "test"
    return [it for i, it in enumerate(items) if (i % 3 == 2) == want_test]


def metrics(items: list[Item], scores: list[float], threshold: float) -> dict[str, Any]:
    tp = fp = fn = tn = 0
    for item, score in zip(items, scores, strict=True):
        predicted = score >= threshold
        if predicted and item.frustrated:
            tp += 1
        elif predicted:
            fp += 1
        elif item.frustrated:
            fn += 1
        else:
            tn += 1
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "n": len(items), "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        "precision": round(precision, 3), "recall": round(recall, 3), "f1": round(f1, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threshold", type=float, default=HandoffConfig().frustration_threshold)
    parser.add_argument("--split", choices=("test", "dev", "all"), default="test")
    parser.add_argument("--data", type=Path, default=ROOT / "tests/data/frustration_labelled.jsonl")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/frustration.json")
    parser.add_argument("--errors", action="store_true", help="print misclassified items")
    args = parser.parse_args(argv)

    items = load(args.data)
    chosen = split(items, args.split)
    scores = [frustration_score(it.text, it.history).score for it in chosen]
    report: dict[str, Any] = {
        "data": str(args.data.relative_to(ROOT) if args.data.is_relative_to(ROOT) else args.data),
        "split": args.split,
        "threshold": args.threshold,
        "overall": metrics(chosen, scores, args.threshold),
        "by_language": {},
    }
    for lang in sorted({it.lang for it in chosen}):
        idx = [i for i, it in enumerate(chosen) if it.lang == lang]
        report["by_language"][lang] = metrics([chosen[i] for i in idx], [scores[i] for i in idx], args.threshold)
    dev = split(items, "dev")
    dev_scores = [frustration_score(it.text, it.history).score for it in dev]
    report["dev_threshold_sweep"] = {
        f"{t / 20:.2f}": metrics(dev, dev_scores, t / 20)["f1"] for t in range(8, 19)
    }

    started = time.perf_counter()
    rounds = 20
    for _ in range(rounds):
        for it in items:
            frustration_score(it.text, it.history)
    report["microseconds_per_call"] = round((time.perf_counter() - started) / (rounds * len(items)) * 1e6, 1)

    overall = report["overall"]
    print(f"frustration @ {args.threshold} on {args.split} split (n={overall['n']}): "
          f"precision {overall['precision']:.3f}  recall {overall['recall']:.3f}  f1 {overall['f1']:.3f}")
    for lang, m in report["by_language"].items():
        print(f"  {lang}: n={m['n']} precision {m['precision']:.3f} recall {m['recall']:.3f} f1 {m['f1']:.3f}")
    print("  dev F1 by threshold: " + ", ".join(f"{k}={v:.2f}" for k, v in report["dev_threshold_sweep"].items()))
    print(f"  frustration_score: {report['microseconds_per_call']} µs per call (mean over the whole set)")
    if args.errors:
        for item, score in zip(chosen, scores, strict=True):
            if (score >= args.threshold) != item.frustrated:
                kind = "FN" if item.frustrated else "FP"
                print(f"  {kind} {score:.2f} [{item.lang}] {item.text}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
