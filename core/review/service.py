"""`ReviewService`: the review loop of a farm — collect, flag, label, write, retrain, evaluate.

Messages come in from the turn (`core.review.plugin.ReviewAfterCommit`) and from agents
(`flag`); a lead labels them (`label`), and every label change rewrites the bot project's
``data/review/<bot>.yml`` (labels to learn from) and ``tests/review/<bot>_nlu.yml`` (the
held-out labels, never trained on). `retrain` trains a model on the project as it now is,
runs ``switchboard test nlu``'s evaluation (`core.dialogue.testing.evaluate_nlu`) with the old
and the new model on both sets, puts the new model in service and keeps the figures
(``review:run:<bot>`` in the key-value store, so every farm process shows them).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from core.engine import Engine
from core.errors import NotFound, SwitchboardError
from core.model import Event, utcnow
from core.privacy.masking import Masker
from core.review.collect import Candidate, case_messages, predicted
from core.review.labels import (
    OUT_OF_SCOPE,
    ImportedLabel,
    labelled_examples,
    nlu_data,
    nlu_yaml,
    write_if_changed,
)
from core.review_config import ReviewConfig
from core.store.ports.review import ReviewItem, ReviewStatus, ReviewStore
from core.store.ports.transcript import TranscriptStore

log = structlog.get_logger(__name__)

REVIEW_DIR = Path("data") / "review"
HELDOUT_DIR = Path("tests") / "review"


class ReviewError(SwitchboardError):
    """A review request that cannot be done (unknown intent, no such item)."""


@dataclass(frozen=True, slots=True)
class ReviewBot:
    """What the review loop knows of one bot."""

    name: str
    project: Path
    config: ReviewConfig
    masker: Masker


def train_file(bot: ReviewBot) -> Path:
    return bot.project / REVIEW_DIR / f"{bot.name}.yml"


def heldout_file(bot: ReviewBot) -> Path:
    return bot.project / HELDOUT_DIR / f"{bot.name}_nlu.yml"


Trainer = Callable[[str], Awaitable[Engine]]


class ReviewService:
    """The review loop over a `ReviewStore` and the transcript (see the module docstring).

    ``engines``: each bot's engine in service (the farm's runtimes); ``train``: a freshly
    loaded (and, for changed data, trained) engine of a bot; ``put_in_service``: swaps it in.
    """

    def __init__(
        self,
        store: ReviewStore,
        transcripts: TranscriptStore,
        bots: Mapping[str, ReviewBot],
        *,
        kv: Any = None,
        engine_of: Callable[[str], Engine | None] = lambda bot: None,
        train: Trainer | None = None,
        put_in_service: Callable[[str, Engine], None] = lambda bot, engine: None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.transcripts = transcripts
        self.bots = dict(bots)
        self.kv = kv
        self.engine_of = engine_of
        self.train = train
        self.put_in_service = put_in_service
        self.clock = clock
        self._intents: dict[str, list[str]] = {}
        self._training: dict[str, asyncio.Lock] = {}
        self._followed: dict[str, str] = {}  # bot -> the last retrained model `follow` tried to load
        # Engines are loaded from the project before the plugins are built: a retrain finished
        # before this is in them already (its labels were on disk), or outdated by newer labels.
        self._started = clock()

    def bot(self, name: str) -> ReviewBot:
        found = self.bots.get(name)
        if found is None:
            raise NotFound(f"no bot '{name}'")
        return found

    # -- collecting ------------------------------------------------------------------------
    def _item(self, bot: ReviewBot, conversation_id: str, contact_id: str, event: Event, reasons: Sequence[str],
              detail: Mapping[str, Any]) -> ReviewItem:
        intent, confidence = predicted(event)
        parse = event.data.get("parse_data") or {}
        return ReviewItem(
            id=ReviewItem.key(conversation_id, event.seq), bot=bot.name,
            text=bot.masker.mask(str(event.data.get("text") or "")), reasons=tuple(reasons),
            created_at=event.timestamp or self.clock(), conversation_id=conversation_id, contact_id=contact_id,
            seq=event.seq, language=parse.get("language") or event.data.get("language"),
            predicted_intent=intent, confidence=confidence,
            detail={"channel": event.channel or event.data.get("input_channel"), **detail},
        )

    async def collect(self, bot: str, conversation_id: str, contact_id: str,
                      candidates: Sequence[Candidate]) -> list[ReviewItem]:
        """Queue the turn's candidates (`core.review.collect.turn_candidates`)."""
        settings = self.bot(bot)
        added = [await self.store.add_review(self._item(settings, conversation_id, contact_id, c.event, c.reasons,
                                                        c.detail)) for c in candidates]
        if added:
            log.info("review.queued", bot=bot, conversation=conversation_id, items=len(added),
                     reasons=sorted({r for c in candidates for r in c.reasons}))
        return added

    async def rated(self, bot: str, conversation_id: str, contact_id: str, rating: Event) -> list[ReviewItem]:
        """A case was rated: if low, queue its typed customer messages."""
        settings = self.bot(bot)
        score = rating.data.get("score")
        if not isinstance(score, int) or score > settings.config.rating_at_most:
            return []
        transcript = await self.transcripts.transcript(conversation_id)
        if not rating.seq:  # not the stored event: the newest rating is this one
            rating = next((e for e in reversed(transcript) if e.type == "csat"), rating)
        messages = case_messages(transcript, rating, settings.config.case_messages)
        return await self.collect(bot, conversation_id, contact_id,
                                  [Candidate(m, ("low_rating",), {"rating": score}) for m in messages])

    async def flag(self, bot: str, conversation_id: str, contact_id: str, *, seq: int | None, by: str) -> ReviewItem:
        """An agent sends a customer message (``seq``; None: the latest typed one) to the queue."""
        from core.review.collect import is_typed

        transcript = await self.transcripts.transcript(conversation_id)
        typed = [e for e in transcript if is_typed(e) and (seq is None or e.seq == seq)]
        if not typed:
            raise ReviewError("no customer message to flag" if seq is None else f"no customer message #{seq}")
        (item,) = await self.collect(bot, conversation_id, contact_id,
                                     [Candidate(typed[-1], ("flagged",), {"flagged_by": by})])
        return item

    # -- reading ---------------------------------------------------------------------------
    async def queue(self, bot: str, status: ReviewStatus | None = None, limit: int = 200) -> list[ReviewItem]:
        self.bot(bot)
        return await self.store.review_items(bot=bot, status=status, limit=limit)

    def intents(self, bot: str) -> list[str]:
        """The intents of the bot's domain (what a message may be labelled with)."""
        if bot not in self._intents:
            engine = self.engine_of(bot)
            domain = getattr(engine, "domain", None)
            if domain is None:
                from core.rasa.project import load_project

                domain = load_project(self.bot(bot).project).domain
            self._intents[bot] = sorted(domain.intents)
        return self._intents[bot]

    # -- labelling -------------------------------------------------------------------------
    async def label(self, item_id: str, *, intent: str | None, out_of_scope: bool = False, holdout: bool = False,
                    by: str, bots: Sequence[str] | None = None) -> ReviewItem:
        """Label an item with one of the bot's intents, mark it out of scope, or (neither) reopen it;
        the bot's label files are rewritten. ``bots``: those the labeller may serve (None: all)."""
        item = await self.store.get_review(item_id)
        if item is None or (bots is not None and item.bot not in bots):
            raise NotFound(f"no review item '{item_id}'")
        if intent is not None and intent not in self.intents(item.bot):
            raise ReviewError(f"'{intent}' is not an intent of bot '{item.bot}'")
        status = (ReviewStatus.OUT_OF_SCOPE if out_of_scope else
                  ReviewStatus.LABELLED if intent is not None else ReviewStatus.OPEN)
        labelled = await self.store.label_review(item_id, status=status, label=intent, holdout=holdout, by=by,
                                                 at=self.clock())
        if labelled is None:
            raise NotFound(f"no review item '{item_id}'")
        log.info("review.labelled", bot=item.bot, item=item_id, status=status.value, by=by, holdout=holdout)
        await self.write_files(item.bot)
        return labelled

    async def write_files(self, bot: str) -> list[Path]:
        """Rewrite the bot's label files from the store (a file without labels is removed)."""
        settings = self.bot(bot)
        items = await self.store.review_items(bot=bot, status=ReviewStatus.LABELLED, limit=100_000)
        written = []
        for path, holdout, what in ((train_file(settings), False, "labels to learn from"),
                                    (heldout_file(settings), True, "held-out labels, never trained on")):
            examples = labelled_examples(items, holdout=holdout)
            if not examples:
                if path.is_file():
                    path.unlink()
                continue
            comment = f"Written by the review loop of bot '{bot}' (switchboard review): {what}. Do not edit."
            if await asyncio.to_thread(write_if_changed, path, nlu_yaml(examples, comment=comment)):
                log.info("review.file_written", bot=bot, file=str(path), examples=len(examples))
            written.append(path)
        return written

    async def import_labels(self, bot: str, labels: Sequence[ImportedLabel], *, by: str) -> dict[str, int]:
        """Apply labels made elsewhere: to the item they name (CSV ``id``) or with the same text;
        a label that matches no item is queued as an ``imported`` item. Counts by outcome."""
        settings = self.bot(bot)
        intents = set(self.intents(bot))
        items = await self.store.review_items(bot=bot, limit=100_000)
        by_text: dict[str, ReviewItem] = {}
        for existing in items:
            by_text.setdefault(" ".join(existing.text.split()).lower(), existing)
        ids = {i.id for i in items}
        counts = {"labelled": 0, "added": 0, "skipped": 0}
        for label in labels:
            out_of_scope = label.label == OUT_OF_SCOPE and OUT_OF_SCOPE not in intents
            if not out_of_scope and label.label not in intents:
                log.warning("review.import_unknown_intent", bot=bot, intent=label.label)
                counts["skipped"] += 1
                continue
            target = label.id if label.id in ids else None
            if target is None and label.text:
                match = by_text.get(" ".join(settings.masker.mask(label.text).split()).lower())
                target = match.id if match else None
            if target is None:
                if not label.text:
                    counts["skipped"] += 1
                    continue
                key = "import:" + hashlib.sha256(f"{bot}\n{label.text}".encode()).hexdigest()[:16]
                await self.store.add_review(ReviewItem(
                    id=key, bot=bot, text=settings.masker.mask(label.text), reasons=("imported",),
                    created_at=self.clock(), language=label.language, detail={"imported_by": by}))
                target = key
                counts["added"] += 1
            await self.store.label_review(
                target, status=ReviewStatus.OUT_OF_SCOPE if out_of_scope else ReviewStatus.LABELLED,
                label=None if out_of_scope else label.label, holdout=label.holdout, by=by, at=self.clock())
            counts["labelled"] += 1
        await self.write_files(bot)
        log.info("review.imported", bot=bot, by=by, **counts)
        return counts

    # -- retraining ------------------------------------------------------------------------
    def _lock(self, bot: str) -> asyncio.Lock:
        return self._training.setdefault(bot, asyncio.Lock())

    async def retrain(self, bot: str, *, by: str) -> dict[str, Any]:
        """Train on the project with the labels, evaluate old and new model, put the new one in service."""
        if self.train is None:
            raise ReviewError("this farm cannot retrain bots")
        async with self._lock(bot):
            await self.write_files(bot)
            items = await self.store.review_items(bot=bot, status=ReviewStatus.LABELLED, limit=100_000)
            sets = {"labelled": labelled_examples(items, holdout=False),
                    "held_out": labelled_examples(items, holdout=True)}
            before = await _evaluate(self.engine_of(bot), sets)
            started = time.perf_counter()
            engine = await self.train(bot)
            seconds = round(time.perf_counter() - started, 2)
            after = await _evaluate(engine, sets)
            self.put_in_service(bot, engine)
            self._intents.pop(bot, None)
            self._followed[bot] = _fingerprint(engine) or ""
            run = {"bot": bot, "at": self.clock().isoformat(), "by": by, "train_seconds": seconds,
                   "model": _fingerprint(engine),
                   "before": before, "after": after}
            if self.kv is not None:
                await self.kv.kv_set(f"review:run:{bot}", run)
            log.info("review.retrained", bot=bot, by=by, seconds=seconds,
                     after={k: v.get("accuracy") for k, v in after.items()})
            return run

    async def follow(self, bot: str) -> bool:
        """Put in service the model another farm process retrained for ``bot`` (farms of several
        processes share the store, not their engines); whether this process's engine changed.

        The retraining process keeps its run under ``review:run:<bot>`` with the new NLU model's
        fingerprint, and wrote the labels into the project. When that fingerprint differs from
        the engine in service here, the bot's engine is loaded again from the project (its model
        from the shared model directory, or trained here) and put in service if it is that
        model. Each retrain is tried once: a process that cannot see the project's new files
        keeps its engine and says so in the log.
        """
        if self.train is None or self.kv is None:
            return False
        run = await self.last_run(bot)
        model = run.get("model") if run else None
        if not isinstance(model, str) or not model or self._followed.get(bot) == model:
            return False
        if _before(run, self._started):  # this process loaded the bot after that retrain
            self._followed[bot] = model
            return False
        async with self._lock(bot):  # not while this process retrains the bot itself
            if model == _fingerprint(self.engine_of(bot)):
                self._followed[bot] = model
                return False
            self._followed[bot] = model
            engine = await self.train(bot)
            loaded = _fingerprint(engine)
            if loaded != model:
                log.warning("review.follow_failed", bot=bot, retrained=model, loaded=loaded)
                return False
            self.put_in_service(bot, engine)
            self._intents.pop(bot, None)
            log.info("review.model_followed", bot=bot, model=model, by=run.get("by") if run else None)
            return True

    async def last_run(self, bot: str) -> dict[str, Any] | None:
        if self.kv is None:
            return None
        found = await self.kv.kv_get(f"review:run:{bot}")
        return found if isinstance(found, dict) else None


