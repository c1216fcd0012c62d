"""Hybrid search over one generation: dense and lexical candidates side by side under the tenant and
ACL filters, the newest version of each document, fusion, then the whole chunks of the final hits.
Used by the Retrieve RPC and by the server-side evaluation alike."""

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from opentelemetry import trace

from rag.v1 import types_pb2
from services.common.config import RetrieveSettings
from services.retrieve.adaptive import AutoPolicy, Decision, QueryFacts, dense_informative, fuse_auto
from services.retrieve.analysis import AnalysedQuery, analyse_query
from services.retrieve.backends.base import SearchScope, parse_date
from services.retrieve.fusion import METHODS, FusedHit, cap_per_document, fuse, latest_versions
from services.retrieve.rerank import Reranker, RerankError, elapsed_ms, rerank_order

tracer = trace.get_tracer("ragmesh.retrieve")

MAX_FILTERS, MAX_FILTER_VALUES = 16, 64
MAX_EXACT = 3  # an identifier more chunks than this hold is a topic, not an exact reference
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
        no_rerank=asked.no_rerank,
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
    rerank_score: float | None = None
    rerank_rank: int = 0

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
            rerank_score=self.rerank_score or 0.0,
            rerank_rank=self.rerank_rank,
            reranked=self.rerank_score is not None,
        )


@dataclass
class SearchResult:
    found: list[Found]
    decision: types_pb2.FusionDecision | None = None  # what `auto` decided, and saw
    rerank: types_pb2.RerankReport = field(default_factory=lambda: types_pb2.RerankReport(status="off"))


def auto_policy(s: RetrieveSettings) -> AutoPolicy:
    languages = tuple(x.strip() for x in s.dense_languages.split(",") if x.strip())
    return AutoPolicy(dense_languages=languages, dense_weight=s.auto_dense_weight, margin_slope=s.auto_margin_slope)


def decision_proto(decision: Decision, query: AnalysedQuery) -> types_pb2.FusionDecision:
    seen = decision.signals
    return types_pb2.FusionDecision(
        method=decision.method,
        dense_weight=decision.dense_weight,
        reason=decision.reason,
        query_language=query.language,
        analysed_as=list(query.languages),
        dense_informative=decision.dense_informative,
        dense_top=seen.dense_top,
        dense_margin=round(seen.dense_margin, 6),
        lexical_top=seen.lexical_top,
        lexical_margin=round(seen.lexical_margin, 6),
        overlap_at_10=seen.overlap_at_10,
        identifiers=list(query.identifiers),
        exact_chunk_ids=list(decision.exact),
    )


VectorSource = Callable[[], Awaitable[list[float]]]


