"""How frustrated does one customer message sound? A transparent cue score, DE + EN.

Each cue found adds evidence; cues combine as a noisy-OR, ``1 - prod(1 - w)``, so one
strong cue (an insult) or two moderate ones ("still not working" + "!!!") reach the
default threshold of 0.7, while a polite complaint ("Leider klappt es noch nicht,
könnten Sie bitte nachsehen?") stays below it. Happy shouting ("DANKE!!!") is damped:
with praise in the message, CAPS and !!! count for little. The weights were set on the
dev split of ``tests/data/frustration_labelled.jsonl``; ``bench/frustration_eval.py``
reports the test split.

A repeated question counts only within one issue: a polite closing ("Danke, tschüss",
"ok thanks bye") is never a repeat, and ends the issue, so what was asked before it does
not count either; only a question or request (not a re-sent answer such as an order
number) can be a repeat. Which earlier messages belong to the issue at all (not across a
closed handoff, a new session or button presses) is the caller's part
(`core.handoff.hooks.issue_texts`). Forwarded texts ("forwarded many times") and a
success report ("zum zweiten Mal probiert, jetzt klappt es") are not persistence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache

from core.handoff import frustration_lexicon as lex
from core.handoff.frustration_lexicon import fold

__all__ = [
    "HISTORY_WINDOW", "WEIGHTS", "FrustrationSignal", "frustration_score", "is_near_duplicate",
    "is_polite_closing",
]

WEIGHTS: dict[str, float] = {
    "profanity": 0.8,
    "strong_negative": 0.7,
    "not_helping": 0.7,
    "repeated_question": 0.7,
    "threat": 0.7,
    "ignored": 0.7,
    "persistence": 0.7,
    "all_caps": 0.6,
    "negative": 0.5,
    "punctuation": 0.45,
    "exclamations": 0.3,
    "mild_profanity": 0.35,
    "mild_negative": 0.1,
}
# A second hit of the same cue adds this share of its weight.
_REPEAT_SHARE = 0.5
# With praise in the message, shouting cues keep only this share.
_PRAISE_DAMPING = 0.25
_SHOUTING = frozenset({"punctuation", "exclamations", "all_caps", "mild_profanity"})
# A polite request keeps only this share of the "something is wrong" cues.
_POLITE_DAMPING = 0.6
_POLITE_DAMPED = frozenset({"persistence", "negative", "mild_negative", "exclamations"})
_STRONG = frozenset({"profanity", "strong_negative", "not_helping", "threat", "ignored"})
HISTORY_WINDOW = 5  # earlier customer messages a repeated question is looked for in
_SIMILAR = 0.88  # SequenceMatcher ratio from which two messages say the same

_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("profanity", lex.PROFANITY),
    ("strong_negative", lex.STRONG_NEGATIVE),
    ("not_helping", lex.NOT_HELPING),
    ("persistence", lex.PERSISTENCE),
    ("threat", lex.THREAT),
    ("ignored", lex.IGNORED),
    ("negative", lex.NEGATIVE),
    ("mild_profanity", lex.MILD_PROFANITY),
    ("mild_negative", lex.MILD_NEGATIVE),
)
# Every cue of every category: one search tells whether any category can match at all
# (most messages have no cue; then the per-category passes are skipped).
_ANY_CUE: tuple[str, ...] = tuple(entry for _, entries in _CATEGORIES for entry in entries)


@dataclass(frozen=True, slots=True)
class FrustrationSignal:
    """``score`` in 0..1 and the cues behind it (``"persistence:still not"``, ``"all_caps"``)."""

    score: float
    reasons: tuple[str, ...] = ()

    def exceeds(self, threshold: float) -> bool:
        """True at or above ``threshold`` (HandoffConfig.frustration_threshold)."""
        return self.score >= threshold


@lru_cache(maxsize=16)
def _pattern(entries: tuple[str, ...]) -> re.Pattern[str]:
    parts = []
    for entry in sorted(entries, key=len, reverse=True):
        if entry.startswith("re:"):
            parts.append("(?:" + entry[3:] + ")")
            continue
        stem = entry.rstrip("*")
        body = re.escape(stem).replace(r"\ ", r"\s+")
        parts.append(body + (r"\w*" if entry.endswith("*") else ""))
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)")


def _hits(folded: str, entries: tuple[str, ...]) -> list[str]:
    return [m.group(0) for m in _pattern(entries).finditer(folded)]


@lru_cache(maxsize=4096)  # a conversation's recent messages are compared again on each turn
def _normalise_for_compare(text: str) -> str:
    return " ".join(re.findall(r"\w+", fold(text)))


def _comparable(normalised: str) -> bool:
    return len(normalised) >= 12 and normalised.count(" ") >= 2  # 12+ characters, 3+ words


def is_near_duplicate(text: str, other: str) -> bool:
    """Two messages say the same thing (a repeated question), ignoring case and punctuation."""
    a = _normalise_for_compare(text)
    if not _comparable(a):
        return False
    b = _normalise_for_compare(other)
    if len(b) < 12:
        return False
    if a == b:
        return True
    words_a, words_b = set(a.split()), set(b.split())
    jaccard = len(words_a & words_b) / len(words_a | words_b)
    if jaccard >= 0.75:
        return True
    # SequenceMatcher.ratio() is the costly part: first its cheap upper bounds (the length
    # bound of real_quick_ratio, then quick_ratio), which rule most pairs out exactly.
    if 2 * min(len(a), len(b)) / (len(a) + len(b)) < _SIMILAR:
        return False
    matcher = SequenceMatcher(None, a, b)
    return matcher.quick_ratio() >= _SIMILAR and matcher.ratio() >= _SIMILAR


_WORDS = re.compile(r"[a-z0-9]+")


@lru_cache(maxsize=4096)
def is_polite_closing(text: str) -> bool:
    """A thanks-and-goodbye with nothing else in it ("Okay, vielen Dank, tschüss!", "ok thanks bye")."""
    folded = fold(text)
    words = _WORDS.findall(folded)
    return (0 < len(words) <= 10 and all(w in lex.CLOSING_WORDS for w in words)
            and _pattern(lex.CLOSING_MARKERS).search(" ".join(words)) is not None)


def _is_question(text: str) -> bool:
    """A question or request: it ends in "?" or opens with a question or request word."""
    if "?" in text:
        return True
    first = _WORDS.search(fold(text))
    return first is not None and first.group(0) in lex.QUESTION_STARTS


def _same_issue(history_texts: Sequence[str]) -> list[str]:
    """The last `HISTORY_WINDOW` messages, from after the newest polite closing."""
    recent = list(history_texts)[-HISTORY_WINDOW:]
    for i in range(len(recent) - 1, -1, -1):
        if is_polite_closing(recent[i]):
            return recent[i + 1:]
    return recent


def _all_caps(text: str) -> bool:
    """Shouting: mostly capitals over 2+ words, or 2+ capitalised words (not acronyms like DSL)."""
    words = [w for w in re.findall(r"[^\W\d_]+", text) if len(w) >= 2]
    letters = [c for w in words for c in w]
    if len(words) < 2 or len(letters) < 8:
        return False
    upper = sum(1 for c in letters if c.isupper())
    if upper / len(letters) >= 0.8:
        return True
    shouted = [w for w in words if len(w) >= 3 and w.isupper()]
    return len(shouted) >= 2 and sum(map(len, shouted)) >= 9 and max(map(len, shouted)) >= 5


def _punctuation(text: str) -> str | None:
    """"burst" for ``!!!``, ``???``, ``?!``; "exclamations" for two or more ``!`` or ``??``."""
    if re.search(r"[!?]{3,}|[!?](\s*[!?]){2,}|\?!|!\?", text):
        return "punctuation"
    if text.count("!") >= 2 or "??" in text:
        return "exclamations"
    return None


def _combine(weights: Sequence[float]) -> float:
    remaining = 1.0
    for w in weights:
        remaining *= 1.0 - max(0.0, min(1.0, w))
    return 1.0 - remaining


def frustration_score(text: str, history_texts: Sequence[str] = ()) -> FrustrationSignal:
    """Score one customer message; ``history_texts``: the customer's earlier messages, oldest first."""
    if not text or not text.strip():
        return FrustrationSignal(0.0)
    folded = fold(text)
    shielded = _pattern(lex.NEGATIVE_SHIELDS).sub(" ", folded)
    found: dict[str, list[str]] = {}
    if _pattern(_ANY_CUE).search(shielded):
        for name, entries in _CATEGORIES:
            hits = _hits(shielded, entries)
            if hits:
                found[name] = hits
    # "immer noch nicht" is one cue, not also a mild "nicht"-less "immer noch".
    if "persistence" in found:
        found["persistence"] = sorted(dict.fromkeys(found["persistence"]), key=len, reverse=True)[:2]  # ties: first seen
    if _all_caps(text):
        found["all_caps"] = [""]
    punctuation = _punctuation(text)
    if punctuation:
        found[punctuation] = [""]
    # the history last: a caller may compute it lazily (`core.handoff.mood`), most messages are no question
    if _is_question(text) and not is_polite_closing(text) and history_texts and any(
            is_near_duplicate(text, earlier) for earlier in _same_issue(history_texts)):
        found["repeated_question"] = [""]
    if "persistence" in found and _pattern(lex.RESOLVED).search(shielded) and not _STRONG & found.keys():
        del found["persistence"]  # "zum zweiten Mal probiert, jetzt klappt es"

    strong = bool(_STRONG & found.keys())
    praised = not strong and "persistence" not in found and _pattern(lex.POSITIVE).search(shielded) is not None
    polite = not strong and "all_caps" not in found and _pattern(lex.POLITE).search(shielded) is not None
    weights: list[float] = []
    reasons: list[str] = []
    for name, hits in found.items():
        weight = WEIGHTS[name]
        if praised and name in _SHOUTING:
            weight *= _PRAISE_DAMPING
        if polite and name in _POLITE_DAMPED:
            weight *= _POLITE_DAMPING
        weights.append(weight)
        weights.extend(weight * _REPEAT_SHARE for _ in hits[1:2])
        reasons.append(f"{name}:{hits[0]}" if hits[0] else name)
    if praised:
        reasons.append("praise")
    if polite:
        reasons.append("polite")
    return FrustrationSignal(round(_combine(weights), 4), tuple(reasons))
