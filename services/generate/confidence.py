"""Whether retrieved evidence is strong enough to answer from, from more than one signal.

An absolute cosine alone was calibrated on DBpedia against out-of-domain questions, and refused
technical text (code, commands, configuration tables score lower in the embedding space) that both
retrievers had found. So the gate reads three signals of the retrieval and one of the answer:

- the best dense score (cosine of question and chunk);
- agreement: the dense retriever's best document is also among the lexical retriever's first three;
- lexical coverage: the share of the question's content terms the top chunks hold;
- support (after answering): the share of the question's terms the chosen sentences hold.

A question passes when its best dense score reaches the high bar, or reaches the low bar while
the retrievers agree and the top chunks cover enough of it. When retrieval did not search the
dense side at all (a lexical search, or a question in a language the embedding model cannot read,
which `auto` ranks by BM25 alone without embedding it) there is no cosine to judge by: the
question passes, and the answer's support decides. Calibrated across corpora (README,
Answers): one threshold set for encyclopedic, Arabic, technical and policy text.
"""

from dataclasses import dataclass

from rag.v1 import types_pb2
from services.generate.text import content_terms

TOP_FOR_COVERAGE = 3
AGREEMENT_DEPTH = 3


@dataclass(frozen=True)
class Gate:
    min_dense: float  # alone enough
    min_dense_with_agreement: float  # enough when the retrievers agree and the question is covered
    min_coverage: float


@dataclass(frozen=True)
class Signals:
    best_dense: float
    agreement: bool
    coverage: float
    dense_read: bool = True  # the dense side was searched: its cosine can judge the hits


def best_dense(hits: list[types_pb2.Hit]) -> float:
    return max((h.dense_score for h in hits if h.dense_matched), default=0.0)


def agreement(hits: list[types_pb2.Hit]) -> bool:
    """The dense retriever's first document is among the lexical retriever's first few."""
    top = [h for h in hits if h.dense_matched and h.dense_rank == 1]
    if not top:
        return False
    doc = top[0].chunk.doc_id
    return any(h.chunk.doc_id == doc and h.lexical_matched and 0 < h.lexical_rank <= AGREEMENT_DEPTH for h in hits)


def coverage(question: str, hits: list[types_pb2.Hit]) -> float:
    """Share of the question's content terms found in the top chunks (title and section included)."""
    asked = content_terms(question)
    if not asked:
        return 0.0
    held = set()
    for hit in hits[:TOP_FOR_COVERAGE]:
        held |= content_terms(f"{hit.chunk.title} {hit.chunk.section} {hit.chunk.text}")
    return len(asked & held) / len(asked)


def signals(question: str, hits: list[types_pb2.Hit], dense_skipped: bool = False) -> Signals:
    """`dense_skipped`: retrieval says the dense side was not searched (not: no hit of it ranked
    high enough to be returned, which is a weak retrieval the cosine must judge)."""
    return Signals(best_dense(hits), agreement(hits), coverage(question, hits), not dense_skipped)


def passes(s: Signals, gate: Gate) -> bool:
    if not s.dense_read or s.best_dense >= gate.min_dense:
        return True
    return s.best_dense >= gate.min_dense_with_agreement and s.agreement and s.coverage >= gate.min_coverage


def report(s: Signals) -> types_pb2.RetrievalSignals:
    return types_pb2.RetrievalSignals(
        best_dense=round(s.best_dense, 4),
        agreement=s.agreement,
        lexical_coverage=round(s.coverage, 4),
        dense_skipped=not s.dense_read,
    )
