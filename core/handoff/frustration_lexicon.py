"""German and English cue lists for `core.handoff.frustration`, plus the text folding both
the lexicon and `core.handoff.triggers` match on.

Entries are folded (lower case, ß -> ss, ä/ö/ü -> ae/oe/ue). A trailing ``*`` means
"any ending" (``enttaeusch*`` covers enttäuscht, Enttäuschung); entries with a space
are phrases matched on word boundaries; ``re:`` starts a regular expression (on folded
text). Weights live in `frustration.py`.
"""

from __future__ import annotations

import functools
import unicodedata

_FOLD_CACHED_UP_TO = 512  # characters: a turn folds its message several times (scorer, triggers)


def fold(text: str) -> str:
    """Lower-case, ß -> ss, umlauts -> ae/oe/ue, accents dropped (for matching only)."""
    return _fold_cached(text) if len(text) <= _FOLD_CACHED_UP_TO else _fold(text)


@functools.lru_cache(maxsize=2048)
def _fold_cached(text: str) -> str:
    return _fold(text)


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.replace("ä", "ae").replace("ö", "oe").replace("ü", "ue")
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


# Insults and strong profanity: one is enough.
PROFANITY: tuple[str, ...] = (
    "scheiss*", "scheisse*", "beschissen*", "kacke", "kack*", "arsch*", "wichser*", "idiot*",
    "vollidiot*", "depp*", "trottel*", "bescheuert*", "verarsch*", "dreck*", "drecks*",
    "saftladen", "sauladen", "volltrottel*", "spast*", "schwachsinn*", "bloedsinn*",
    "what the hell", "the hell", "zum teufel", "fuck*", "shit*", "bullshit", "wtf", "asshole*", "moron*", "idiot", "dumbass", "crap*",
    "stfu", "piss*", "bloody", "damn it", "goddamn*", "screw you", "sucks", "suck",
)
# Mild swearing, often self-directed ("Mist, vertippt"): needs another cue.
MILD_PROFANITY: tuple[str, ...] = (
    "mist", "verdammt*", "verflixt*", "menno", "mann ey", "boah", "ugh", "argh",
    "damn", "dammit", "darn", "jeez", "omg", "ffs",
)
# Words that say the customer is angry or that the service failed them badly.
STRONG_NEGATIVE: tuple[str, ...] = (
    "unverschaemt*", "frechheit", "inakzeptabel*", "laecherlich*", "katastroph*",
    "zumutung", "nutzlos*", "sinnlos*", "wuetend*", "stinksauer", "sauer", "nase voll",
    "reicht mir", "reicht jetzt", "zeitverschwendung", "abzocke*", "betrug*", "betrueger*",
    "ein witz", "schlechteste*", "unfaehig*", "inkompetent*", "dumm*", "bloed*",
    "unacceptable", "ridiculous", "worst", "useless", "pathetic", "furious", "fed up",
    "had enough", "waste of time", "waste of my time", "scam*", "rip off", "ripoff",
    "a joke", "incompetent", "stupid", "dumb", "outrageous", "disgrace*", "disgusting",
    "fraud*", "hate", "hasse", "absurd", "disaster", "enough is enough", "reichts", "reicht's",
    "jetzt reicht", "unglaublich", "kann doch nicht wahr sein", "can't believe", "cannot believe",
    "can t believe", "was soll das", "was soll der", "was soll die",
    # saying so: "I'm angry", "bin genervt"
    "genervt", "frustriert", "enttaeuscht", "veraergert", "angry", "annoyed", "frustrated",
    "disappointed", "sick of", "tired of", "upset",
    (
        "re:(total|voellig|extrem|echt|sehr|so|really|extremely|absolutely|completely|totally|"
        "just|einfach|nur)\\s+(schlecht\\w*|mies\\w*|furchtbar\\w*|schrecklich\\w*|terrible|awful|"
        "horrible|bad|poor|nervig\\w*|annoying)"
    ),
)
# Clearly negative, but polite customers use them too.
NEGATIVE: tuple[str, ...] = (
    "enttaeusch*", "nervig*", "nervt", "frustrier*", "aergerlich*", "veraerger*",
    "schrecklich*", "furchtbar*", "miserabel*", "mies*", "unzufrieden*", "schlecht*",
    "unmoeglich*", "peinlich*", "traurig", "ungeduldig*", "anstrengend",
    "disappoint*", "annoy*", "frustrat*", "terrible", "awful", "horrible", "unhappy",
    "bad", "poor", "mad", "impossible", "unbelievable", "unreliable", "incredibly slow",
    "nothing works", "nichts funktioniert", "nichts geht", "geht gar nichts", "gar nichts",
)
# The same problem, again: "still not working", "funktioniert immer noch nicht".
PERSISTENCE: tuple[str, ...] = (
    "immer noch nicht", "noch immer nicht", "immer noch kein*", "noch immer kein*",
    # bare "immer noch" only with a broken state: "Gibt es das Angebot immer noch?" is no complaint
    *(
        f"re:{still}\\s+(?:\\w+\\s+){{0,2}}(?:offline|down|kaputt|defekt|gestoert|weg|falsch|ausgefallen|nichts|nix"
        "|tot|langsam|da|gesperrt|offen|nicht)\\b"
        for still in ("immer noch", "noch immer")
    ),
    "re:warte\\w*\\s+(?:\\w+\\s+)?(?:immer noch|noch immer)", "schon wieder", "wieder nicht", "zum zweiten mal", "zum dritten mal",
    "zum x-ten mal", "zum xten mal", "zum hundertsten mal", "wie oft noch", "wie oft denn",
    "wie oft soll", "seit tagen", "seit wochen", "seit stunden", "seit einer woche",
    "x mal", "tausendmal", "hab ich doch schon", "habe ich doch schon", "habe ich schon gesagt",
    "schon dreimal", "schon zweimal", "schon mehrmals", "zigmal",
    "still not", "still doesn", "still does not", "still isn", "still is not", "still no",
    "still can", "still broken", "still waiting", "again and again", "once again", "yet again",
    "for the second time", "for the third time", "for the 3rd time", "how many times",
    "for days", "for weeks", "for hours", "told you already", "already told you",
    "i already said", "i said already", "keep telling", "keeps happening", "every time",
    "never works", "nie funktioniert", "funktioniert nie", "klappt nie",
    "how much longer", "how long do i have to", "wie lange noch", "wie lange soll", "wie lange denn",
    "re:taking\\s+so\\s+(damn\\s+|bloody\\s+)?long", "dauert so lange", "dauert das so lange", "so lange warten",
    "same question", "same problem", "same issue", "dieselbe frage", "immer dasselbe",
    "immer das gleiche", "das gleiche problem", "dasselbe problem", "every single",
    "re:(zweite|dritte|vierte|fuenfte|x-te|xte|\\d+\\.)\\s+mal",
    "re:(second|third|fourth|fifth|\\d+(st|nd|rd|th))\\s+(time|email|e-mail|message|call|request)s?",
    "re:(two|three|four|five|several|many|multiple|zwei|drei|vier|fuenf|mehrere|\\d+)\\s*(times|mal)",
    "re:(broken|down|offline|failing|failed|gone)\\s+again",
    "re:wieder\\s+(kaputt|down|offline|weg|ausgefallen)",
    "re:(jetzt|wann|koennen sie|kannst du|bitte)\\b.{0,40}\\bendlich",
)
# The bot or the service does not help.
NOT_HELPING: tuple[str, ...] = (
    "hilft nicht", "hilft mir nicht", "hilft nichts", "hilft mir nichts", "bringt nichts",
    "nicht hilfreich", "keine hilfe", "verstehst mich nicht", "verstehen mich nicht",
    "verstehst du nicht", "versteht mich nicht", "bloeder bot", "dummer bot", "scheiss bot",
    "doesn't help", "does not help", "not helpful", "no help", "unhelpful", "you don't understand",
    "you do not understand", "you're not listening", "you are not listening", "stupid bot",
    "useless bot", "pointless", "not what i asked", "nicht was ich gefragt",
    "danke fuer nichts", "thanks for nothing", "hoert mir nicht zu",
)
# Leaving, suing, complaining publicly.
THREAT: tuple[str, ...] = (
    "re:(ich|dann|sonst|wir)\\s+(kuendige|werde\\s+\\w*\\s*kuendigen)", "kuendige ich", "anwalt", "rechtsanwalt", "verbraucherzentrale",
    "schlechte bewertung", "beschwerde einreichen", "anbieter wechseln", "nie wieder",
    "re:i'?m\\s+(cancel+ing|leaving|switching)", "i will cancel", "i'll cancel", "lawyer",
    "sue you", "bad review", "file a complaint", "switch provider", "never again",
    "chargeback", "last chance", "letzte chance", "i'm out", "im out", "beschweren",
    "complain", "switching providers", "zu wechseln", "will be in touch", "wird sich bei ihnen melden",
)
# Nobody answers or cares.
IGNORED: tuple[str, ...] = (
    (
        "re:(niemand|keiner|nobody|no one|no-one)\\b.{0,25}\\b(antwort\\w*|kuemmert|hilft|meldet|"
        "reagiert|answer\\w*|repl\\w*|respond\\w*|help\\w*|cares?|listen\\w*|get\\w* back)"
    ),
    "re:(hoert|liest)\\s+(mir\\s+)?(ueberhaupt\\s+)?(jemand|einer)",
    "re:(is|does)\\s+(anyone|anybody)\\s+(even\\s+)?(listening|reading|there)",
    "re:(ist|sitzt)\\s+(da|hier)\\s+(ueberhaupt\\s+)?(jemand|einer)\\s*\\?{2,}",
    "re:(antwortet|hilft|meldet|reagiert|kuemmert)\\s+(sich\\s+)?(hier\\s+|mir\\s+|denn\\s+)*(niemand|keiner)",
    "keine antwort", "no answer", "no reply", "no response", "never got back", "ignoriert",
    "ignored", "ignoring me",
)
# Mild regret words: a touch of negativity in otherwise polite messages.
MILD_NEGATIVE: tuple[str, ...] = (
    "leider", "schade", "problem*", "fehler*", "kaputt", "defekt",
    "unfortunately", "problem", "problems", "issue", "issues", "broken", "error*",
)
# Polite requests: a complaint phrased like this is not (yet) frustration.
POLITE: tuple[str, ...] = (
    "bitte", "koennten sie", "koennen sie bitte", "wuerden sie", "waeren sie so nett",
    "please", "could you", "would you", "would you mind", "kindly",
)
# Thanks and praise: damp the weak cues (caps, !!!) of happy shouting ("DANKE!!!").
POSITIVE: tuple[str, ...] = (
    "danke*", "dankeschoen", "vielen dank", "super", "toll", "perfekt", "klasse", "prima",
    "genial", "spitze", "wunderbar", "top", "freu*", "gut", "geklappt", "funktioniert jetzt",
    "klappt jetzt", "endlich geschafft", "juhu", "yay", "hurra",
    "thank*", "thx", "great", "awesome", "perfect", "wonderful", "excellent", "amazing",
    "love", "works now", "working now", "brilliant", "fantastic", "cool", "nice", "happy",
    "good", "glad", "appreciate*",
)
# Phrases that look negative but are not about this service.
NEGATIVE_SHIELDS: tuple[str, ...] = (
    "nicht schlecht", "not bad", "kein problem", "no problem", "no problems", "keine probleme",
    "nicht so schlimm", "no worries", "not a problem", "kein thema", "problem geloest",
    "problem solved", "no issue", "no issues", "kein stress", "ohne probleme",
    "gar nicht schlecht", "gut gemacht", "not too bad", "sorry to bother", "never mind",
    # forwarded texts and cheerful returns are not the customer repeating a complaint
    "re:(forwarded|shared|weitergeleitet|geteilt)\\s+(so\\s+|very\\s+)?(many|several|multiple|\\d+)\\s*(times|mal)",
    "re:(oft|mehrfach|mehrmals|vielfach)\\s+(weitergeleitet|geteilt)", "schon wieder ich", "me again",
    "it's me again", "wieder ich",
)
# A message that says the problem is solved: "again"/"zum zweiten Mal" then reports success.
RESOLVED: tuple[str, ...] = (
    "funktioniert jetzt", "klappt jetzt", "jetzt klappt", "jetzt funktioniert", "jetzt geht",
    "geht jetzt", "geht wieder", "funktioniert wieder", "klappt wieder", "problem geloest", "hat geklappt",
    "works now", "now it works", "now works", "working now", "working again", "works again",
    "problem solved", "it worked", "fixed now", "now fixed", "all good now",
)
# Polite closings: every word of the message from this list, and at least one closing marker
# ("danke", "bye"). A closing ends the issue; saying it twice is no repeated question.
CLOSING_MARKERS: tuple[str, ...] = (
    "danke*", "dank", "merci", "tschuess", "tschau", "ciao", "wiedersehen", "wiederhoeren", "servus",
    "das wars", "das war s", "das war alles", "schoenen tag", "schoenen abend", "schoenes wochenende",
    "thanks", "thank you", "thx", "ty", "bye", "byebye", "bye bye", "goodbye", "cheers", "cya", "see ya",
    "see you", "that s all", "thats all", "that was all", "nice day", "good day", "nice weekend",
)
CLOSING_WORDS: frozenset[str] = frozenset({
    "danke", "dank", "dankeschoen", "merci", "tschuess", "tschau", "ciao", "wiedersehen", "wiederhoeren",
    "servus", "wars", "tag", "abend", "wochenende", "schoenes", "thanks", "thank", "thx", "ty", "byebye",
    "goodbye", "cheers", "cya", "later", "day", "evening", "weekend", "all", "thats",
    # de
    "ok", "okay", "oki", "okey", "alles", "klar", "gut", "super", "prima", "perfekt", "toll", "passt", "so",
    "schoen", "schoenen", "vielen", "besten", "herzlichen", "lieben", "tausend", "fuer", "die", "ihre",
    "deine", "eure", "hilfe", "bis", "dann", "bald", "spaeter", "morgen", "auf", "noch", "einen", "das",
    "war", "s", "erledigt", "verstanden", "ja", "nein", "jo", "jep", "gerne", "top", "mach", "machs",
    "macht", "es", "euch", "ihnen", "dir", "sehr", "nett", "und", "wunderbar", "hat", "geholfen",
    # en
    "k", "kk", "alright", "right", "fine", "great", "good", "perfect", "cool", "nice", "you", "very",
    "much", "a", "lot", "lots", "see", "ya", "mate", "have", "that", "it", "was", "got", "for",
    "your", "the", "help", "understood", "sounds", "will", "do", "yes", "no", "nope", "yep", "yeah", "sure",
    "noted", "np", "and", "again", "wonderful", "awesome", "helped", "bye", "is", "me", "now",
})
# Opening words of a question or a request (folded): only those can be a repeated question.
QUESTION_STARTS: frozenset[str] = frozenset({
    "wie", "wann", "wo", "wohin", "woher", "warum", "wieso", "weshalb", "was", "wer", "wen", "wem",
    "welche", "welcher", "welches", "welchen", "kann", "koennen", "koennt", "koennten", "kannst", "gibt",
    "ist", "sind", "hast", "habt", "haben", "hat", "bitte", "wird", "werden", "darf", "duerfen", "muss",
    "how", "when", "where", "why", "what", "who", "which", "can", "could", "do", "does", "did", "is", "are",
    "will", "would", "please", "have", "has", "should", "may",
})
