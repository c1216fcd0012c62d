"""The index-generation methods (operators only, checked before these run): forwards to retrieve,
which owns the generations. A re-chunk rebuild also asks ingest, which owns the chunker, to check
the chunk sizes first and to queue the documents after."""

import grpc

from rag.v1 import gateway_pb2, ingest_pb2, retrieve_pb2
from services.common.refusal import Refused
from services.gateway.downstream import Downstream


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
        asked = retrieve_pb2.CreateGenerationRequest(reason=request.reason, rechunk=request.rechunk)
        if request.HasField("chunking"):
            asked.chunking.CopyFrom(request.chunking)
        record = (await self.downstream.call(context, self.retrieve.CreateGeneration, asked)).generation
        if not record.rechunk:  # retrieve decides: named chunk sizes imply a re-chunk
            return gateway_pb2.RebuildIndexResponse(generation=record)
        queue = ingest_pb2.RechunkRequest(generation=record.number)
        if request.HasField("chunking"):
            queue.chunking.CopyFrom(request.chunking)
        try:
            queued = await self.ingest.Rechunk(queue, timeout=self.downstream.timeout(context))
        except grpc.aio.AioRpcError as exc:
            # A generation nothing will fill must not stay behind looking like a rebuild in progress.
            drop = retrieve_pb2.DropGenerationRequest(number=record.number)
            await self.downstream.call(context, self.retrieve.DropGeneration, drop)
            raise Refused(exc.code(), f"the documents could not be queued for re-chunking: {exc.details()}") from None
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
