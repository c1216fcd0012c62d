"""Lexical analysis, done here once for every lexical engine: Tantivy and OpenSearch index the terms
this module makes with a whitespace tokenizer, so both hold exactly the same terms.

Two forms of a text:
- *stemmed*, in the text's language: NFKC and case folding, Arabic diacritics (harakat) and
  tatweel removed and its letter variants folded, stop words dropped and a Snowball stemmer
  (PyStemmer) applied per language; Chinese, Japanese and Korean runs split into bigrams.
- *plain*, for exact identifiers and languages without a stemmer: the same folding, Latin accents
  removed, no stemming, no stop words, and every compound identifier (`ERR-4821`, `v1.2.3`,
  `user_id`, `api/v1/users`) kept whole beside its parts.
"""

import functools
import re
import sys
import threading
import unicodedata
from dataclasses import dataclass

import Stemmer
import tantivy

from services.common.language import STEMMED, detect

MAX_WORD = 40  # longer "words" (base64, hashes run together) only bloat the index
MAX_COMPOUND = 64

ARABIC_MARKS = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0640]")  # harakat, Quranic marks, tatweel
ARABIC_LETTERS = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه", "ؤ": "و", "ئ": "ي"})
LATIN_ACCENTS = re.compile("[\u0300-\u036f]")
CJK_CHARS = "\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
CJK_RUN = re.compile(f"[{CJK_CHARS}]+")
HAS_CJK = re.compile(f"[{CJK_CHARS}]")
COMPOUND_JOINERS = "-./:#@+"  # "_" is a word character already
# Tantivy ships stop-word lists for these; Arabic's is below.
TANTIVY_STOP_WORDS = {
    "da": "danish",
    "de": "german",
    "en": "english",
    "es": "spanish",
    "fi": "finnish",
    "fr": "french",
    "hu": "hungarian",
    "it": "italian",
    "nl": "dutch",
    "no": "norwegian",
    "pt": "portuguese",
    "ru": "russian",
    "sv": "swedish",
}
ARABIC_STOP_WORDS = """
في من على الى إلى عن مع هذا هذه ذلك تلك التي الذي الذين اللذان اللتان هو هي هم هن انا أنا نحن انت أنت
كان كانت يكون تكون قد لقد ثم او أو و ف ب ل ك ما ماذا متى اين أين كيف لماذا هل لا لم لن ان أن إن كل بعض
غير بين حتى عند عندما اذا إذا منذ بعد قبل حول خلال ضد لدى له لها لهم به بها فيه فيها منه منها عليه عليها
وهو وهي وقد وكان وكانت ولا وفي ومن وعلى الا إلا ايضا أيضا اي أي كما مثل التى ماهو ماهي بماذا كم تم
"""


def _marks() -> str:
    """A character class of every combining mark: Python's \\w leaves them out, which would cut
    Devanagari or Tamil words apart at every vowel sign."""
    ranges, start, previous = [], None, None
    for code in range(0x300, min(sys.maxunicode, 0x1FFFF) + 1):
        if unicodedata.category(chr(code)).startswith("M"):
            if start is None:
                start = code
            previous = code
        elif start is not None:
            ranges.append((start, previous))
            start = None
    if start is not None:
        ranges.append((start, previous))
    return "".join(f"{chr(a)}-{chr(b)}" if a != b else chr(a) for a, b in ranges)


WORD = re.compile(f"[\\w{_marks()}]+")
COMPOUND = re.compile(f"[\\w{_marks()}]+(?:[{re.escape(COMPOUND_JOINERS)}][\\w{_marks()}]+)+")


