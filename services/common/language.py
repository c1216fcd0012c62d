"""Language identification of chunks and queries with py3langid (BSD, its 4.5 MB model inside the
package: nothing is downloaded).

Detection is restricted to the languages the lexical analysis knows (a Snowball stemmer, or CJK
bigrams) plus a few widely written ones: over py3langid's ~100 labels, short texts were often
given rare neighbours ("Hollywood actors" -> cy). A text whose best guess is unsure is `""`
(unknown): it is analysed by the plain, language-neutral form alone.
"""

import functools
import re

# ISO 639-1 code -> Snowball stemmer name.
STEMMED = {
    "ar": "arabic",
    "ca": "catalan",
    "cs": "czech",
    "da": "danish",
    "de": "german",
    "el": "greek",
    "en": "english",
    "es": "spanish",
    "et": "estonian",
    "eu": "basque",
    "fa": "persian",
    "fi": "finnish",
    "fr": "french",
    "ga": "irish",
    "hi": "hindi",
    "hu": "hungarian",
    "hy": "armenian",
    "id": "indonesian",
    "it": "italian",
    "lt": "lithuanian",
    "ne": "nepali",
    "nl": "dutch",
    "no": "norwegian",
    "pl": "polish",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sr": "serbian",
    "sv": "swedish",
    "ta": "tamil",
    "tr": "turkish",
}
CJK = ("zh", "ja", "ko")
OTHERS = ("uk", "bg", "he", "th", "vi", "ur", "bn", "ms", "sk", "hr", "sl", "lv")
LANGUAGES = tuple(sorted({*STEMMED, *CJK, *OTHERS}))
# Below this probability (normalised over LANGUAGES) a guess is not taken.
MIN_PROBABILITY = 0.5
# What detection reads of a long chunk: enough to decide, bounded in cost.
SAMPLE_CHARS = 2000
_WORDS = re.compile(r"\w", re.UNICODE)


@functools.cache
def _identifier():
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(LANGUAGES))
    return identifier


def detect(text: str) -> tuple[str, float]:
    """(ISO 639-1 code or "" when unsure, probability of the best guess)."""
    sample = text[:SAMPLE_CHARS]
    if not _WORDS.search(sample):
        return "", 0.0
    language, probability = _identifier().classify(sample)
    probability = float(probability)
    return (language if probability >= MIN_PROBABILITY else ""), probability


def language_of(text: str) -> str:
    return detect(text)[0]