def _before(run: Mapping[str, Any] | None, moment: datetime) -> bool:
    """Whether the retrain ``run`` finished before ``moment`` (a run without a readable time: no)."""
    try:
        return datetime.fromisoformat(str((run or {}).get("at"))) < moment
    except (TypeError, ValueError):
        return False


def _fingerprint(engine: Engine | None) -> str | None:
    """The NLU model an engine runs (the fingerprint of its training data), if it has one."""
    found = getattr(getattr(engine, "nlu", None), "fingerprint", None)
    return str(found) if found else None


async def _evaluate(engine: Engine | None, sets: Mapping[str, list[tuple[str, str, str | None]]]) -> dict[str, Any]:
    """``switchboard test nlu``'s figures of ``engine`` on each set (None where it cannot be run)."""
    from core.dialogue.engine import RasaEngine
    from core.dialogue.testing import evaluate_nlu

    results: dict[str, Any] = {}
    for name, examples in sets.items():
        if not examples or not isinstance(engine, RasaEngine):
            results[name] = {"examples": len(examples), "accuracy": None, "misclassified": []}
            continue
        report = await asyncio.to_thread(evaluate_nlu, engine, nlu_data(examples))
        results[name] = {
            "examples": len(examples), "accuracy": round(float(report["accuracy"]), 4),
            "macro_f1": round(float(report["macro avg"]["f1-score"]), 4) if "macro avg" in report else None,
            "misclassified": [{"text": m["text"], "intent": m["intent"],
                               "predicted": m["intent_prediction"]["name"]} for m in report["misclassified"]],
        }
    return results

