"""Retrieve service: hybrid search (Qdrant Edge dense + Tantivy BM25, or their servers) under tenant
and ACL filters, over index generations applied from the index stream.

It turns SERVING only once the active generation has caught up with the stream: a replica that is
still replaying would show documents deleted or narrowed since."""

import asyncio
import logging
import os
import socket

import grpc
from opentelemetry import trace

from rag.v1 import embed_pb2, embed_pb2_grpc, retrieve_pb2, retrieve_pb2_grpc
from services.common import natsio
from services.common.clients import channel
from services.common.config import RetrieveSettings
from services.common.language import detect
from services.common.server import Service, run
from services.retrieve import evaluation
from services.retrieve.analysis import AnalysedQuery, analyse_query
from services.retrieve.backends.base import SearchScope
from services.retrieve.control import GenerationControl
from services.retrieve.generations import Generation, GenerationError, Generations
from services.retrieve.query_vectors import ModelMismatch, ModelNotServed, QueryEmbedding, QueryVectorCache, TenantLRU
from services.retrieve.reembed import Reembedder
from services.retrieve.rerank import Reranker
from services.retrieve.search import (
    auto_policy,
    date_bounds,
    filters_problem,
    fusion_problem,
    hybrid_search,
    resolve_fusion,
)

log = logging.getLogger(__name__)
tracer = trace.get_tracer("ragmesh.retrieve")


class RetrieveService(Service, retrieve_pb2_grpc.RetrieveServiceServicer):
    name = "retrieve"

    def __init__(self, settings: RetrieveSettings) -> None:
        super().__init__(settings)
        self.index_dir = settings.index_dir or settings.data_dir / "retrieve"
        self.generations: Generations | None = None
        self.policy = auto_policy(settings)
        self.reranker: Reranker | None = None
        self.query_vectors = QueryVectorCache(settings.query_vector_cache_size, settings.query_vector_cache_tenants)
        # A query's language detection and terms, kept within the same bounds.
        self.analyses: TenantLRU[str, AnalysedQuery] = TenantLRU(
            settings.query_vector_cache_size, settings.query_vector_cache_tenants
        )

    def register(self, server):
        retrieve_pb2_grpc.add_RetrieveServiceServicer_to_server(self, server)
        return [retrieve_pb2.DESCRIPTOR.services_by_name["RetrieveService"].full_name]

    async def start(self) -> None:
        s = self.settings
        await asyncio.to_thread(detect, "warm")  # loads the language model before the first query needs it
        if s.rerank_url:
            self.reranker = Reranker(
                s.rerank_url, s.rerank_api, s.rerank_model, s.rerank_api_key, s.rerank_top_n, s.rerank_timeout_ms
            )
        self.embed = embed_pb2_grpc.EmbedServiceStub(channel(s.embed_addr, s))
        info = await self.embed.GetModelInfo(embed_pb2.GetModelInfoRequest(), wait_for_ready=True, timeout=300)
        self.nc = await natsio.connect(s.nats_url, "retrieve")
        js = self.nc.jetstream()
        await natsio.ensure_all(js, s.nats_replicas, s.index_retention_days)
        holder = s.instance or f"{socket.gethostname()}-{os.getpid()}"
        dimensions = {m.model_id: m.dimension for m in info.models}
        reembedder = Reembedder(self.embed)
        self.generations = Generations(s, self.index_dir, info.dimension, holder, reembedder, dimensions)
        self.control = GenerationControl(self.generations)
        await self.generations.start(js)
        await self.generations.wait_caught_up()

    async def stop(self) -> None:
        if self.reranker:
            await self.reranker.close()
        if self.generations:
            await self.generations.stop()
        await natsio.close(self.nc)

    async def _govern(self, context, operation):
        try:
            return await operation
        except GenerationError as exc:
            await context.abort(exc.code, str(exc))

    async def _generation(self, context, number: int) -> Generation:
        try:
            return self.generations.searchable(number)
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
        state = generation.state
        span = trace.get_current_span()
        span.set_attribute("rag.tenant", request.tenant)

        analysed = self.analyses.get(request.tenant, query)
        if analysed is None:
            analysed = analyse_query(query)
            self.analyses.put(request.tenant, query, analysed)
        model_id = generation.model_id  # queries are embedded with the model of the generation searched
        query_vector = QueryEmbedding(
            self.embed, self.query_vectors, request.tenant, model_id, query, context.time_remaining
        )

        def rerank_budget() -> float | None:
            """What is left of the caller's deadline, a little kept to answer."""
            remaining = context.time_remaining()
            return remaining - 0.05 if remaining is not None else None

        try:
            result = await hybrid_search(
                *(generation.dense, generation.lexical, query, query_vector, scope, fusion, top_k),
                policy=self.policy,
                reranker=self.reranker,
                budget_s=rerank_budget,  # the rerank never outlasts the caller's deadline
                analysed=analysed,
            )
        except ModelNotServed as exc:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"index generation {generation.number} holds vectors of {model_id}: {exc}",
            )
        except ModelMismatch as exc:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"query embedded by {exc}, but index generation {generation.number} was built with {model_id}",
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.INVALID_ARGUMENT:
                raise
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"the query cannot be embedded: {exc.details()}")
        if result.decision is not None:
            fusion.decision.CopyFrom(result.decision)
            fusion.dense_weight = result.decision.dense_weight  # the weight this query was fused with
        fusion.rerank.CopyFrom(result.rerank)
        hits = [f.hit(rank) for rank, f in enumerate(result.found, start=1)]
        span.set_attribute("rag.hits", len(hits))
        span.set_attribute("rag.index.watermark", state.watermark)
        span.set_attribute("rag.index.generation", state.generation)
        return retrieve_pb2.RetrieveResponse(
            hits=hits,
            index_watermark=state.watermark,
            embedding_model_id=query_vector.model_id,
            fusion=fusion,
            query_tokens=query_vector.tokens,
            index_generation=state.generation,
            generation=generation.number,
            dense_skipped=not query_vector.asked,
        )

    async def GetIndexInfo(self, request, context):
        try:
            g = self.generations.get(request.generation)
        except GenerationError as exc:
            await context.abort(exc.code, str(exc))
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

    async def ListGenerations(self, request, context):
        infos = await self.control.describe()
        return retrieve_pb2.ListGenerationsResponse(generations=infos, pointer=self.generations.pointer)

    async def CreateGeneration(self, request, context):
        chunking = request.chunking if request.HasField("chunking") else None
        creation = self.control.create(request.reason, request.rechunk, chunking, request.embedding_model)
        record = await self._govern(context, creation)
        return retrieve_pb2.CreateGenerationResponse(generation=record)

    async def EvaluateGeneration(self, request, context):
        verdict = await self._govern(context, evaluation.evaluate(self.control, self.embed, self.settings, request))
        return retrieve_pb2.EvaluateGenerationResponse(verdict=verdict)

    async def PromoteGeneration(self, request, context):
        promotion = self.control.promote(
            request.number, request.expected_active, request.note, request.force, request.actor
        )
        return retrieve_pb2.PromoteGenerationResponse(pointer=await self._govern(context, promotion))

    async def RollbackGeneration(self, request, context):
        pointer = await self._govern(context, self.control.rollback())
        return retrieve_pb2.RollbackGenerationResponse(pointer=pointer)

    async def DropGeneration(self, request, context):
        pointer = await self._govern(context, self.control.drop(request.number))
        return retrieve_pb2.DropGenerationResponse(pointer=pointer)


def main() -> None:
    run(lambda: RetrieveService(RetrieveSettings()))
