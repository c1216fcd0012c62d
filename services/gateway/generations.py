"""The index-generation methods (operators only, checked before these run): forwards to retrieve,
which owns the generations. A re-chunk rebuild also asks ingest, which owns the chunker, to check
the chunk sizes first and to queue the documents after; the generation's record comes first, so a
gateway that dies in between leaves nothing undone (ingest queues recorded generations itself)."""

import logging

import grpc

from rag.v1 import gateway_pb2, ingest_pb2, retrieve_pb2
from services.gateway.downstream import Downstream

log = logging.getLogger(__name__)


class Generations:
    def __init__(self, retrieve, ingest, downstream: Downstream) -> None:
        self.retrieve, self.ingest, self.downstream = retrieve, ingest, downstream

    async def list(self, request, context):
        asked = retrieve_pb2.ListGenerationsRequest()
        reply = await self.downstream.call(context, self.retrieve.ListGenerations, asked)
        return gateway_pb2.ListIndexGenerationsResponse(generations=reply.generations, pointer=reply.pointer)

    async def rebuild(self, request, context):
        if request.HasField("chunking"):
            check = ingest_pb2.RechunkRequest(validate_only=True)
            check.chunking.CopyFrom(request.chunking)
            await self.downstream.call(context, self.ingest.Rechunk, check)
        asked = retrieve_pb2.CreateGenerationRequest(
            reason=request.reason, rechunk=request.rechunk, embedding_model=request.embedding_model
        )
        if request.HasField("chunking"):
            asked.chunking.CopyFrom(request.chunking)
        record = (await self.downstream.call(context, self.retrieve.CreateGeneration, asked)).generation
        if not record.rechunk:  # retrieve decides: named chunk sizes imply a re-chunk
            return gateway_pb2.RebuildIndexResponse(generation=record)
        try:
            queued = await self.ingest.Rechunk(
                ingest_pb2.RechunkRequest(generation=record.number), timeout=self.downstream.timeout(context)
            )
        except grpc.aio.AioRpcError as exc:
            # The generation is recorded: ingest finds it and queues its documents once it can.
            log.warning(
                "re-chunk documents left for ingest to queue",
                extra={"fields": {"generation": record.number, "error": exc.details()}},
            )
            return gateway_pb2.RebuildIndexResponse(generation=record, queued_later=True)
        return gateway_pb2.RebuildIndexResponse(generation=record, documents_queued=queued.documents_queued)

    async def evaluate(self, request, context):
        asked = retrieve_pb2.EvaluateGenerationRequest(
            number=request.number,
            dataset=request.dataset,
            tenant=request.tenant,
            principals=request.principals,
            queries=request.queries,
            modes=request.modes,
            tolerance=request.tolerance,
        )
        reply = await self.downstream.call(context, self.retrieve.EvaluateGeneration, asked)
        return gateway_pb2.EvaluateIndexResponse(verdict=reply.verdict)

    async def promote(self, request, context, caller: gateway_pb2.ApiKeyRecord):
        """A forced promotion names the operator's key on the index pointer."""
        asked = retrieve_pb2.PromoteGenerationRequest(
            number=request.number,
            expected_active=request.expected_active,
            note=request.note,
            force=request.force,
            actor=f"key {caller.key_id}",
        )
        reply = await self.downstream.call(context, self.retrieve.PromoteGeneration, asked)
        return gateway_pb2.PromoteIndexResponse(pointer=reply.pointer)

    async def rollback(self, request, context):
        reply = await self.downstream.call(
            context, self.retrieve.RollbackGeneration, retrieve_pb2.RollbackGenerationRequest()
        )
        return gateway_pb2.RollbackIndexResponse(pointer=reply.pointer)

    async def drop(self, request, context):
        asked = retrieve_pb2.DropGenerationRequest(number=request.number)
        reply = await self.downstream.call(context, self.retrieve.DropGeneration, asked)
        return gateway_pb2.DropIndexGenerationResponse(pointer=reply.pointer)