def normalise(text: str) -> str:
    """NFKC, case folding, Arabic diacritics and tatweel removed, Arabic letter variants folded."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return ARABIC_MARKS.sub("", text).translate(ARABIC_LETTERS)


def fold_accents(word: str) -> str:
    return LATIN_ACCENTS.sub("", unicodedata.normalize("NFD", word)) if not word.isascii() else word


def words(text: str) -> list[str]:
    """Words of normalised text; CJK runs as overlapping bigrams (a lone character as itself)."""
    out = []
    for word in WORD.findall(text):
        if len(word) > MAX_WORD:
            continue
        if not HAS_CJK.search(word):
            out.append(word)
            continue
        position = 0
        for run in CJK_RUN.finditer(word):
            out.extend(w for w in (word[position : run.start()],) if w)
            chars = run.group()
            out.extend([chars] if len(chars) == 1 else [chars[i : i + 2] for i in range(len(chars) - 1)])
            position = run.end()
        out.extend(w for w in (word[position:],) if w)
    return out


_local = threading.local()  # stemmers and stop-word filters are not shared between threads


def _stemmer(language: str):
    stemmers = _local.__dict__.setdefault("stemmers", {})
    if language not in stemmers:
        stemmers[language] = Stemmer.Stemmer(STEMMED[language], 20000)
    return stemmers[language]


@functools.cache
def _arabic_stop_words() -> frozenset[str]:
    return frozenset(normalise(w) for w in ARABIC_STOP_WORDS.split())


def _without_stop_words(language: str, tokens: list[str]) -> list[str]:
    if language == "ar":
        stop = _arabic_stop_words()
        return [t for t in tokens if t not in stop]
    name = TANTIVY_STOP_WORDS.get(language)
    if name is None or not tokens:
        return tokens
    filters = _local.__dict__.setdefault("stop_filters", {})
    if language not in filters:
        builder = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace())
        filters[language] = builder.filter(tantivy.Filter.stopword(name)).build()
    return filters[language].analyze(" ".join(tokens))


def stemmed(text: str, language: str) -> list[str]:
    """Index terms of `text` in `language` (ISO 639-1; "" or an unknown one: not stemmed)."""
    tokens = _without_stop_words(language, words(normalise(text)))
    if language in STEMMED:
        return _stemmer(language).stemWords(tokens)
    return tokens


def plain(text: str) -> list[str]:
    """Language-neutral terms: folded words, and compound identifiers whole."""
    text = normalise(text)
    terms = [fold_accents(w) for w in words(text)]
    terms += [fold_accents(c) for c in COMPOUND.findall(text) if len(c) <= MAX_COMPOUND]
    return terms


def identifiers(text: str) -> list[str]:
    """Plain terms that name something exactly: compounds, and words holding digits."""
    folded = plain(text)
    return list(dict.fromkeys(t for t in folded if _exact(t)))


def _exact(term: str) -> bool:
    """A compound (`err-4821`, `user_id`), a code mixing letters and digits (`x7b2`), or a number
    of five digits or more (an order number; not a year): terms that name one thing exactly."""
    if any(c in COMPOUND_JOINERS for c in term) or "_" in term:
        return True
    digits = sum(c.isdigit() for c in term)
    return digits > 0 and (digits < len(term) or digits >= 5)


SCRIPT_GUESSES = (
    (re.compile("[\u0600-\u06ff]"), "ar"),
    (re.compile("[\u0400-\u04ff]"), "ru"),
    (re.compile("[\u0370-\u03ff]"), "el"),
)


@dataclass(frozen=True)
class AnalysedQuery:
    language: str  # the detected language, "" when unsure
    probability: float
    languages: tuple[str, ...]  # the languages its stemmed terms were made in
    stemmed: tuple[str, ...]
    plain: tuple[str, ...]
    identifiers: tuple[str, ...]


def analyse_query(text: str) -> AnalysedQuery:
    """A query's terms. Detection on a few words is often unsure: then the query is stemmed as the
    language its script suggests (English for Latin script), besides the plain form."""
    language, probability = detect(text)
    chosen = language
    if not chosen:
        chosen = next((lang for pattern, lang in SCRIPT_GUESSES if pattern.search(text)), "en")
        if HAS_CJK.search(text):
            chosen = "zh"
    terms = list(dict.fromkeys(stemmed(text, chosen)))
    return AnalysedQuery(
        language,
        probability,
        (chosen,),
        tuple(terms),
        tuple(dict.fromkeys(plain(text))),
        tuple(identifiers(text)),
    )


TERM_FIELDS = ("title_terms", "section_terms", "text_terms")  # stemmed, in the chunk's language
PLAIN_FIELD = "plain"  # plain terms of title, section and text
FIELD_BOOSTS = dict.fromkeys(TERM_FIELDS, 1.0)
PLAIN_BOOST = 0.25  # measured: 0 -> 0.25 -> 1.0 gave dbpedia-5k 0.405, 0.407, 0.390; arcd-dev 0.794, 0.804, 0.804


def chunk_language(language: str, title: str, text: str) -> str:
    """The language recorded on a chunk at ingestion; chunks indexed before it was recorded are
    detected here."""
    return language if language else detect(f"{title}. {text}")[0]


def document_terms(title: str, section: str, text: str, language: str) -> dict[str, str]:
    """What the lexical engines index of a chunk: each field's terms joined by spaces (both engines
    split them on whitespace, nothing else)."""
    return {
        "title_terms": " ".join(stemmed(title, language)),
        "section_terms": " ".join(stemmed(section, language)),
        "text_terms": " ".join(stemmed(text, language)),
        PLAIN_FIELD: " ".join(plain(f"{title}\n{section}\n{text}")),
    }
