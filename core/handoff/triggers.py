"""Does one customer message ask for a person? Pure functions, no I/O.

`asks_for_human` matches the configured request words (``HandoffConfig.request_words``)
in any form, plus a few built-in phrases ("talk to someone", "echte Person"). The
rules, chosen to favour reaching a person over a missed request, are:

* Text is folded: case, ``ß`` -> ``ss``, ``ä/ö/ü`` -> ``ae/oe/ue`` (so "Mitarbeiter" and
  typed "Mitarbeíter" / "MITARBEITER" meet), other accents dropped.
* Gender forms are reduced before matching: ``Mitarbeiter*in``, ``Mitarbeiter:innen``,
  ``Mitarbeiter_in``, ``Mitarbeiter/-in``, ``MitarbeiterIn``.
* A word matches with an inflection ending (-s, -es, -en, -n, -in, -innen, -nen):
  Menschen, Mitarbeiterin, agents, humans, Personen. Other endings do not:
  "Agentur", "humane", "Personal", "Menschheit".
* A German compound matches when the word is its *head* (last part) and the prefix has
  at least 4 letters: "Kundenberater", "Servicemitarbeiterin", "Supportagent". A word
  at the *start* of a compound does not match ("Menschenrechte", "Beratungstermin"),
  nor does a short or negating prefix ("Unmensch", "inhuman", "superhuman").
* Words of 6 or more letters tolerate one typo (Damerau: insert, delete, replace,
  swap): "Mitarbieter", "Mensh", "Berarter". Known real words one edit away are never
  typos: "beraten", "Perso", "Menschenskind" etc. (`_NOT_REQUESTS`).
* Not a request: the board game "Mensch ärgere dich nicht"; "Mensch," / "Mensch!" as
  an interjection opening a longer sentence; "kein Mensch versteht das" / "no human
  would" (a negation right before the word, unless the sentence is a question: "gibt es
  keinen Menschen?" still asks); a count before person ("für 2 Personen", "per person");
  fixed terms ("human error", "user agent", "Mensch Meier", "pay in person", "I'm only
  human", "auch nur ein Mensch"); and a report about staff ("Ihr Mitarbeiter hat
  gesagt", "your agent told me").
* "someone"/"jemand" alone is too broad ("someone stole my card"); it counts only in a
  request phrase ("talk to someone", "mit jemandem sprechen", "jemand Echtes").

* A question about what answers is not a request: "Bist du ein Mensch?", "am I talking to
  a human?", "Is this a real person?", "Mensch oder Maschine?" (`asks_what_i_am`). The
  customer gets the honest answer (an automated assistant, and how to reach a person).
  Such a question is taken out before the request words are matched, so a request next
  to it still hands over: "Bist du ein Bot? Dann will ich einen Menschen."

`frustration_score` lives in `core.handoff.frustration` and is re-exported here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from core.handoff.frustration import FrustrationSignal, frustration_score
from core.handoff.frustration_lexicon import fold

__all__ = [
    "DEFAULT_REQUEST_WORDS",
    "FrustrationSignal",
    "asks_for_human",
    "asks_what_i_am",
    "fold",
    "frustration_score",
    "within_one_edit",
]

DEFAULT_REQUEST_WORDS: tuple[str, ...] = (
    "mensch", "mitarbeiter", "agent", "human", "person", "berater",
)

_SUFFIXES: tuple[str, ...] = ("", "s", "es", "en", "n", "in", "innen", "nen")
_MIN_COMPOUND_PREFIX = 4
_MIN_TYPO_LENGTH = 6

# Real words (folded) that look like a request word but are not one.
_NOT_REQUESTS = frozenset({
    "agentur", "agenturen", "humane", "humanen", "humaner", "humanes", "humanem",
    "personal", "perso", "persona", "personas", "beraten", "beratet", "berate",
    "beratene", "menschenskind", "menschenskinder", "menschheit", "menschlich",
    "humanity", "humanly", "mensa",
})
# Prefixes that make a compound mean something else.
_BAD_PREFIXES = frozenset({"super", "ueber", "unter", "nicht", "non", "sub", "anti"})

# Fixed multi-word terms where the word does not mean "a person to talk to" (folded).
_FIXED_TERMS: tuple[tuple[str, ...], ...] = (
    ("mensch", "aergere", "dich", "nicht"),
    ("mensch", "aergere", "dich"),
    ("mensch", "meier"),
    ("human", "error"),
    ("human", "errors"),
    ("human", "resources"),
    ("human", "rights"),
    ("human", "nature"),
    ("user", "agent"),
    ("useragent",),
    ("secret", "agent"),
    ("travel", "agent"),
    ("real", "estate", "agent"),
    ("in", "person"),
    ("only", "human"),
    ("nur", "ein", "mensch"),
    ("auch", "nur", "menschen"),
)
_NEGATIONS = frozenset({
    "kein", "keine", "keinen", "keinem", "keiner", "no", "not", "nicht", "without", "ohne",
    "never", "nie",
})
_COUNT_WORDS = frozenset({
    "pro", "per", "je", "each", "zwei", "drei", "vier", "fuenf", "sechs", "two", "three",
    "four", "five", "six", "erwachsene", "adult", "viele", "many", "mehrere", "several", "wenige", "few",
})
# "Ich bin (auch ein) Mensch", "I'm human": about the customer, not a request.
_SELF_WORDS = frozenset({"bin", "am", "m"})
# "one person" counts only after a "for": "für eine Person", not "mit einer Person sprechen".
_ONE_WORDS = frozenset({"one", "eine", "einer", "ein"})
_FOR_WORDS = frozenset({"fuer", "for", "pro", "per", "je", "ab"})
# A past-tense report about staff: "(Ihr) Mitarbeiter hat/sagte ...", "your agent told me".
_REPORT_VERBS = frozenset({
    "hat", "hatte", "sagte", "meinte", "versprach", "war", "ist", "sind", "haben", "hatten",
    "said", "told", "was", "were", "promised", "has", "had",
})
_POSSESSIVES = frozenset({
    "ihr", "ihre", "ihrem", "ihren", "ihrer", "euer", "eure", "eurem", "euren", "der",
    "dein", "deine", "your", "the", "that", "this", "dieser", "diese", "ein", "a", "an",
})

_REQUEST_PHRASES: tuple[re.Pattern[str], ...] = tuple(re.compile(p) for p in (
    r"\b(talk|speak|chat)\s+(to|with)\s+(someone|somebody|anyone|anybody|a\s+real)\b",
    r"\b(someone|somebody|anyone|anybody)\s+(real|there|who\s+can\s+help)\b",
    r"\b(real|live|actual)\s+(person|people|human|humans|agent|agents|someone)\b",
    r"\bmit\s+jemand(em|en)?\b.{0,30}\b(sprechen|reden|telefonieren|schreiben)\b",
    r"\bjemand(en|em)?\s+(echtes|echten|echtem|richtigen|richtiges|lebendiges)\b",
    r"\b(echte[nmrs]?|richtige[nmrs]?|lebendige[nmrs]?)\s+(person|personen|mensch|menschen)\b",
    r"\bpersoenlich\s+(sprechen|reden|beraten|besprechen)\b",
    r"\b(sprechen|reden)\s+(sie|ich)?\s*persoenlich\b",
))

# What the customer may ask whether we are (folded).
_WHAT_EN = (r"(?:a\s+|an\s+)?(?:real\s+|actual\s+|live\s+|genuine\s+)?(?:human(?:s|\s+beings?)?|persons?|people"
            r"|bots?|robots?|machines?|computers?|ai|chat\s*bots?|chatgpt|gpt|programs?|agents?|employees?|staff"
            r"|automated(?=\s*(?:[?.!,]|$|\s+(?:system|reply|response|answer|message|service|chat|or)\b)))")
_WHAT_DE = (r"(?:(?:irgend)?ein\w*\s+|n\s+|ne\s+|nem\s+|ner\s+)?(?:echte\w*\s+|richtige\w*\s+|lebendige\w*\s+|reale\w*\s+)?"
            r"(?:mensch(?:en)?|bots?|roboter|maschinen?|computer\w*|ki|chatgpt|gpt|programm|chat\s*bots?|automat(?:en)?"
            r"|person(?:en)?|mitarbeiter(?:in|innen)?|kuenstliche\w*\s+intelligenz"
            r"|automatische\w*\s+(?:antwort|nachricht|chat|system|dienst)\w*)\b")
# "... oder ein Bot?", "... or a human?": the alternative belongs to the question.
_OR_TAIL = rf"(?:\s*,?\s*(?:or|oder)\s+(?:{_WHAT_EN}|{_WHAT_DE}))?"
_IDENTITY_QUESTIONS = (
    # English
    rf"\b(?:are|r)\s+(?:you|u)\s+(?:even\s+|actually\s+|really\s+|just\s+|only\s+)*(?:{_WHAT_EN}|real\b)",
    (rf"\b(?:am\s+i|i\s+am|i'?m)\s+(?:\w+\s+)?(?:talking|speaking|chatting|writing|texting|messaging"
    rf"|communicating)\s+(?:to|with)\s+{_WHAT_EN}"),
    # "Is this a bot?", not "Is this person allowed to ...?"
    (rf"\b(?:is|are)\s+(?:this|that|it|these|you)\s+(?:chat\s+|conversation\s+|really\s+|actually\s+)*{_WHAT_EN}"
     r"(?=\s*(?:[?.!,]|$|or\b|here\b|there\b|on\s+the\b|answering|replying|responding|talking|writing|typing"
     r"|reply|response|answer|message|system|service|chat\b))"),
    (rf"\b(?:is|are)\s+(?:there\s+)?(?:{_WHAT_EN}|(?:someone|somebody|anyone|anybody)(?:\s+real)?)\s+(?:here|there|on\s+the\s+other\s+(?:end|side)|behind\s+"
    r"(?:this|the)|reading|answering|replying|responding|typing|writing)"),
    (r"\bwho\s+(?:am\s+i\s+(?:talking|speaking|chatting|writing|texting)|is\s+(?:this|answering|replying"
    r"|responding|writing|typing)|are\s+you\s*(?:[?.!]|$))"),
    r"\bwhat\s+are\s+you(?:\s+exactly)?\s*(?:[?.!]|$)",
    (r"\b(?:you'?re|you\s+are|youre|ur|u\s+r)\s+(?:just\s+|only\s+)?(?:a\s+|an\s+)?(?:bot|robot|machine"
    r"|computer|ai|chatbot|program|human|real\s+person)\b"),
    rf"\b(?:answered|handled|staffed|run|written|typed|sent)\s+by\s+{_WHAT_EN}",
    # asked indirectly: "I'd like to know if I'm talking to a human", "ob du ein Bot bist"
    (rf"\b(?:whether|if)\s+(?:(?:i\s+am|i'?m)\s+(?:\w+\s+)?(?:talking|speaking|chatting|writing|texting)\s+"
     rf"(?:to|with)\s+|(?:you(?:'?re|\s+are)|this\s+is|it'?s|it\s+is)\s+){_WHAT_EN}"),
    rf"^\W*(?:{_WHAT_EN})\s*,?\s*or\s+(?:{_WHAT_EN})\W*$",
    # German
    (rf"\b(?:bist\s+du|sind\s+sie|seid\s+ihr|biste)\s+(?:denn\s+|eigentlich\s+|wirklich\s+|etwa\s+"
    rf"|echt\s+|nur\s+|auch\s+|ueberhaupt\s+|hier\s+|da\s+)*(?:{_WHAT_DE}|echt\b|real\b)"),
    (rf"\b(?:(?:rede|red|spreche|sprech|schreibe|schreib|chatte|kommuniziere|bin)\s+ich|ich\s+(?:rede|spreche"
    rf"|schreibe|chatte)\s+(?:hier\s+|gerade\s+)*doch|(?:habe|hab)\s+ich(?:\s+es)?)\s+(?:hier\s+|gerade\s+"
    rf"|grad\s+|jetzt\s+|da\s+|eigentlich\s+|wirklich\s+|etwa\s+|doch\s+)*(?:mit|bei)\s+"
    rf"(?:einem\s+|einer\s+|dem\s+|der\s+)?{_WHAT_DE}"),
    # "Ist das ein Bot?", "Antwortet hier ein Mensch?", not "Ist ein Mitarbeiter frei?"
    (rf"\b(?:(?:ist|sitzt)\s+(?:das|da|hier|dort)|(?:antwortet|schreibt)(?:\s+(?:mir|hier|da|dort))?)\s+(?:hier\s+|da\s+|gerade\s+"
    rf"|eigentlich\s+|wirklich\s+|ueberhaupt\s+)*{_WHAT_DE}"),
    r"\b(?:wer|mit\s+wem)\s+(?:antwortet|schreibt|spricht|spreche|rede|schreibe|chatte)\b",
    r"\bwas\s+bist\s+du\b",
    r"\bwer\s+(?:bist\s+du|sind\s+sie|seid\s+ihr)(?:\s+(?:eigentlich|denn|ueberhaupt|da|hier))*\s*(?:[?.!]|$)",
    (rf"\bob\s+(?:ich\s+(?:hier\s+|gerade\s+|grad\s+)*mit\s+(?:einem\s+|einer\s+)?{_WHAT_DE}"
     rf"|(?:du|sie|ihr)\s+(?:hier\s+|wirklich\s+|echt\s+)*{_WHAT_DE}\s+(?:bist|sind|seid)"
     rf"|(?:das|hier)\s+{_WHAT_DE}\s+ist)"),
    (r"\bdu\s+bist\s+(?:doch\s+|ja\s+|nur\s+|bloss\s+)*(?:ein\w*\s+|n\s+)?(?:bot|roboter|maschine|computer"
    r"|ki|programm|chatbot|mensch)\b"),
    rf"^\W*(?:{_WHAT_DE})\s*,?\s*oder\s+(?:{_WHAT_DE})\W*$",
)
_IDENTITY = re.compile("|".join(f"(?:{p}{_OR_TAIL})" for p in _IDENTITY_QUESTIONS))
# Every identity question names what we might be, or asks who/what answers: most messages
# have none of these word starts, and skip the long pattern above (it runs on every message).
_IDENTITY_HINT = re.compile(
    r"\b(?:human|person|people|bot|robot|machine|computer|ai\b|chat|gpt|program|agent|employee|staff|automat"
    r"|real|echt|mensch|roboter|maschine|ki\b|mitarbeiter|kuenstlich|who|what|wer\b|wem\b|was\s+bist)"
)


def _without_identity_questions(folded: str) -> str:
    return _IDENTITY.sub(" ", folded) if _IDENTITY_HINT.search(folded) else folded

_TOKEN = re.compile(r"[a-z0-9]+")
_GENDER = re.compile(r"(?<=[a-z])(?:[*:_]|/-?)(in|innen)\b")


def _fold_keep_case_gender(text: str) -> str:
    # "MitarbeiterIn" (Binnen-I) must be reduced before case is lost.
    return re.sub(r"(?<=[a-zäöüß])In(nen)?\b", lambda m: "*in" + (m.group(1) or ""), text)


def within_one_edit(a: str, b: str) -> bool:
    """True if ``a`` and ``b`` differ by at most one insert, delete, replace or adjacent swap."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diffs = [i for i in range(la) if a[i] != b[i]]
        if len(diffs) == 1:
            return True
        return (
            len(diffs) == 2 and diffs[1] == diffs[0] + 1
            and a[diffs[0]] == b[diffs[1]] and a[diffs[1]] == b[diffs[0]]
        )
    short, long_ = (a, b) if la < lb else (b, a)
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1:]


