"""Pure text helpers for answering: sentence spans and content terms."""

import re

from rag.v1 import types_pb2

SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
# A period after these is not a sentence end.
ABBREVIATION = re.compile(r"(?:\b(?:e\.g|i\.e|etc|vs|mr|mrs|ms|dr|prof|st|no|fig|approx|cf)|\b[a-z])\.$", re.I)
WORD = re.compile(r"[^\W_]+", re.UNICODE)
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more most my
    myself no nor not now of off on once only or other our ours ourselves out over own same she should so
    some such than that the their theirs them themselves then there these they this those through to too
    under until up very was we were what when where which while who whom why will with would you your
    yours yourself yourselves tell give show explain describe known called""".split()
)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence, ends exclusive, surrounding whitespace excluded."""
    spans, start = [], 0
    for match in SENTENCE_END.finditer(text):
        if ABBREVIATION.search(text, max(0, match.start() - 8), match.start()):
            continue
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    out = []
    for s, e in spans:
        segment = text[s:e]
        lead = len(segment) - len(segment.lstrip())
        trail = len(segment.rstrip())
        if trail > lead:
            out.append((s + lead, s + trail))
    return out


def stem(word: str) -> str:
    for suffix in ("ies", "ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def content_terms(text: str) -> set[str]:
    return {stem(w) for w in (m.group().lower() for m in WORD.finditer(text)) if w not in STOPWORDS}


def citation(number: int, hit: types_pb2.Hit, start: int, end: int, quote: str) -> types_pb2.Citation:
    """Source `number` (a retrieved hit) cited by the answer text in [start, end)."""
    return types_pb2.Citation(
        source_number=number,
        chunk_id=hit.chunk.chunk_id,
        doc_id=hit.chunk.doc_id,
        score=hit.score,
        answer_start=start,
        answer_end=end,
        quote=quote,
    )
