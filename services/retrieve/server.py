"""Retrieve service: hybrid search (Qdrant Edge dense + Tantivy BM25) under tenant and ACL filters."""

import asyncio
import logging
import re

import grpc
from opentelemetry import trace

from rag.v1 import embed_pb2, embed_pb2_grpc, retrieve_pb2, retrieve_pb2_grpc, types_pb2
from services.common import natsio
from services.common.clients import channel
from services.common.config import RetrieveSettings
from services.common.server import Service, run
from services.retrieve.backends.base import SearchScope, parse_date
from services.retrieve.fusion import METHODS, cap_per_document, fuse
from services.retrieve.generations import Generation, GenerationError, Generations

log = logging.getLogger(__name__)
tracer = trace.get_tracer("ragmesh.retrieve")


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


MAX_FILTERS, MAX_FILTER_VALUES = 16, 64
FILTER_KEY = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


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


class RetrieveService(Service, retrieve_pb2_grpc.RetrieveServiceServicer):
    name = "retrieve"

    def __init__(self, settings: RetrieveSettings) -> None:
        super().__init__(settings)
        self.index_dir = settings.index_dir or settings.data_dir / "retrieve"
        self.generations: Generations | None = None

    def register(self, server):
        retrieve_pb2_grpc.add_RetrieveServiceServicer_to_server(self, server)
        return [retrieve_pb2.DESCRIPTOR.services_by_name["RetrieveService"].full_name]

    async def start(self) -> None:
        self.embed = embed_pb2_grpc.EmbedServiceStub(channel(self.settings.embed_addr, self.settings))
        info = await self.embed.GetModelInfo(embed_pb2.GetModelInfoRequest(), wait_for_ready=True, timeout=300)
        self.nc = await natsio.connect(self.settings.nats_url, "retrieve")
        js = self.nc.jetstream()
        await natsio.ensure_all(js, self.settings.nats_replicas)
        self.generations = Generations(self.settings, self.index_dir, info.dimension)
        await self.generations.start(js)

    async def stop(self) -> None:
        if self.generations:
            await self.generations.stop()
        await natsio.close(self.nc)

    async def _generation(self, context, number: int) -> Generation:
        try:
            return self.generations.get(number)
        except GenerationError as exc:
            await context.abort(exc.code, str(exc))

    async def Retrieve(self, request, context):
        s = self.settings
        if not request.tenant:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "tenant is required: no search runs without one")
        query = request.query.strip()
        if not query:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "query is empty")
        top_k = request.top_k or 8
        if top_k > s.max_top_k:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"top_k {top_k} is above the limit {s.max_top_k}")
        problem = filters_problem(request.metadata_filters)
        if problem:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        metadata = tuple((f.key, tuple(f.any_of)) for f in request.metadata_filters)
        bounds, problem = date_bounds(request.date_range)
        if problem:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        scope = SearchScope(request.tenant, tuple(request.principals), tuple(request.doc_ids), metadata, *bounds)
        fusion = resolve_fusion(request.fusion, s, top_k)
        problem = fusion_problem(fusion, s)
        if problem:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        generation = await self._generation(context, request.generation)
        state, dense, lexical = generation.state, generation.dense, generation.lexical
        span = trace.get_current_span()
        span.set_attribute("rag.tenant", request.tenant)

        with tracer.start_as_current_span("rag.retrieve.embed_query"):
            embedded = await self.embed.Embed(
                embed_pb2.EmbedRequest(texts=[query], lane=embed_pb2.EMBED_LANE_INTERACTIVE, tenant=request.tenant),
                timeout=context.time_remaining(),
            )
        if state.model_id and embedded.model_id != state.model_id:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"query embedded by {embedded.model_id}, but index generation {generation.number} "
                f"was built with {state.model_id}",
            )
        vector = list(embedded.vectors[0].values)

        # Over-fetch a little: chunks of versions not yet (or no longer) active are dropped below.
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

        dense_hits, lexical_hits = await asyncio.gather(
            asyncio.to_thread(dense_search), asyncio.to_thread(lexical_search)
        )
        visible = state.visible_candidate
        dense_hits = [h for h in dense_hits if visible(h.doc, h.version)][:dense_depth]
        lexical_hits = [h for h in lexical_hits if visible(h.doc, h.version)][:lexical_depth]
        with tracer.start_as_current_span("rag.retrieve.fuse") as fuse_span:
            fuse_span.set_attribute("rag.fusion.method", fusion.method)
            fused = fuse(dense_hits, lexical_hits, fusion.method, fusion.dense_weight, fusion.rrf_k)
            fused = cap_per_document(fused, fusion.max_per_document)[:top_k]
        chunks = await self._whole_chunks(fused, dense, lexical)
        # Candidates named their document by hash; the final hits are checked again by name.
        fused = [
            f
            for f in fused
            if (c := chunks.get(f.chunk_id)) is not None
            and c.tenant == scope.tenant
            and state.visible(c.tenant, c.doc_id, c.version)
        ]
        hits = [
            types_pb2.Hit(
                chunk=chunks[f.chunk_id],
                score=f.score,
                rank=rank,
                dense_score=f.dense_score,
                dense_rank=f.dense_rank,
                dense_matched="dense" in f.sources,
                lexical_score=f.lexical_score,
                lexical_rank=f.lexical_rank,
                lexical_matched="lexical" in f.sources,
            )
            for rank, f in enumerate(fused, start=1)
        ]
        span.set_attribute("rag.hits", len(hits))
        span.set_attribute("rag.index.watermark", state.watermark)
        span.set_attribute("rag.index.generation", state.generation)
        return retrieve_pb2.RetrieveResponse(
            hits=hits,
            index_watermark=state.watermark,
            embedding_model_id=state.model_id or embedded.model_id,
            fusion=fusion,
            query_tokens=embedded.tokens,
            index_generation=state.generation,
            generation=generation.number,
        )

    @staticmethod
    async def _whole_chunks(fused, dense, lexical) -> dict[str, types_pb2.Chunk]:
        """The final hits' chunks: those an engine returned whole, the rest loaded by id from the
        engine that found them. A chunk retired since the search is missing."""
        chunks = {f.chunk_id: f.hit.chunk for f in fused if f.hit.chunk is not None}
        wanted = [f for f in fused if f.hit.chunk is None]
        if not wanted:
            return chunks
        with tracer.start_as_current_span("rag.retrieve.fetch") as span:
            from_dense = [f.chunk_id for f in wanted if "dense" in f.sources]
            from_lexical = [f.chunk_id for f in wanted if "dense" not in f.sources]
            loads = [
                asyncio.to_thread(e.fetch, ids) for e, ids in ((dense, from_dense), (lexical, from_lexical)) if ids
            ]
            for loaded in await asyncio.gather(*loads):
                chunks |= loaded
            span.set_attribute("rag.chunks", len(wanted))
        return chunks

    async def GetIndexInfo(self, request, context):
        g = await self._generation(context, request.generation)
        tenant, doc_id = request.tenant or None, request.doc_id or None
        return retrieve_pb2.GetIndexInfoResponse(
            index_watermark=g.state.watermark,
            embedding_model_id=g.state.model_id,
            index_generation=g.state.generation,
            generation=g.number,
            dense_points=await asyncio.to_thread(g.dense.count, tenant, doc_id),
            lexical_documents=await asyncio.to_thread(g.lexical.count, tenant, doc_id),
        )

    # -- index generations -----------------------------------------------------------------------

    async def _govern(self, context, operation):
        try:
            return await operation
        except GenerationError as exc:
            await context.abort(exc.code, str(exc))

    async def ListGenerations(self, request, context):
        infos = await self.generations.describe()
        return retrieve_pb2.ListGenerationsResponse(generations=infos, pointer=self.generations.pointer)

    async def CreateGeneration(self, request, context):
        chunking = request.chunking if request.HasField("chunking") else None
        record = await self._govern(context, self.generations.create(request.reason, request.rechunk, chunking))
        return retrieve_pb2.CreateGenerationResponse(generation=record)

    async def PromoteGeneration(self, request, context):
        pointer = await self._govern(
            context, self.generations.promote(request.number, request.expected_active, request.note)
        )
        return retrieve_pb2.PromoteGenerationResponse(pointer=pointer)

    async def RollbackGeneration(self, request, context):
        pointer = await self._govern(context, self.generations.rollback())
        return retrieve_pb2.RollbackGenerationResponse(pointer=pointer)

    async def DropGeneration(self, request, context):
        pointer = await self._govern(context, self.generations.drop(request.number))
        return retrieve_pb2.DropGenerationResponse(pointer=pointer)


def main() -> None:
    run(lambda: RetrieveService(RetrieveSettings()))
