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
from services.common.server import Service, run
from services.retrieve import evaluation
from services.retrieve.backends.base import SearchScope
from services.retrieve.control import GenerationControl
from services.retrieve.generations import Generation, GenerationError, Generations
from services.retrieve.search import date_bounds, filters_problem, fusion_problem, hybrid_search, resolve_fusion

log = logging.getLogger(__name__)
tracer = trace.get_tracer("ragmesh.retrieve")


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
        s = self.settings
        self.embed = embed_pb2_grpc.EmbedServiceStub(channel(s.embed_addr, s))
        info = await self.embed.GetModelInfo(embed_pb2.GetModelInfoRequest(), wait_for_ready=True, timeout=300)
        self.nc = await natsio.connect(s.nats_url, "retrieve")
        js = self.nc.jetstream()
        await natsio.ensure_all(js, s.nats_replicas, s.index_retention_days)
        holder = s.instance or f"{socket.gethostname()}-{os.getpid()}"
        self.generations = Generations(s, self.index_dir, info.dimension, holder)
        self.control = GenerationControl(self.generations)
        await self.generations.start(js)
        await self.generations.wait_caught_up()

    async def stop(self) -> None:
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
        found = await hybrid_search(generation.dense, generation.lexical, query, vector, scope, fusion, top_k)
        hits = [f.hit(rank) for rank, f in enumerate(found, start=1)]
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
        record = await self._govern(context, self.control.create(request.reason, request.rechunk, chunking))
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
