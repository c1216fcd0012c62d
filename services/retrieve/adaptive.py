"""The `auto` fusion: decided per query from what the retrievers returned, as pure functions.

What it looks at:
- whether the dense side can know this query's language at all (the embedding model's languages,
  `RAGMESH_DENSE_LANGUAGES`): an English model embeds Arabic as noise, and a fixed dense-heavy
  weighting then follows it down (arcd-dev: 0.017 against BM25's 0.69);
- how decisively BM25 ranks: the margin of its best score over its 10th, relative to the best.
  A question whose words single out one passage (a rare name, a phrase of the text) has a wide
  margin; a topical query whose words half the corpus holds has a narrow one, and there the
  embedding knows better. The dense weight falls as the lexical margin grows;
- exact identifiers: a query naming a code (`ERR-4821`, `ORD-48213`, `v2.3.1-rc1`) that only a
  few chunks hold gets those chunks first, whatever the dense side thinks of them;
- the agreement between the two lists and the dense scores, reported for the record.

BM25 scores chunks, but evidence spread over a document's chunks is evidence for each of them: a
question whose words fall in two chunks of one passage should find that passage. Before fusing,
each BM25 candidate is credited with a share of its document's other candidates' scores
(`document_share`). Chunks are cut in embedding tokens, and Arabic text costs about five of them a
word: an arcd-dev passage becomes three chunks of some 30 words, and BM25 by chunk scored 0.753
where BM25 by passage scored 0.804 (0.802 with the share, measured on chunks cut the same way).

Every decision comes back with the search (FusionDecision) and into the answer's manifest.
"""

from dataclasses import dataclass, field

from services.retrieve.backends.base import EngineHit
from services.retrieve.fusion import FusedHit, fuse, pin_first

TOP = 10


@dataclass(frozen=True)
class QueryFacts:
    """What is known of the query before fusion: its language and identifiers, and the chunks
    holding those identifiers when only a few do (an exact reference)."""

    language: str = ""  # detected; "" when unsure
    analysed_as: tuple[str, ...] = ()  # the languages its lexical terms were made in
    identifiers: tuple[str, ...] = ()
    exact: tuple[str, ...] = ()  # chunk ids, best first


@dataclass(frozen=True)
class AutoPolicy:
    """The constants of the decision (chosen by cross-validation: README, Retrieval quality)."""

    dense_languages: tuple[str, ...] = ("en",)  # the embedding model's languages; empty: any
    dense_weight: float = 0.8  # at a lexical margin of `margin_pivot`
    margin_slope: float = 2.0  # dense weight lost per unit of lexical margin above the pivot
    margin_pivot: float = 0.4
    min_dense_weight: float = 0.0
    max_dense_weight: float = 0.95
    blind_dense_weight: float = 0.0  # the dense weight when the model cannot know the language
    normalisation: str = "minmax"
    document_share: float = 0.25  # of a document's other BM25 candidates' scores, credited to each


@dataclass(frozen=True)
class Signals:
    dense_top: float = 0.0
    dense_margin: float = 0.0  # best dense score minus the 10th
    lexical_top: float = 0.0
    lexical_margin: float = 0.0  # (best BM25 score - 10th) / best
    overlap_at_10: float = 0.0  # share of either top 10 the other top 10 holds


@dataclass(frozen=True)
class Decision:
    method: str
    dense_weight: float
    reason: str  # dense_blind | lexical_blind | exact_identifier | scores
    dense_informative: bool
    signals: Signals = field(default_factory=Signals)
    exact: tuple[str, ...] = ()


def _tenth(scores: list[float]) -> float:
    return scores[min(TOP, len(scores)) - 1]


def signals(dense: list[EngineHit], lexical: list[EngineHit]) -> Signals:
    d = [h.score for h in dense]
    lx = [h.score for h in lexical]
    overlap = len({h.chunk_id for h in dense[:TOP]} & {h.chunk_id for h in lexical[:TOP]}) / TOP
    return Signals(
        dense_top=d[0] if d else 0.0,
        dense_margin=d[0] - _tenth(d) if d else 0.0,
        lexical_top=lx[0] if lx else 0.0,
        lexical_margin=(lx[0] - _tenth(lx)) / lx[0] if lx and lx[0] > 0 else 0.0,
        overlap_at_10=overlap,
    )


def dense_informative(facts: QueryFacts, policy: AutoPolicy) -> bool:
    """Whether the embedding model can know the query's language: the detected one, or when
    detection was unsure, the one its script suggests (English for Latin script)."""
    language = facts.language or (facts.analysed_as[0] if facts.analysed_as else "")
    return not policy.dense_languages or not language or language in policy.dense_languages


def decide(dense: list[EngineHit], lexical: list[EngineHit], facts: QueryFacts, policy: AutoPolicy) -> Decision:
    seen = signals(dense, lexical)
    informative = dense_informative(facts, policy)
    exact = tuple(facts.exact)
    if not lexical:
        return Decision("dense", 1.0, "lexical_blind", informative, seen, exact)
    if not informative:  # decided before the dense side is searched: it is only searched when BM25 finds nothing
        return Decision(policy.normalisation, policy.blind_dense_weight, "dense_blind", False, seen, exact)
    if not dense:
        return Decision("lexical", 0.0, "dense_blind", informative, seen, exact)
    weight = policy.dense_weight - policy.margin_slope * (seen.lexical_margin - policy.margin_pivot)
    weight = min(policy.max_dense_weight, max(policy.min_dense_weight, weight))
    reason = "exact_identifier" if exact else "scores"
    return Decision(policy.normalisation, round(weight, 4), reason, True, seen, exact)


def with_document_evidence(lexical: list[EngineHit], share: float) -> list[EngineHit]:
    """BM25 candidates re-scored: each keeps its own score plus `share` of the scores of its
    document's other candidates, then ranked again (ties in the original order)."""
    if not share:
        return lexical
    totals: dict[int, float] = {}
    for hit in lexical:
        totals[hit.doc] = totals.get(hit.doc, 0.0) + hit.score
    # Built directly: dataclasses.replace costs several times more, on every candidate of every search.
    credited = [
        EngineHit(h.chunk_id, h.doc, h.version, h.score + share * (totals[h.doc] - h.score), h.chunk) for h in lexical
    ]
    order = sorted(range(len(credited)), key=lambda i: (-credited[i].score, i))
    return [credited[i] for i in order]


def fuse_auto(
    dense: list[EngineHit], lexical: list[EngineHit], facts: QueryFacts, policy: AutoPolicy
) -> tuple[list[FusedHit], Decision]:
    decision = decide(dense, lexical, facts, policy)
    lexical = with_document_evidence(lexical, policy.document_share)
    fused = fuse(dense, lexical, decision.method, decision.dense_weight, 60.0)
    return pin_first(fused, list(decision.exact)), decision
