import pytest

from rag.v1 import types_pb2
from services.retrieve.backends.base import EngineHit, doc_hash
from services.retrieve.fusion import cap_per_document, convex, fuse, rrf


def hits(*ids_scores):
    return [EngineHit(i, doc_hash("t", i), 1, s) for i, s in ids_scores]


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
    assert dense[0].chunk_id == "x"


def test_rrf_of_nothing_is_nothing():
    assert rrf([], []) == []


def test_weighted_rrf_favours_the_heavier_side():
    dense, lexical = hits(("d", 1.0), ("x", 0.5)), hits(("l", 9.0), ("x", 3.0))
    assert [f.chunk_id for f in fuse(dense, lexical, "rrf", 0.5, 60)][0] == "x"
    # w = 0.99: d scores 1.98/61, x scores (1.98 + 0.02)/62: d first.
    assert fuse(dense, lexical, "rrf", 0.99, 60)[0].chunk_id == "d"
    assert fuse(dense, lexical, "rrf", 0.01, 60)[0].chunk_id == "l"


def test_minmax_convex_combination():
    dense = hits(("a", 0.9), ("b", 0.7), ("c", 0.5))
    lexical = hits(("c", 20.0), ("a", 10.0))
    fused = {f.chunk_id: f.score for f in convex(dense, lexical, 0.5, "minmax")}
    assert fused == pytest.approx({"a": 0.5 * 1.0 + 0.5 * 0.0, "b": 0.5 * 0.5 + 0.5 * 0.0, "c": 0.5 * 0.0 + 0.5 * 1.0})


def test_zscore_gives_missing_candidates_the_lists_floor():
    dense = hits(("a", 3.0), ("b", 1.0))
    lexical = hits(("c", 5.0), ("d", 1.0))
    fused = {f.chunk_id: f.score for f in convex(dense, lexical, 0.5, "zscore")}
    assert fused["a"] == fused["c"] == 0.5 * 1.0 + 0.5 * -1.0
    assert fused["b"] == fused["d"] == -1.0


def test_single_retriever_modes_keep_the_other_score():
    dense, lexical = hits(("a", 0.9), ("b", 0.8)), hits(("b", 7.0), ("c", 6.0))
    only_dense = fuse(dense, lexical, "dense", 0.5, 60)
    assert [f.chunk_id for f in only_dense] == ["a", "b"]
    assert only_dense[1].lexical_score == 7.0 and only_dense[1].lexical_rank == 1
    assert [f.chunk_id for f in fuse(dense, lexical, "lexical", 0.5, 60)] == ["b", "c"]
    with pytest.raises(ValueError):
        fuse(dense, lexical, "magic", 0.5, 60)


def test_cap_per_document():
    docs = ["d1", "d1", "d2", "d1", "d2", "d3"]
    chunks = [EngineHit(f"c{i}", doc_hash("t", doc), 1, 1.0) for i, doc in enumerate(docs)]
    fused = fuse(chunks, [], "dense", 0.5, 60)
    name = {doc_hash("t", d): d for d in docs}
    assert [name[f.hit.doc] for f in cap_per_document(fused, 1)] == ["d1", "d2", "d3"]
    assert [name[f.hit.doc] for f in cap_per_document(fused, 2)] == ["d1", "d1", "d2", "d2", "d3"]
    assert cap_per_document(fused, 0) == fused


def test_a_chunk_found_by_both_keeps_the_whole_one():
    light = EngineHit("a", doc_hash("t", "a"), 1, 0.9)
    whole = EngineHit.whole(types_pb2.Chunk(chunk_id="a", tenant="t", doc_id="a", version=1, text="all of it"), 3.0)
    only_dense = EngineHit("b", doc_hash("t", "b"), 1, 0.8)
    assert (whole.doc, whole.version) == (light.doc, light.version)
    fused = {f.chunk_id: f for f in fuse([light, only_dense], [whole], "rrf", 0.5, 10.0)}
    assert fused["a"].hit is whole and fused["a"].sources == {"dense", "lexical"}
    assert fused["b"].hit is only_dense and fused["b"].hit.chunk is None


def test_document_hash_is_stable_and_tells_documents_and_tenants_apart():
    # Stored in index columns: it must never change between releases.
    assert doc_hash("t", "a") == doc_hash("t", "a") == -7556264607321938036
    assert len({doc_hash("t", "a"), doc_hash("t", "b"), doc_hash("u", "a"), doc_hash("t\x1fa", "")}) == 4


def test_depths_default_to_the_candidate_depth_and_are_checked():
    from services.common.config import RetrieveSettings
    from services.retrieve.server import fusion_problem, resolve_fusion

    settings = RetrieveSettings()
    used = resolve_fusion(types_pb2.FusionParams(), settings, top_k=150)
    assert (used.candidate_depth, used.dense_depth, used.lexical_depth) == (150, 150, 150)
    used = resolve_fusion(types_pb2.FusionParams(lexical_depth=20), settings, top_k=100)
    assert (used.dense_depth, used.lexical_depth) == (100, 20)
    assert fusion_problem(used, settings) == ""
    too_deep = resolve_fusion(types_pb2.FusionParams(dense_depth=5000), settings, top_k=10)
    assert fusion_problem(too_deep, settings) == "dense_depth 5000 is above the limit 1000"
