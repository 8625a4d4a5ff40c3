"""The review labels as files: Rasa NLU YAML (``data/review/<bot>.yml``) and CSV, both ways.

The YAML is what ``switchboard train`` reads from the project's ``data/`` (any depth) and
what ``switchboard check`` validates: ``version: "3.1"``, one ``- intent:`` block per intent
and language, its examples as a literal block. Customer text cannot carry Rasa's entity
annotation syntax into the file: square brackets become round ones.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.errors import ConfigError
from core.rasa.nlu_data import NluData, load_nlu_file
from core.store.ports.review import ReviewItem, ReviewStatus

CSV_FIELDS = ("id", "bot", "text", "reasons", "predicted_intent", "confidence", "status", "label", "holdout")
OUT_OF_SCOPE = "out_of_scope"  # the CSV's label for "not the bot's business"


def example_text(text: str) -> str:
    """``text`` as one line of a Rasa examples block: no annotation, no line breaks, nothing YAML refuses."""
    printable = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(printable.replace("[", "(").replace("]", ")").split())


def nlu_yaml(examples: Iterable[tuple[str, str, str | None]], *, comment: str = "") -> str:
    """Rasa 3.x NLU YAML for (text, intent, language) triples, grouped by intent and language."""
    groups: dict[tuple[str, str | None], list[str]] = {}
    for text, intent, language in examples:
        line = example_text(text)
        if line and line not in groups.setdefault((intent, language), []):
            groups[(intent, language)].append(line)
    out = [f"# {comment}"] if comment else []
    out += ['version: "3.1"', "nlu:" if groups else "nlu: []"]
    for (intent, language), lines in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        out.append(f"- intent: {intent}")
        if language:
            out.append(f"  metadata:\n    language: {json.dumps(language)}")
        out.append("  examples: |")
        out += [f"    - {line}" for line in lines]
    return "\n".join(out) + "\n"


def labelled_examples(items: Iterable[ReviewItem], *, holdout: bool) -> list[tuple[str, str, str | None]]:
    """(text, intent, language) of the labelled items, oldest first (a new label appends to a file)."""
    return [(i.text, i.label, i.language) for i in sorted(items, key=lambda i: (i.created_at, i.id))
            if i.status is ReviewStatus.LABELLED and i.label and i.holdout == holdout]


def write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` (creating its folder) unless it already holds it; whether it wrote."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return True


def nlu_data(examples: Sequence[tuple[str, str, str | None]]) -> NluData:
    """Examples as `NluData` (what ``switchboard test nlu`` evaluates)."""
    from core.rasa.nlu_data import Example

    return NluData(examples=[Example(text=example_text(t), intent=i, language=lang) for t, i, lang in examples])


# -- CSV ------------------------------------------------------------------------------------
def to_csv(items: Iterable[ReviewItem]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for item in items:
        label = OUT_OF_SCOPE if item.status is ReviewStatus.OUT_OF_SCOPE else (item.label or "")
        writer.writerow({
            "id": item.id, "bot": item.bot, "text": item.text, "reasons": " ".join(item.reasons),
            "predicted_intent": item.predicted_intent or "",
            "confidence": "" if item.confidence is None else f"{item.confidence:.4f}",
            "status": item.status.value, "label": label, "holdout": "yes" if item.holdout else "",
        })
    return buffer.getvalue()


@dataclass(frozen=True, slots=True)
class ImportedLabel:
    """One label from a file: for the queue item ``id`` if the file names it, else matched by ``text``."""

    text: str
    label: str  # an intent, or OUT_OF_SCOPE (an intent of that name if the bot has one)
    id: str | None = None
    language: str | None = None
    holdout: bool = False


def read_csv(path: Path) -> list[ImportedLabel]:
    """Rows with a ``label`` (``out_of_scope`` marks one out of scope); rows without one are skipped."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "label" not in reader.fieldnames or not (
                {"id", "text"} & set(reader.fieldnames)):
            raise ConfigError("a review CSV needs a 'label' column and an 'id' or 'text' column", file=str(path))
        labels = []
        for row in reader:
            label = (row.get("label") or "").strip()
            if not label:
                continue
            labels.append(ImportedLabel(
                text=(row.get("text") or "").strip(), label=label,
                id=(row.get("id") or "").strip() or None,
                holdout=(row.get("holdout") or "").strip().lower() in ("yes", "true", "1")))
        return labels


def read_yaml(path: Path) -> list[ImportedLabel]:
    """Every example of a Rasa NLU YAML file as a label (matched to queue items by text)."""
    data = load_nlu_file(path, display=path.name)
    return [ImportedLabel(text=e.text, label=e.intent, language=e.language) for e in data.examples]
