"""Is an answer sentence supported by the sources it cites? Lexical overlap first, then embedding
similarity to the cited sources' sentences; and cutting a streamed answer into sentences."""

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from services.generate.citations import attach_trailing_markers
from services.generate.prompt import Source
from services.generate.text import content_terms, sentence_spans

Embed = Callable[[list[str]], Awaitable[np.ndarray]]


# Sentences of a source that speak to the reader of the prompt rather than about the world. They are
# data the model must not obey, so an answer that repeats them is not supported by them.
INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b.{0,40}\b(?:instructions?|rules|prompt|above)\b"
    r"|\b(?:answer|reply|respond|say|output|print|write)\s+(?:only|just|exactly)\b"
    r"|\byou (?:are now|must now|will now)\b|\bsystem prompt\b",
    re.IGNORECASE | re.DOTALL,
)


def statements(text: str) -> str:
    """A source's text without its sentences (or lines) that give instructions."""
    kept = []
    for line in text.splitlines():
        kept += [line[s:e] for s, e in sentence_spans(line) if not INSTRUCTION.search(line[s:e])]
    return " ".join(kept)


class SentenceGate:
    """Collects streamed text; hands out each sentence once the next one has begun."""

    def __init__(self) -> None:
        self.buffer = ""

    def feed(self, delta: str) -> list[str]:
        text = attach_trailing_markers(self.buffer + delta)
        spans = sentence_spans(text)
        done, cut = [], 0
        for (start, end), (following, _) in zip(spans, spans[1:], strict=False):
            if text[following] == "[":  # may be this sentence's citation still arriving
                break
            done.append(text[start:end])
            cut = following
        self.buffer = text[cut:]
        return done

    def flush(self) -> list[str]:
        text, self.buffer = attach_trailing_markers(self.buffer), ""
        return [text[s:e] for s, e in sentence_spans(text)]


def lexical_support(sentence: str, texts: list[str]) -> float:
    """Share of the sentence's content terms that the texts contain (1.0 when it has none)."""
    terms = content_terms(sentence)
    if not terms:
        return 1.0
    known = set().union(*(content_terms(t) for t in texts)) if texts else set()
    return len(terms & known) / len(terms)


@dataclass(frozen=True)
class Judgement:
    supported: bool
    score: float
    numbers: list[int]
    quote: str
    reattributed: bool = False  # supported by another source than the one it cited


class Grounder:
    """Judges sentences against one answer's sources; source sentence vectors are embedded once."""

    def __init__(self, sources: list[Source], embed: Embed, min_overlap: float, min_cosine: float) -> None:
        self.sources = {s.number: s for s in sources}
        self.texts = {s.number: statements(s.text) for s in sources}  # what a source may support
        self.embed, self.min_overlap, self.min_cosine = embed, min_overlap, min_cosine
        self._sentences: dict[int, tuple[list[str], np.ndarray]] = {}

    async def _source_sentences(self, numbers: list[int]) -> None:
        missing = [n for n in numbers if n not in self._sentences]
        texts = {n: [self.texts[n][s:e] for s, e in sentence_spans(self.texts[n])] for n in missing}
        flat = [t for n in missing for t in texts[n]]
        if not flat:
            return
        vectors = await self.embed(flat)
        at = 0
        for n in missing:
            self._sentences[n] = (texts[n], vectors[at : at + len(texts[n])])
            at += len(texts[n])

    async def judge(self, sentence: str, cited: list[int]) -> Judgement:
        """`sentence` without its markers; `cited` the valid source numbers it gave. A sentence
        citing none may be supported by any source, the best of which becomes its citation; so may
        one whose cited sources do not hold it (a small model's slip of number), which is then
        `reattributed`."""
        if cited:
            judgement = await self._judge(sentence, cited, sorted(cited))
            if judgement.supported:
                return judgement
        judgement = await self._judge(sentence, [], sorted(self.sources))
        if cited and judgement.supported:
            return Judgement(True, judgement.score, judgement.numbers, judgement.quote, reattributed=True)
        return judgement

    async def _judge(self, sentence: str, cited: list[int], candidates: list[int]) -> Judgement:
        if cited:
            lexical, best = lexical_support(sentence, [self.texts[n] for n in cited]), cited
        else:
            scored = [(lexical_support(sentence, [self.texts[n]]), n) for n in candidates]
            lexical, number = max(scored) if scored else (0.0, 0)
            best = [number] if number else []
        await self._source_sentences(candidates)
        vector = (await self.embed([sentence]))[0]
        cosine, quote, quote_number = -1.0, "", 0
        for n in candidates:
            texts, vectors = self._sentences.get(n, ([], np.zeros((0, 1))))
            if not texts:
                continue
            similarities = vectors @ vector
            i = int(np.argmax(similarities))
            if similarities[i] > cosine:
                cosine, quote, quote_number = float(similarities[i]), texts[i], n
        supported = lexical >= self.min_overlap or cosine >= self.min_cosine
        if not cited and cosine >= self.min_cosine and lexical < self.min_overlap:
            best = [quote_number]
        return Judgement(supported, round(max(lexical, cosine, 0.0), 4), best if supported else [], quote)
