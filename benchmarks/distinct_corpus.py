"""A benchmark corpus of any size whose chunks all differ: documents made of sentences sampled
across the dbpedia abstracts with a fixed seed. Repeating the 5,000 abstracts under new ids would
give HNSW duplicate vectors and BM25 duplicate texts, which neither meets in a real corpus."""

import random
import re
from dataclasses import dataclass

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
MIN_WORDS = 4
SENTENCES_PER_CHUNK = (2, 4)  # about 45-90 words, the size of an abstract


@dataclass(frozen=True)
class SampledChunk:
    title: str  # the title of the abstract its first sentence came from
    text: str


def sentences(abstracts: list[dict]) -> list[tuple[str, str]]:
    """(title, sentence) for every sentence of at least MIN_WORDS words, in corpus order."""
    out = []
    for abstract in abstracts:
        for sentence in SENTENCE_END.split(abstract["text"].strip()):
            if len(sentence.split()) >= MIN_WORDS:
                out.append((abstract["title"], sentence))
    return out


def distinct_chunks(abstracts: list[dict], count: int, seed: int = 20) -> list[SampledChunk]:
    """`count` chunks of sentences drawn across the whole corpus; no two texts are equal."""
    pool = sentences(abstracts)
    if len(pool) < SENTENCES_PER_CHUNK[1]:
        raise ValueError(f"{len(pool)} sentences are too few to sample chunks from")
    rng = random.Random(seed)
    seen: set[str] = set()
    chunks = []
    while len(chunks) < count:
        picks = rng.sample(pool, rng.randint(*SENTENCES_PER_CHUNK))
        text = " ".join(sentence for _, sentence in picks)
        if text in seen:
            continue
        seen.add(text)
        chunks.append(SampledChunk(picks[0][0], text))
    return chunks
