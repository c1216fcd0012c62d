"""Embed service: Embed (two lanes) and GetModelInfo."""

import os

import grpc
from opentelemetry import trace

from rag.v1 import embed_pb2, embed_pb2_grpc
from services.common.config import EmbedSettings
from services.common.server import Service, run
from services.common.tokenizer import packaged_model_path, packaged_tokenizer_path
from services.embed.batcher import BULK, INTERACTIVE, Batcher, QueueFull
from services.embed.model import EmbeddingModel

tracer = trace.get_tracer("ragmesh.embed")

LANES = {
    embed_pb2.EMBED_LANE_UNSPECIFIED: INTERACTIVE,
    embed_pb2.EMBED_LANE_INTERACTIVE: INTERACTIVE,
    embed_pb2.EMBED_LANE_BULK: BULK,
}


class EmbedService(Service, embed_pb2_grpc.EmbedServiceServicer):
    name = "embed"

    def __init__(self, settings: EmbedSettings) -> None:
        super().__init__(settings)
        self.model = EmbeddingModel(
            model_path=settings.model_path or packaged_model_path(),
            tokenizer_path=settings.tokenizer_path or packaged_tokenizer_path(),
            name=settings.model_name,
            max_tokens=settings.max_tokens,
            threads=settings.intra_op_threads,
            pooling=settings.pooling,
            normalize=settings.normalize,
        )
        self.batcher: Batcher | None = None

    def register(self, server):
        embed_pb2_grpc.add_EmbedServiceServicer_to_server(self, server)
        return [embed_pb2.DESCRIPTOR.services_by_name["EmbedService"].full_name]

    async def start(self) -> None:
        self.model.load()
        self.model.embed(["warm up"])
        s = self.settings
        self.batcher = Batcher(
            self.model,
            s.batch_token_budget,
            s.queue_limit,
            bulk_linger_s=s.bulk_linger_ms / 1000,
            bulk_workers=s.bulk_workers or (os.cpu_count() or 1),
            bulk_patience_s=s.bulk_patience_ms / 1000,
        )
        self.batcher.start()

    async def stop(self) -> None:
        if self.batcher:
            await self.batcher.stop()

    async def Embed(self, request, context):
        s = self.settings
        if not request.texts:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "texts is empty: give at least one text")
        if len(request.texts) > s.max_texts_per_request:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{len(request.texts)} texts in one call; the limit is {s.max_texts_per_request}",
            )
        for index, text in enumerate(request.texts):
            if len(text) > s.max_chars_per_text:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"text {index} has {len(text)} characters; the limit is {s.max_chars_per_text}",
                )
        lane = LANES.get(request.lane, INTERACTIVE)
        span = trace.get_current_span()
        span.set_attribute("rag.lane", lane)
        span.set_attribute("rag.batch.size", len(request.texts))
        try:
            with tracer.start_as_current_span("rag.embed.embed") as step:
                vectors, tokens = await self.batcher.embed(list(request.texts), lane, request.tenant)
                step.set_attribute("rag.tokens", tokens)
        except QueueFull as exc:
            context.set_trailing_metadata((("retry-after-ms", str(exc.retry_after_ms)),))
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        return embed_pb2.EmbedResponse(
            vectors=[embed_pb2.Vector(values=v.tolist()) for v in vectors],
            model_id=self.model.model_id,
            dimension=self.model.dimension,
            tokens=tokens,
        )

    async def GetModelInfo(self, request, context):
        return embed_pb2.GetModelInfoResponse(
            model_id=self.model.model_id, dimension=self.model.dimension, max_tokens=self.model.max_tokens
        )


def main() -> None:
    run(lambda: EmbedService(EmbedSettings()))
