"""Calibration benchmark: do the intent confidences mean something, and does Rasa's
FallbackClassifier (threshold 0.3, ambiguity_threshold 0.1) keep the right answers?

On a fine-grained intent set (BANKING77, 77 banking intents, bench/datasets/banking77)
and on CLINC150 (150 intents + out-of-scope queries), trains Switchboard's NLU on the
train split and reports, on the held-out test split:

- raw accuracy (top intent, no fallback);
- accuracy under the default fallback rule (top < 0.3 or top - second < 0.1 ->
  ``nlu_fallback``, counted as wrong), the fallback rate, and how many correct top
  intents the rule throws away;
- expected calibration error of the top confidence (15 equal-width bins);
- for CLINC150, the out-of-scope recall of the same rule (an OOS query is caught when
  it falls back);
- training time and one-message ``NluModel.parse`` latency (median, p99).

Each figure is given for the calibrated confidences (the classifier's temperature and
"none of these" margin) and for the mapping before calibration (plain softmax,
temperature 0.4) applied to the same trained SVM, so the two columns differ only in
the confidences.

    .venv/bin/python -m bench.nlu_calibration [--clinc DIR] [--out FILE] [--no-clinc]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import itertools
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from core.nlu.classifier import UNCALIBRATED, confidences
from core.nlu.model import FALLBACK_INTENT, NluModel
from core.rasa.nlu_data import Example, NluData

BANKING77 = Path(__file__).parent / "datasets" / "banking77"
DEFAULT_CLINC = Path("/work/shared/datasets/clinc150")
DEFAULT_OUT = Path(__file__).parent / "results" / "nlu_calibration.json"
THRESHOLD, AMBIGUITY = 0.3, 0.1
BINS = 15


def load_banking77(split: str) -> list[tuple[str, str]]:
    with gzip.open(BANKING77 / f"{split}.csv.gz", "rt", encoding="utf-8", newline="") as handle:
        return [(row["text"], row["category"]) for row in csv.DictReader(handle)]


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = BINS) -> float:
    """Sum over equal-width confidence bins of (bin share) x |mean confidence - accuracy|."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    error = 0.0
    for low, high in itertools.pairwise(edges):
        members = (confidence > low) & (confidence <= high)
        if members.any():
            error += float(members.mean()) * abs(float(confidence[members].mean()) - float(correct[members].mean()))
    return error


def falls_back(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(top confidence, FallbackClassifier verdict) per row, with the default thresholds."""
    ordered = np.sort(probs, axis=1)
    top, second = ordered[:, -1], ordered[:, -2]
    return top, (top < THRESHOLD) | (top - second < AMBIGUITY)


def evaluate(
    name: str, train: list[tuple[str, str]], test: list[tuple[str, str]], oos: list[str], *, min_df: int,
) -> dict[str, Any]:
    data = NluData(examples=[Example(text, intent) for text, intent in train])
    started = time.perf_counter()
    model = NluModel.train(data, entities=[], threshold=THRESHOLD, ambiguity_threshold=AMBIGUITY, min_df=min_df)
    train_seconds = time.perf_counter() - started
    classifier = model.classifier
    assert classifier is not None
    index = {label: i for i, label in enumerate(classifier.labels)}
    truth = np.array([index[intent] for _, intent in test])
    margins = classifier.margins_batch([text for text, _ in test])
    oos_margins = classifier.margins_batch(oos) if oos else None
    mapping = (classifier.temperature, classifier.reject_margin)

    result: dict[str, Any] = {
        "dataset": name, "intents": len(classifier.labels), "train_examples": len(train),
        "test_examples": len(test), "oos_test_examples": len(oos), "train_seconds": round(train_seconds, 2),
    }
    for key, (temperature, reject) in (("uncalibrated", UNCALIBRATED), ("calibrated", mapping)):
        probs = confidences(margins, temperature, reject)
        correct = probs.argmax(axis=1) == truth
        top, fallback = falls_back(probs)
        figures = {
            "temperature": temperature, "reject_margin": reject,
            "raw_accuracy": round(float(correct.mean()), 4),
            "accuracy_with_fallback": round(float((correct & ~fallback).mean()), 4),
            "fallback_rate": round(float(fallback.mean()), 4),
            "correct_but_fallback": round(float((correct & fallback).mean()), 4),
            "ece": round(expected_calibration_error(top, correct), 4),
            "mean_top_confidence": round(float(top.mean()), 4),
        }
        if oos_margins is not None:
            _, oos_fallback = falls_back(confidences(oos_margins, temperature, reject))
            figures["oos_recall"] = round(float(oos_fallback.mean()), 4)
        result[key] = figures

    messages = [text for text, _ in test] + oos
    for text in messages[:200]:  # warm-up
        model.parse(text)
    latencies, fallbacks = [], 0
    for text in messages:
        begin = time.perf_counter()
        parse = model.parse(text)
        latencies.append((time.perf_counter() - begin) * 1000)
        fallbacks += parse.intent == FALLBACK_INTENT
    latencies.sort()
    result.update(
        latency_ms_median=round(statistics.median(latencies), 4),
        latency_ms_p99=round(latencies[int(len(latencies) * 0.99) - 1], 4),
        parse_fallback_rate=round(fallbacks / len(messages), 4),
    )
    return result


def table(results: list[dict[str, Any]]) -> str:
    rows = [("", *(f"{r['dataset']} {k}" for r in results for k in ("before", "after")))]

    def line(label: str, key: str, percent: bool = True) -> None:
        cells = []
        for r in results:
            for column in ("uncalibrated", "calibrated"):
                value = r[column].get(key)
                cells.append("-" if value is None else (f"{100 * value:.1f} %" if percent else f"{value:.3f}"))
        rows.append((label, *cells))

    line("raw accuracy", "raw_accuracy")
    line("accuracy under (0.3, 0.1)", "accuracy_with_fallback")
    line("fallback rate", "fallback_rate")
    line("correct top intent -> fallback", "correct_but_fallback")
    line("OOS recall under (0.3, 0.1)", "oos_recall")
    line("ECE (15 bins)", "ece", percent=False)
    for label, key in (("training s", "train_seconds"), ("parse ms median", "latency_ms_median"), ("parse ms p99", "latency_ms_p99")):
        rows.append((label, *(f"{r[key]:.3g}" for r in results for _ in range(2))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))) for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clinc", type=Path, default=DEFAULT_CLINC, help="directory holding CLINC150's data_full.json")
    parser.add_argument("--no-clinc", action="store_true")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    results = [evaluate("BANKING77", load_banking77("train"), load_banking77("test"), [], min_df=1)]
    if not args.no_clinc:
        full = json.loads((args.clinc / "data_full.json").read_text(encoding="utf-8"))
        results.append(evaluate(
            "CLINC150", [(t, i) for t, i in full["train"]], [(t, i) for t, i in full["test"]],
            [t for t, _ in full["oos_test"]], min_df=2,
        ))
    report = {
        "fallback_rule": f"Rasa FallbackClassifier: top < {THRESHOLD} or top - second < {AMBIGUITY} -> nlu_fallback",
        "before": "same SVM, confidences = softmax(margin / 0.4) (the mapping before calibration)",
        "after": "confidences = softmax over margins / T plus a 'none of these' candidate at the reject margin",
        "results": results, "cpus": os.cpu_count(), "python": platform.python_version(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(table(results))
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
