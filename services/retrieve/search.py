"""Hybrid search over one generation: dense and lexical candidates side by side under the tenant and
ACL filters, the newest version of each document, fusion, then the whole chunks of the final hits.
Used by the Retrieve RPC and by the server-side evaluation alike."""

import asyncio
import re
from dataclasses import dataclass

from opentelemetry import trace

from rag.v1 import types_pb2
from services.common.config import RetrieveSettings
from services.retrieve.backends.base import SearchScope, parse_date
from services.retrieve.fusion import METHODS, FusedHit, cap_per_document, fuse, latest_versions

tracer = trace.get_tracer("ragmesh.retrieve")

MAX_FILTERS, MAX_FILTER_VALUES = 16, 64
FILTER_KEY = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def resolve_fusion(asked: types_pb2.FusionParams, s: RetrieveSettings, top_k: int) -> types_pb2.FusionParams:
    """The caller's fusion parameters with server defaults filled in: the exact ones used are returned.
    A depth given for one retriever is taken as it is (BM25 may add 20 candidates to a top 100)."""
    depth = max(asked.candidate_depth or s.candidate_depth, top_k)
    return types_pb2.FusionParams(
        method=asked.method or s.fusion_method,
        rrf_k=asked.rrf_k or s.rrf_k,
        candidate_depth=depth,
        dense_weight=asked.dense_weight if asked.HasField("dense_weight") else s.fusion_dense_weight,
        max_per_document=asked.max_per_document or s.max_per_document,
        dense_depth=asked.dense_depth or s.dense_depth or depth,
        lexical_depth=asked.lexical_depth or s.lexical_depth or depth,
    )


def filters_problem(filters) -> str:
    if len(filters) > MAX_FILTERS:
        return f"{len(filters)} metadata filters; the limit is {MAX_FILTERS}"
    for f in filters:
        if not FILTER_KEY.match(f.key):
            return f"metadata filter key {f.key[:40]!r} must be 1-128 of A-Z, a-z, 0-9, '_' and '-'"
        if not 1 <= len(f.any_of) <= MAX_FILTER_VALUES:
            return f"metadata filter {f.key!r} needs 1-{MAX_FILTER_VALUES} values"
    return ""


def date_bounds(date_range: types_pb2.DateRange) -> tuple[tuple[int | None, int | None], str]:
    """Inclusive epoch-second bounds of a date range, or the reason it is malformed."""
    bounds = []
    for name, value, end in (("start", date_range.start, False), ("end", date_range.end, True)):
        if not value:
            bounds.append(None)
            continue
        moment = parse_date(value, end_of_day=end)
        if moment is None:
            return (None, None), f"date_range.{name} {value[:40]!r} is not an ISO 8601 date or date-time"
        bounds.append(moment)
    if None not in bounds and bounds[0] > bounds[1]:
        return (None, None), "date_range.start is after date_range.end"
    return (bounds[0], bounds[1]), ""


def fusion_problem(f: types_pb2.FusionParams, s: RetrieveSettings) -> str:
    if f.method not in METHODS:
        return f"fusion method {f.method!r} is unknown; use one of {', '.join(METHODS)}"
    if not 0.0 <= f.dense_weight <= 1.0:
        return f"dense_weight {f.dense_weight} is outside [0, 1]"
    for name in ("candidate_depth", "dense_depth", "lexical_depth"):
        if getattr(f, name) > 10 * s.max_top_k:
            return f"{name} {getattr(f, name)} is above the limit {10 * s.max_top_k}"
    if f.rrf_k <= 0:
        return "rrf_k must be positive"
    return ""


@dataclass
class Found:
    fused: FusedHit
    chunk: types_pb2.Chunk

    def hit(self, rank: int) -> types_pb2.Hit:
        f = self.fused
        return types_pb2.Hit(
            chunk=self.chunk,
            score=f.score,
            rank=rank,
            dense_score=f.dense_score,
            dense_rank=f.dense_rank,
            dense_matched="dense" in f.sources,
            lexical_score=f.lexical_score,
            lexical_rank=f.lexical_rank,
            lexical_matched="lexical" in f.sources,
        )


async def hybrid_search(
    dense, lexical, query: str, vector: list[float], scope: SearchScope, fusion: types_pb2.FusionParams, top_k: int
) -> list[Found]:
    # Over-fetch a little: a document changing version may show both versions for a moment.
    dense_depth, lexical_depth = fusion.dense_depth, fusion.lexical_depth

    def dense_search():
        with tracer.start_as_current_span("rag.retrieve.dense") as sp:
            hits = dense.search(vector, scope, dense_depth + dense_depth // 2)
            sp.set_attribute("rag.hits", len(hits))
            return hits

    def lexical_search():
        with tracer.start_as_current_span("rag.retrieve.lexical") as sp:
            hits = lexical.search(query, scope, lexical_depth + lexical_depth // 2)
            sp.set_attribute("rag.hits", len(hits))
            return hits

    dense_hits, lexical_hits = await asyncio.gather(asyncio.to_thread(dense_search), asyncio.to_thread(lexical_search))
    dense_hits, lexical_hits = latest_versions(dense_hits, lexical_hits)
    with tracer.start_as_current_span("rag.retrieve.fuse") as fuse_span:
        fuse_span.set_attribute("rag.fusion.method", fusion.method)
        fused = fuse(
            dense_hits[:dense_depth], lexical_hits[:lexical_depth], fusion.method, fusion.dense_weight, fusion.rrf_k
        )
        fused = cap_per_document(fused, fusion.max_per_document)[:top_k]
    chunks = await whole_chunks(fused, dense, lexical)
    # A chunk deleted since the search is missing; another tenant's is never returned.
    return [
        Found(f, chunks[f.chunk_id])
        for f in fused
        if f.chunk_id in chunks and chunks[f.chunk_id].tenant == scope.tenant
    ]


async def whole_chunks(fused: list[FusedHit], dense, lexical) -> dict[str, types_pb2.Chunk]:
    """The final hits' chunks: those an engine returned whole, the rest loaded by id from the
    engine that found them."""
    chunks = {f.chunk_id: f.hit.chunk for f in fused if f.hit.chunk is not None}
    wanted = [f for f in fused if f.hit.chunk is None]
    if not wanted:
        return chunks
    with tracer.start_as_current_span("rag.retrieve.fetch") as span:
        from_dense = [f.chunk_id for f in wanted if "dense" in f.sources]
        from_lexical = [f.chunk_id for f in wanted if "dense" not in f.sources]
        loads = [asyncio.to_thread(e.fetch, ids) for e, ids in ((dense, from_dense), (lexical, from_lexical)) if ids]
        for loaded in await asyncio.gather(*loads):
            chunks |= loaded
        span.set_attribute("rag.chunks", len(wanted))
    return chunks