@dataclass(frozen=True, slots=True)
class _Word:
    """One request word, folded, with its inflected forms."""

    base: str
    forms: frozenset[str]
    typos: bool  # long enough to tolerate one typo


@dataclass(frozen=True, slots=True, eq=False)  # hashed by identity: `_indexed` caches one per word list
class _Words:
    """The request words, indexed so that most tokens are ruled out by dict lookups.

    ``near`` maps every form, and (for words that tolerate a typo) every form with one
    letter deleted, to the words it belongs to. A string one edit away from a form
    (insert, delete, replace, adjacent swap) always has itself or one of its one-letter
    deletions in there; customers' words are mostly near no request word, and then
    `within_one_edit` never runs.
    """

    words: tuple[_Word, ...]
    near: dict[str, frozenset[int]]
    lengths: tuple[int, ...]  # every length a form or a typo of one can have, ascending


@lru_cache(maxsize=64)
def _indexed(words: tuple[str, ...]) -> _Words:
    """The single request words, each with all its inflected forms (folded), indexed (`_Words`)."""
    result: list[_Word] = []
    near: dict[str, set[int]] = {}
    for word in words:
        base = fold(word).strip()
        if base and " " not in base:
            forms = frozenset(base + s for s in _SUFFIXES)
            typos = len(base) >= _MIN_TYPO_LENGTH
            keys = set(forms)
            if typos:
                keys |= {f[:i] + f[i + 1:] for f in forms for i in range(len(f))}
            for key in keys:
                near.setdefault(key, set()).add(len(result))
            result.append(_Word(base, forms, typos))
    lengths = sorted({len(key) + d for key in near for d in (0, 1)})
    return _Words(tuple(result), {k: frozenset(v) for k, v in near.items()}, tuple(lengths))


