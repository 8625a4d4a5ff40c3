"""Accuracy of the reply language chosen for a customer's first message, on short messages.

    .venv/bin/python bench/language_eval.py [--data tests/data/language_labelled.jsonl]
        [--project config/demo] [--languages de,en,tr] [--default de] [--out FILE] [--errors]

Each item of the labelled set (1–6 words, de/en/tr) is the first message of a new
conversation with the demo bot, so only the message and the platform's hint speak: the
choice is `RasaEngine.choose_language` (core/nlu/language_choice.py), exactly as a turn makes it.

Settings:
- ``no hint``: no platform hint (a web chat without browser languages, WhatsApp without a
  phone prior);
- ``hint``: the item's hint as the platform would send it (Telegram ``language_code`` or
  a browser's Accept-Language list); in 1 of 8 items the hint contradicts the message (a
  German speaker whose phone is set to English), as happens in real traffic;
- ``matching hint``: the hint is always the message's language.

Accuracy is reported over all items, over items of two or more words (the goal: ≥ 97 %
with hints, ≥ 90 % without, on two or more words), and over items that are not verbatim one
of the bot's NLU examples (the local model has seen the others).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from pathlib import Path
from typing import Any

import structlog

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.dialogue.engine import RasaEngine
from core.model import Conversation, Inbound

_WORD = re.compile(r"[^\W_]+(?:[-'][^\W_]+)*")


def words(text: str) -> int:
    return len(_WORD.findall(text))


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def choose(engine: RasaEngine, text: str, hint: str | None, n: int) -> str:
    message = Inbound(bot="demo", channel="bench", channel_user_id=f"u{n}", chat_id=f"u{n}",
                      platform_message_id=f"bench:{n}", text=text, language_hint=hint)
    conversation = Conversation(id=f"conv{n}", bot="demo", contact_id=f"c{n}")
    return engine.choose_language(message, conversation, None).language


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / "tests/data/language_labelled.jsonl")
    parser.add_argument("--project", type=Path, default=ROOT / "config/demo")
    parser.add_argument("--languages", default="de,en,tr")
    parser.add_argument("--default", default="de")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--errors", action="store_true", help="print every wrong choice")
    args = parser.parse_args(argv)

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    items = load(args.data)
    engine = RasaEngine.load(args.project, bot="demo", languages=args.languages.split(","),
                             default_language=args.default, validate=False)
    engine.detector.warm_up()
    seen = {e.text.lower().strip() for e in engine.project.nlu.examples}
    settings = {
        "no hint": lambda item: None,
        "hint": lambda item: item.get("hint"),
        "matching hint": lambda item: item["language"],
    }
    report: dict[str, Any] = {"items": len(items), "two_plus_words": sum(words(i["text"]) >= 2 for i in items),
                              "settings": {}}
    started = time.perf_counter()
    for name, hint_of in settings.items():
        right = right2 = total2 = right_unseen = total_unseen = 0
        per_lang: dict[str, list[int]] = {}
        errors = []
        for n, item in enumerate(items):
            got = choose(engine, item["text"], hint_of(item), n)
            ok = got == item["language"]
            right += ok
            stats = per_lang.setdefault(item["language"], [0, 0])
            stats[0] += ok
            stats[1] += 1
            if item["text"].lower().strip() not in seen:
                total_unseen += 1
                right_unseen += ok
            if words(item["text"]) >= 2:
                total2 += 1
                right2 += ok
            if not ok:
                errors.append({"text": item["text"], "language": item["language"], "hint": hint_of(item), "chosen": got})
        report["settings"][name] = {
            "accuracy": round(right / len(items), 4),
            "accuracy_two_plus_words": round(right2 / total2, 4) if total2 else None,
            "accuracy_not_in_nlu_examples": round(right_unseen / total_unseen, 4) if total_unseen else None,
            "per_language": {lang: round(a / b, 4) for lang, (a, b) in sorted(per_lang.items())},
            "errors": len(errors),
        }
        print(f"{name:14s} all {right}/{len(items)} = {right / len(items):.1%}   "
              f"2+ words {right2}/{total2} = {right2 / total2:.1%}   "
              f"not in NLU {right_unseen}/{total_unseen} = {right_unseen / max(1, total_unseen):.1%}   "
              + "  ".join(f"{lang} {a / b:.1%}" for lang, (a, b) in sorted(per_lang.items())))
        if args.errors:
            for error in errors:
                print("   ", json.dumps(error, ensure_ascii=False))
    report["ms_per_choice"] = round(1000 * (time.perf_counter() - started) / (len(items) * len(settings)), 2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
