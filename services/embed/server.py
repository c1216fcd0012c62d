"""Embed service: Embed (two lanes) and GetModelInfo."""

import os

import grpc
from opentelemetry import trace

from rag.v1 import embed_pb2, embed_pb2_grpc
from services.common import semconv
from services.common.config import EmbedSettings
from services.common.server import Service, run
from services.common.tokenizer import packaged_tokenizer_path
from services.embed.batcher import BULK, INTERACTIVE, Batcher, QueueFull
from services.embed.catalogue import check_known_model, known_model, known_model_path, served_names
from services.embed.model import EmbeddingModel, file_sha256

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
        # A file given names its own model; otherwise each name picks a known, pinned model.
        self.known = settings.model_path is None
        if not self.known and settings.models:
            raise ValueError("RAGMESH_MODEL_PATH serves that one file: leave RAGMESH_MODELS empty")
        names = served_names(settings.models, settings.model_name) if self.known else [settings.model_name]
        # The default (what requests naming no model get) first.
        self.models = [self._model(name) for name in names]
        self.batchers: dict[str, Batcher] = {}

    def _model(self, name: str) -> EmbeddingModel:
        s = self.settings
        return EmbeddingModel(
            model_path=s.model_path or known_model_path(name, s.derived_models_dir),
            tokenizer_path=s.tokenizer_path or packaged_tokenizer_path(),
            name=name,
            max_tokens=s.max_tokens,
            threads=s.intra_op_threads,
            pooling=s.pooling,
            normalize=s.normalize,
            one_text_per_run=self.known and known_model(name).one_text_per_run,
        )

    @property
    def model(self) -> EmbeddingModel:
        """The default model."""
        return self.models[0]

    def served(self, asked: str) -> EmbeddingModel | None:
        """The served model a request names by id or by name; the default for none."""
        if not asked:
            return self.model
        return next((m for m in self.models if asked in (m.model_id, m.name)), None)

    def register(self, server):
        embed_pb2_grpc.add_EmbedServiceServicer_to_server(self, server)
        return [embed_pb2.DESCRIPTOR.services_by_name["EmbedService"].full_name]

    async def start(self) -> None:
        s = self.settings
        for model in self.models:
            if self.known:
                path = model.model_path
                if not path.exists():
                    raise RuntimeError(f"{path} does not exist: run `make setup` (`python -m services.embed.derive`)")
                check_known_model(model.name, path, file_sha256(path))
            model.load()
            model.embed(["warm up"])
            # Each model its own lanes and sessions: a rebuild re-embedding with one never queues
            # the other's queries.
            batcher = Batcher(
                model,
                s.batch_token_budget,
                s.queue_limit,
                bulk_linger_s=s.bulk_linger_ms / 1000,
                bulk_workers=s.bulk_workers or (os.cpu_count() or 1),
                bulk_patience_s=s.bulk_patience_ms / 1000,
            )
            batcher.start()
            self.batchers[model.model_id] = batcher

    async def stop(self) -> None:
        for batcher in self.batchers.values():
            await batcher.stop()

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
        model = self.served(request.model_id)
        if model is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, not_served(request.model_id, self.models))
        lane = LANES.get(request.lane, INTERACTIVE)
        span = trace.get_current_span()
        span.set_attribute("rag.lane", lane)
        span.set_attribute("rag.batch.size", len(request.texts))
        try:
            with tracer.start_as_current_span("rag.embed.embed") as step:
                batcher = self.batchers[model.model_id]
                vectors, tokens = await batcher.embed(list(request.texts), lane, request.tenant)
                step.set_attribute("rag.tokens", tokens)
                step.set_attributes(semconv.embeddings(model.name, model.model_id, tokens, model.dimension))
        except QueueFull as exc:
            context.set_trailing_metadata((("retry-after-ms", str(exc.retry_after_ms)),))
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        return embed_pb2.EmbedResponse(
            vectors=[embed_pb2.Vector(values=v.tolist()) for v in vectors],
            model_id=model.model_id,
            dimension=model.dimension,
            tokens=tokens,
        )

    async def GetModelInfo(self, request, context):
        m = self.model
        served = [
            embed_pb2.ModelInfo(model_id=x.model_id, dimension=x.dimension, max_tokens=x.max_tokens, name=x.name)
            for x in self.models
        ]
        return embed_pb2.GetModelInfoResponse(
            model_id=m.model_id, dimension=m.dimension, max_tokens=m.max_tokens, models=served
        )


def not_served(asked: str, models: list[EmbeddingModel]) -> str:
    ids = ", ".join(m.model_id + (" (default)" if i == 0 else "") for i, m in enumerate(models))
    return f"embedding model {asked[:200]!r} is not served here; this service serves {ids}"


def main() -> None:
    run(lambda: EmbedService(EmbedSettings()))
