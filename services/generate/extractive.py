"""Extractive provider: answers with the retrieved sentences that best support the question.

It needs no LLM and cannot invent: every answer sentence is a sentence of a cited chunk.
"""

from dataclasses import dataclass, field

from rag.v1 import types_pb2
from services.generate.text import citation, content_terms, sentence_spans

PROVIDER = "extractive"
TEMPLATE_VERSION = "extractive-v1"


@dataclass
class Answer:
    text: str
    status: int
    reason: int
    confidence: float
    citations: list[types_pb2.Citation] = field(default_factory=list)
    pieces: list[str] = field(default_factory=list)


def abstain(reason: int, confidence: float = 0.0) -> Answer:
    return Answer("", types_pb2.ANSWER_STATUS_ABSTAINED, reason, confidence)


def extract_answer(
    question: str,
    hits: list[types_pb2.Hit],
    max_sentences: int,
    min_dense: float,
    min_overlap: float,
    max_sources: int = 5,
) -> Answer:
    if not hits:
        return abstain(types_pb2.ABSTAIN_REASON_NO_RELEVANT_SOURCES)
    best_dense = max((h.dense_score for h in hits if h.dense_matched), default=0.0)
    if best_dense < min_dense:
        return abstain(types_pb2.ABSTAIN_REASON_LOW_RETRIEVAL_CONFIDENCE, max(best_dense, 0.0))
    question_terms = content_terms(question)
    if not question_terms:
        return abstain(types_pb2.ABSTAIN_REASON_UNSUPPORTED_BY_SOURCES)

    candidates = []
    for number, hit in enumerate(hits[:max_sources], start=1):
        text = hit.chunk.text
        for start, end in sentence_spans(text):
            overlap = len(question_terms & content_terms(text[start:end])) / len(question_terms)
            if overlap >= min_overlap:
                score = overlap + 0.5 * max(hit.dense_score, 0.0) + 0.1 / number
                candidates.append((score, overlap, number, hit, text[start:end]))
    if not candidates:
        return abstain(types_pb2.ABSTAIN_REASON_UNSUPPORTED_BY_SOURCES, best_dense / 2)

    candidates.sort(key=lambda c: -c[0])
    chosen, seen = [], set()
    for candidate in candidates:
        if candidate[4] not in seen:
            seen.add(candidate[4])
            chosen.append(candidate)
        if len(chosen) == max_sentences:
            break

    pieces, citations, position = [], [], 0
    for _, _, number, hit, sentence in chosen:
        piece = f"{sentence} [{number}]" + (" " if len(pieces) < len(chosen) - 1 else "")
        citations.append(citation(number, hit, position, position + len(sentence), sentence))
        pieces.append(piece)
        position += len(piece)
    best_overlap = chosen[0][1]
    confidence = round(min(1.0, 0.5 * best_dense + 0.5 * best_overlap), 4)
    return Answer(
        "".join(pieces),
        types_pb2.ANSWER_STATUS_ANSWERED,
        types_pb2.ABSTAIN_REASON_UNSPECIFIED,
        confidence,
        citations,
        pieces,
    )
