"""How many candidates a search asks each engine for, and what fusion gets of them."""

from rag.v1 import types_pb2
from services.retrieve.backends.base import EngineHit, SearchScope
from services.retrieve.search import hybrid_search, with_margin

SCOPE = SearchScope("t", ("public",))


class RankedEngine:
    """An engine over a fixed ranking: returns its first `limit` hits and records each limit asked."""

    def __init__(self, hits: list[EngineHit]) -> None:
        self.hits = hits
        self.limits: list[int] = []

    def search(self, query, scope, limit):
        self.limits.append(limit)
        return self.hits[:limit]

    def fetch(self, *args):
        chunk_ids = args[-1]
        return {cid: types_pb2.Chunk(chunk_id=cid, tenant="t") for cid in chunk_ids}


def ranking(prefix: str, size: int, stale: int = 0) -> list[EngineHit]:
    """`size` chunks of distinct documents at version 2, the first `stale` of them preceded by the
    same document's version 1 (both live for a moment while it changes version)."""
    hits = []
    for i in range(size):
        if i < stale:
            hits.append(EngineHit(f"{prefix}{i}-v1", i, 1, 1.0 - i / 1000))
        hits.append(EngineHit(f"{prefix}{i}-v2", i, 2, 1.0 - i / 1000))
    return hits


def test_the_margin_is_small_and_never_under_ten():
    assert [with_margin(d) for d in (10, 50, 100, 200, 1000)] == [20, 60, 110, 220, 1100]


async def test_engines_are_asked_for_the_depth_and_its_margin_and_stale_versions_do_not_shorten_it():
    dense, lexical = RankedEngine(ranking("d", 200, stale=10)), RankedEngine(ranking("d", 200, stale=10))
    fusion = types_pb2.FusionParams(method="rrf", rrf_k=60, candidate_depth=100, dense_depth=100, lexical_depth=100)
    result = await hybrid_search(dense, lexical, "a query", [0.0] * 4, SCOPE, fusion, top_k=100)
    assert dense.limits == [110] and lexical.limits == [110]
    ids = [f.fused.chunk_id for f in result.found]
    assert ids == [f"d{i}-v2" for i in range(100)], "the newest version of each of the first 100 documents"
