"""The `auto` fusion's decisions, as pure functions of what the retrievers returned."""

import pytest

from services.retrieve.adaptive import (
    AutoPolicy,
    QueryFacts,
    decide,
    dense_informative,
    fuse_auto,
    signals,
    with_document_evidence,
)
from services.retrieve.backends.base import EngineHit
from services.retrieve.fusion import fuse, pin_first


def hits(prefix: str, scores: list[float]) -> list[EngineHit]:
    return [EngineHit(f"{prefix}{i}", i, 1, s) for i, s in enumerate(scores)]


ENGLISH = QueryFacts("en", ("en",))
POLICY = AutoPolicy()  # dense knows English only


def test_signals_measure_margins_and_agreement():
    dense = hits("d", [0.9 - 0.02 * i for i in range(20)])
    lexical = hits("d", [20.0 - i for i in range(5)]) + hits("x", [10.0, 9.0])
    seen = signals(dense, lexical)
    assert seen.dense_top == 0.9 and seen.dense_margin == pytest.approx(0.18)
    assert seen.lexical_top == 20.0 and seen.lexical_margin == pytest.approx((20 - 9) / 20)
    assert seen.overlap_at_10 == 0.5


def test_the_dense_weight_falls_as_bm25_grows_decisive():
    dense = hits("d", [0.8 - 0.01 * i for i in range(20)])
    flat = hits("l", [10.0 - 0.1 * i for i in range(20)])  # margin 0.09: a topical query
    peaked = hits("l", [10.0] + [5.0] * 8 + [4.0] * 11)  # margin 0.6: one passage stands out
    towering = hits("l", [40.0] + [4.0] * 19)  # margin 0.9
    assert decide(dense, flat, ENGLISH, POLICY).dense_weight == pytest.approx(0.95)  # capped
    assert decide(dense, peaked, ENGLISH, POLICY).dense_weight == pytest.approx(0.8 - 2.0 * (0.6 - 0.4))
    assert decide(dense, towering, ENGLISH, POLICY).dense_weight == 0.0
    assert decide(dense, peaked, ENGLISH, POLICY).reason == "scores"


def test_a_query_the_embedding_model_cannot_read_is_ranked_by_bm25():
    """An English model embeds Arabic as noise: a fixed dense-heavy weighting followed it down
    (arcd-dev hybrid 0.017 against BM25's 0.691)."""
    dense = hits("noise", [0.95 - 0.001 * i for i in range(100)])
    lexical = hits("answer", [12.0, 8.0, 7.5])
    arabic = QueryFacts("ar", ("ar",))
    fused, decision = fuse_auto(dense, lexical, arabic, POLICY)
    assert (decision.reason, decision.dense_weight, decision.dense_informative) == ("dense_blind", 0.0, False)
    assert [f.chunk_id for f in fused[:3]] == ["answer0", "answer1", "answer2"]
    # Detection unsure on a short query: its script decides.
    assert not dense_informative(QueryFacts("", ("ar",)), POLICY)
    assert dense_informative(QueryFacts("", ("en",)), POLICY)
    # A multilingual model: every language is informative.
    assert dense_informative(arabic, AutoPolicy(dense_languages=()))


def test_one_empty_side_leaves_the_other():
    dense, lexical = hits("d", [0.9, 0.8]), hits("l", [3.0])
    assert decide(dense, [], ENGLISH, POLICY).method == "dense"
    assert decide([], lexical, ENGLISH, POLICY).method == "lexical"
    fused, decision = fuse_auto(dense, [], ENGLISH, POLICY)
    assert [f.chunk_id for f in fused] == ["d0", "d1"] and decision.reason == "lexical_blind"


def test_an_exact_identifier_only_bm25_finds_reaches_the_top():
    """A record told apart only by its code (ORD-48213) among many similar ones: the dense side
    ranks 100 look-alikes and never the record; BM25 ranks it first on the exact identifier."""
    dense = hits("lookalike", [0.80 - 0.001 * i for i in range(100)])
    lexical = [EngineHit("record", 999, 1, 25.0)] + hits("lookalike", [6.0 - 0.01 * i for i in range(99)])
    old_default = [f.chunk_id for f in fuse(dense, lexical, "rrf", 0.9, 10.0)]
    assert "record" not in old_default[:10]  # the previous default buried it below dense rank 88
    facts = QueryFacts("en", ("en",), ("ord-48213",), ("record",))
    fused, decision = fuse_auto(dense, lexical, facts, POLICY)
    assert fused[0].chunk_id == "record" and decision.reason == "exact_identifier"
    assert decision.exact == ("record",)
    assert fused[0].lexical_rank == 1 and fused[0].dense_rank == 0


def test_pinning_keeps_every_other_hit_in_order():
    fused = fuse(hits("d", [0.9, 0.8, 0.7]), hits("l", [5.0, 4.0]), "minmax", 0.5, 60)
    before = [f.chunk_id for f in fused]
    pinned = pin_first(fused, ["l1", "absent"])
    assert [f.chunk_id for f in pinned] == ["l1", *[c for c in before if c != "l1"]]
    assert pinned[0].score > pinned[1].score


def test_a_documents_other_chunks_lend_their_evidence():
    """Two chunks of one passage each holding half the question's words outrank a chunk of
    another passage holding a little more than either."""
    lexical = [
        EngineHit("other", 2, 1, 10.0),
        EngineHit("passage-a", 1, 1, 9.0),
        EngineHit("passage-b", 1, 1, 8.0),
    ]
    credited = with_document_evidence(lexical, 0.25)
    assert [(h.chunk_id, h.score) for h in credited] == [("passage-a", 11.0), ("passage-b", 10.25), ("other", 10.0)]
    assert with_document_evidence(lexical, 0.0) == lexical