@lru_cache(maxsize=64)
def _phrases(words: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """Configured multi-word request words ("echte Person"), as folded token tuples."""
    return tuple(tuple(_TOKEN.findall(fold(w))) for w in words if " " in w.strip())


def _near(text: str, index: _Words) -> set[int]:
    """The words ``text`` may be a form or a typo of (to be confirmed by `_matches_form`)."""
    found = set(index.near.get(text, ()))
    for i in range(len(text)):
        found.update(index.near.get(text[:i] + text[i + 1:], ()))
    return found


def _matches_form(token: str, word: _Word) -> bool:
    """``token`` is a form of ``word``, or (a long word) one typo away from one."""
    if token in word.forms:
        return True
    return word.typos and any(within_one_edit(token, f) for f in word.forms)


def _is_fixed_term(tokens: Sequence[str], i: int) -> bool:
    for term in _FIXED_TERMS:
        for start in range(max(0, i - len(term) + 1), i + 1):
            if tuple(tokens[start:start + len(term)]) == term:
                return True
    return False


def _sentence_of(text: str, token_index: int) -> str:
    """The sentence around the n-th token (to see whether it ends in '?')."""
    count = 0
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        count += len(_TOKEN.findall(sentence))
        if token_index < count:
            return sentence
    return text


def _excluded(tokens: Sequence[str], i: int, base: str, folded: str) -> bool:
    """Context rules that turn a word match into a non-request (see module doc)."""
    if _is_fixed_term(tokens, i):
        return True
    before = tokens[i - 1] if i > 0 else ""
    after = tokens[i + 1] if i + 1 < len(tokens) else ""
    if before in _NEGATIONS and not _sentence_of(folded, i).rstrip().endswith("?"):
        return True
    if base == "person" and (before.isdigit() or before in _COUNT_WORDS or (
            before in _ONE_WORDS and i > 1 and tokens[i - 2] in _FOR_WORDS)):
        return True
    if base in ("mensch", "human") and (before in _SELF_WORDS or (
            i > 1 and before in ("ein", "a", "nur", "auch", "just", "only") and tokens[i - 2] in _SELF_WORDS)):
        return True
    if base == "mensch" and i == 0 and len(tokens) > 2 and re.match(r"\s*mensch\s*[,!]", folded):
        return True  # "Mensch, das geht ja gar nicht" is an interjection
    if after in _REPORT_VERBS and (i == 0 or before in _POSSESSIVES) and i + 2 < len(tokens):
        # "Ihr Mitarbeiter hat mir gesagt" reports; "Mitarbeiter bitte" asks.
        return not folded.rstrip().endswith("?")
    return False


def asks_what_i_am(text: str) -> bool:
    """True if the customer asks whether a bot or a person answers ("Bist du ein Mensch?").

    Such a message deserves the honest answer; it hands over only when it also asks for a
    person (`asks_for_human` decides that).
    """
    if not text or not text.strip():
        return False
    folded = fold(text)
    return _IDENTITY_HINT.search(folded) is not None and _IDENTITY.search(folded) is not None


def asks_for_human(text: str, words: Iterable[str] = DEFAULT_REQUEST_WORDS) -> bool:
    """True if the customer asks for a person (``words``: HandoffConfig.request_words)."""
    if not text or not text.strip():
        return False
    folded = fold(_fold_keep_case_gender(text))
    folded = _GENDER.sub("", folded)
    # "Bist du ein Mensch?" asks what answers, not for a person: the question is blanked.
    folded = _without_identity_questions(folded)
    for pattern in _REQUEST_PHRASES:
        if pattern.search(folded):
            return True
    tokens = _TOKEN.findall(folded)
    word_tuple = tuple(words)
    for phrase in _phrases(word_tuple):
        n = len(phrase)
        if n and any(tuple(tokens[i:i + n]) == phrase for i in range(len(tokens) - n + 1)):
            return True
    index = _indexed(word_tuple)
    for i, token in enumerate(tokens):
        for base in _matching_bases(token, index):
            if not _excluded(tokens, i, base, folded):
                return True
    return False


@lru_cache(maxsize=16_384)  # customers' words repeat; the typo and compound checks are the cost
def _matching_bases(token: str, index: _Words) -> tuple[str, ...]:
    """The request words ``token`` is a form, typo or compound head of, in configured order.

    A compound matches with the request word as its head ("kundenberater",
    "servicemitarbeiterin") after a prefix of at least _MIN_COMPOUND_PREFIX letters that
    does not change the meaning (`_BAD_PREFIXES`); the head may carry one typo if the word
    tolerates one. Only heads as long as a form (or a typo of one) are tried.
    """
    if token in _NOT_REQUESTS:
        return ()
    words = index.words
    hits = {k for k in _near(token, index) if _matches_form(token, words[k])}
    for length in index.lengths:
        cut = len(token) - length
        if cut < _MIN_COMPOUND_PREFIX:
            break
        head = token[cut:]
        candidates = _near(head, index) - hits
        if not candidates or head in _NOT_REQUESTS or token[:cut] in _BAD_PREFIXES:
            continue
        for k in candidates:
            word = words[k]
            if head in word.forms or (len(head) >= _MIN_TYPO_LENGTH and _matches_form(head, word)):
                hits.add(k)
    return tuple(word.base for k, word in enumerate(words) if k in hits)