def with_margin(depth: int) -> int:
    """Candidates to ask an engine for: a few more than fusion takes, because a document changing
    version may show both versions for a moment and the older is dropped. Every candidate costs
    its stored fields (about half of a dense search), so the margin is small."""
    return depth + max(10, depth // 10)


def searches_dense(method: str, facts: QueryFacts, policy: AutoPolicy) -> bool:
    """Whether a search needs the query's vector before it knows what BM25 found: not in lexical
    mode, and not under `auto` for a query in a language the embedding model does not know (there
    the dense side only fills in when BM25 finds nothing)."""
    if method == "lexical":
        return False
    return method != "auto" or dense_informative(facts, policy)


async def hybrid_search(
    dense,
    lexical,
    query: str,
    vector: list[float] | VectorSource,
    scope: SearchScope,
    fusion: types_pb2.FusionParams,
    top_k: int,
    policy: AutoPolicy = AutoPolicy(),
    reranker: Reranker | None = None,
    budget_s: float | Callable[[], float | None] | None = None,
    analysed: AnalysedQuery | None = None,
) -> SearchResult:
    """`vector` is the query's embedding, or what returns it when awaited: it is only awaited
    when the dense side is searched, so a lexical-only search never embeds its query. `budget_s`
    (or what gives it when the rerank starts) bounds the rerank; `analysed` is the query's
    analysis when already made."""
    dense_depth, lexical_depth = fusion.dense_depth, fusion.lexical_depth
    analysed = analysed or analyse_query(query)
    auto = fusion.method == "auto"
    facts = QueryFacts(analysed.language, analysed.languages, analysed.identifiers)

    async def dense_search():
        query_vector = await vector() if callable(vector) else vector
        return await asyncio.to_thread(dense_engine_search, query_vector)

    def dense_engine_search(query_vector: list[float]):
        with tracer.start_as_current_span("rag.retrieve.dense") as sp:
            hits = dense.search(query_vector, scope, with_margin(dense_depth))
            sp.set_attribute("rag.hits", len(hits))
            return hits

    def lexical_search():
        with tracer.start_as_current_span("rag.retrieve.lexical") as sp:
            hits = lexical.search(analysed, scope, with_margin(lexical_depth))
            sp.set_attribute("rag.hits", len(hits))
            return hits

    def exact_search():
        """The chunks holding the query's identifiers, when only a few do."""
        if not (auto and analysed.identifiers):
            return []
        only = replace(analysed, stemmed=(), plain=analysed.identifiers)
        hits = lexical.search(only, scope, MAX_EXACT + 1)
        return hits if len(hits) <= MAX_EXACT else []

    def lexical_sides():
        return lexical_search(), exact_search()

    if searches_dense(fusion.method, facts, policy):
        dense_hits, (lexical_hits, exact_hits) = await asyncio.gather(dense_search(), asyncio.to_thread(lexical_sides))
    else:
        lexical_hits, exact_hits = await asyncio.to_thread(lexical_sides)
        dense_hits = await dense_search() if auto and not lexical_hits else []
    dense_hits, lexical_hits = latest_versions(dense_hits, lexical_hits)
    result = SearchResult([])
    with tracer.start_as_current_span("rag.retrieve.fuse") as fuse_span:
        fuse_span.set_attribute("rag.fusion.method", fusion.method)
        if auto:
            facts = replace(facts, exact=ids(exact_hits))
            fused, decision = fuse_auto(dense_hits[:dense_depth], lexical_hits[:lexical_depth], facts, policy)
            result.decision = decision_proto(decision, analysed)
            fuse_span.set_attribute("rag.fusion.reason", decision.reason)
            fuse_span.set_attribute("rag.fusion.dense_weight", decision.dense_weight)
        else:
            fused = fuse(
                dense_hits[:dense_depth], lexical_hits[:lexical_depth], fusion.method, fusion.dense_weight, fusion.rrf_k
            )
        rerank = reranker is not None and not fusion.no_rerank
        fused = cap_per_document(fused, fusion.max_per_document)[: max(top_k, reranker.top_n if rerank else 0)]
    chunks = await whole_chunks(fused, dense, lexical, scope.tenant)
    # A chunk deleted since the search is missing; another tenant's is never returned.
    result.found = [
        Found(f, chunks[f.chunk_id])
        for f in fused
        if f.chunk_id in chunks and chunks[f.chunk_id].tenant == scope.tenant
    ]
    if rerank:
        budget = budget_s() if callable(budget_s) else budget_s
        result.rerank = await rerank_found(reranker, query, result.found, budget)
        result.found = reordered(result.found)
    result.found = result.found[:top_k]
    return result


def ids(hits) -> tuple[str, ...]:
    return tuple(h.chunk_id for h in hits)


def passage(chunk: types_pb2.Chunk) -> str:
    """What the cross-encoder reads of a chunk: its title and section trail, then its text."""
    prefix = " > ".join(dict.fromkeys(p for p in (chunk.title, chunk.section) if p))
    return f"{prefix}\n{chunk.text}" if prefix else chunk.text


async def rerank_found(reranker: Reranker, query: str, found: list[Found], budget_s) -> types_pb2.RerankReport:
    """Score the first top_n hits with the cross-encoder (in place); the report says what happened."""
    head = found[: reranker.top_n]
    report = types_pb2.RerankReport(candidates=len(head), model=reranker.model, api=reranker.api)
    if len(head) < 2:
        report.status = "skipped"
        return report
    start = time.perf_counter()
    with tracer.start_as_current_span("rag.retrieve.rerank") as span:
        try:
            reranked = await reranker.rerank(query, [passage(f.chunk) for f in head], budget_s)
        except TimeoutError:
            report.status, report.error = "timeout", f"no answer within {reranker.budget * 1000:.0f} ms"
        except RerankError as exc:
            report.status, report.error = "error", str(exc)
        else:
            report.status, report.api, report.model = "reranked", reranked.api, reranked.model
            for rank, position in enumerate(rerank_order(reranked.scores), start=1):
                head[position].rerank_score, head[position].rerank_rank = reranked.scores[position], rank
        report.latency_ms = elapsed_ms(start)
        span.set_attribute("rag.rerank.status", report.status)
        span.set_attribute("rag.rerank.candidates", report.candidates)
    return report


def reordered(found: list[Found]) -> list[Found]:
    """Reranked hits first in their rerank order, then the rest in fused order."""
    ranked = sorted((f for f in found if f.rerank_rank), key=lambda f: f.rerank_rank)
    return ranked + [f for f in found if not f.rerank_rank]


async def whole_chunks(fused: list[FusedHit], dense, lexical, tenant: str) -> dict[str, types_pb2.Chunk]:
    """The final hits' chunks: those an engine returned whole, the rest loaded by id from the
    engine that found them."""
    chunks = {f.chunk_id: f.hit.chunk for f in fused if f.hit.chunk is not None}
    wanted = [f for f in fused if f.hit.chunk is None]
    if not wanted:
        return chunks
    with tracer.start_as_current_span("rag.retrieve.fetch") as span:
        from_dense = [f.chunk_id for f in wanted if "dense" in f.sources]
        from_lexical = [f.chunk_id for f in wanted if "dense" not in f.sources]
        loads = []
        if from_dense:
            loads.append(asyncio.to_thread(dense.fetch, from_dense))
        if from_lexical:  # from the tenant's own lexical index
            loads.append(asyncio.to_thread(lexical.fetch, tenant, from_lexical))
        for loaded in await asyncio.gather(*loads):
            chunks |= loaded
        span.set_attribute("rag.chunks", len(wanted))
    return chunks
