"""Extractive provider: answers with the retrieved sentences that best support the question.

It needs no LLM and cannot invent: every answer sentence is a sentence of a cited chunk. It prefers
sentences that hold what the question asks for (a person for "who", a place for "where", a date for
"when", a number for "how many"), and when two documents state different values for the same thing
it gives both, cited, and says so (CONFLICTING_SOURCES).
"""

from dataclasses import dataclass, field

from rag.v1 import types_pb2
from services.generate.answer_type import expected_type, holds
from services.generate.confidence import Gate, passes, report, signals
from services.generate.conflicts import Claim, describe, find_conflicts
from services.generate.text import citation, content_terms, sentence_spans

PROVIDER = "extractive"
TEMPLATE_VERSION = "extractive-v2"
TYPE_BONUS = 0.35  # a sentence of the asked-for kind outranks one that shares a word more
CONTEXT_WEIGHT = 0.5  # a question term found elsewhere in the sentence's chunk ("He took office in 2019.")


@dataclass
class Answer:
    text: str
    status: int
    reason: int
    confidence: float
    citations: list[types_pb2.Citation] = field(default_factory=list)
    pieces: list[str] = field(default_factory=list)
    signals: types_pb2.RetrievalSignals = field(default_factory=types_pb2.RetrievalSignals)
    notes: list[int] = field(default_factory=list)
    conflicts: list[types_pb2.Conflict] = field(default_factory=list)


@dataclass(frozen=True)
class Candidate:
    score: float
    overlap: float
    number: int
    hit: types_pb2.Hit
    sentence: str


def abstain(reason: int, confidence: float = 0.0, read: types_pb2.RetrievalSignals | None = None) -> Answer:
    return Answer(
        "", types_pb2.ANSWER_STATUS_ABSTAINED, reason, confidence, signals=read or types_pb2.RetrievalSignals()
    )


def candidates(question: str, hits: list[types_pb2.Hit], min_overlap: float, max_sources: int) -> list[Candidate]:
    question_terms = content_terms(question)
    kind = expected_type(question)
    found = []
    for number, hit in enumerate(hits[:max_sources], start=1):
        text = hit.chunk.text
        in_chunk = question_terms & content_terms(f"{hit.chunk.title} {text}")
        for start, end in sentence_spans(text):
            sentence = text[start:end]
            own = question_terms & content_terms(sentence)
            overlap = (len(own) + CONTEXT_WEIGHT * len(in_chunk - own)) / len(question_terms)
            if overlap >= min_overlap:
                score = overlap + 0.5 * max(hit.dense_score, 0.0) + 0.1 / number
                score += TYPE_BONUS if holds(sentence, kind) else 0.0
                found.append(Candidate(score, overlap, number, hit, sentence))
    found.sort(key=lambda c: -c.score)
    return found


def extract_answer(
    question: str,
    hits: list[types_pb2.Hit],
    max_sentences: int,
    gate: Gate,
    min_overlap: float,
    max_sources: int = 5,
    dense_skipped: bool = False,
) -> Answer:
    if not hits:
        return abstain(types_pb2.ABSTAIN_REASON_NO_RELEVANT_SOURCES)
    read = signals(question, hits, dense_skipped)
    reported = report(read)
    if not passes(read, gate):
        return abstain(types_pb2.ABSTAIN_REASON_LOW_RETRIEVAL_CONFIDENCE, max(read.best_dense, 0.0), reported)
    if not content_terms(question):
        return abstain(types_pb2.ABSTAIN_REASON_UNSUPPORTED_BY_SOURCES, 0.0, reported)
    found = candidates(question, hits, min_overlap, max_sources)
    if not found:
        return abstain(types_pb2.ABSTAIN_REASON_UNSUPPORTED_BY_SOURCES, read.best_dense / 2, reported)

    chosen, seen = [], set()
    for candidate in found:
        if candidate.sentence not in seen:
            seen.add(candidate.sentence)
            chosen.append(candidate)
        if len(chosen) == max_sentences:
            break
    claims = {c.sentence: c for c in found}
    conflicts = find_conflicts(
        [Claim(c.sentence, c.number, c.hit) for c in chosen],
        [Claim(c.sentence, c.number, c.hit) for c in found if c.sentence not in {x.sentence for x in chosen}],
    )
    for _, a, b in conflicts:  # both sides of a disagreement are quoted, whatever they scored
        for claim in (a, b):
            if claim.sentence not in {c.sentence for c in chosen}:
                chosen.append(claims[claim.sentence])

    pieces, citations, position = [], [], 0
    for i, candidate in enumerate(chosen):
        piece = f"{candidate.sentence} [{candidate.number}]" + (" " if i < len(chosen) - 1 or conflicts else "")
        citations.append(
            citation(candidate.number, candidate.hit, position, position + len(candidate.sentence), candidate.sentence)
        )
        pieces.append(piece)
        position += len(piece)
    for i, (conflict, _, _) in enumerate(conflicts):
        pieces.append(describe(conflict) + (" " if i < len(conflicts) - 1 else ""))
    best_overlap = chosen[0].overlap
    reported.answer_support = round(max(c.overlap for c in chosen), 4)
    confidence = round(min(1.0, 0.5 * read.best_dense + 0.5 * best_overlap), 4)
    return Answer(
        "".join(pieces),
        types_pb2.ANSWER_STATUS_ANSWERED,
        types_pb2.ABSTAIN_REASON_UNSPECIFIED,
        confidence,
        citations,
        pieces,
        reported,
        [types_pb2.ANSWER_NOTE_CONFLICTING_SOURCES] if conflicts else [],
        [conflict for conflict, _, _ in conflicts],
    )
