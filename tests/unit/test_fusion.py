from rag.v1 import types_pb2

from services.retrieve.backends.base import EngineHit
from services.retrieve.fusion import rrf


def hits(*ids_scores):
    return [EngineHit(types_pb2.Chunk(chunk_id=i), s) for i, s in ids_scores]


def test_rrf_sums_reciprocal_ranks_and_keeps_every_score():
    fused = rrf(hits(("a", 0.9), ("b", 0.8)), hits(("b", 12.0), ("c", 5.0)), k=60)
    assert [f.chunk_id for f in fused] == ["b", "a", "c"]
    b = fused[0]
    assert b.score == 1 / 61 + 1 / 62
    assert (b.dense_rank, b.dense_score, b.lexical_rank, b.lexical_score) == (2, 0.8, 1, 12.0)
    assert fused[2].dense_rank == 0 and fused[2].sources == {"lexical"}


def test_rrf_is_pure_and_deterministic_on_ties():
    dense, lexical = hits(("x", 1.0)), hits(("y", 1.0))
    assert [f.chunk_id for f in rrf(dense, lexical)] == ["x", "y"]
    assert [f.chunk_id for f in rrf(dense, lexical)] == ["x", "y"]
    assert dense[0].chunk.chunk_id == "x"


def test_rrf_of_nothing_is_nothing():
    assert rrf([], []) == []
