"""Index events of one job: its chunks embedded (bulk lane) and published as upserts in batches,
then one activation per chunking. Message ids are deterministic, so a redelivered job's events
are dropped by JetStream as repeats."""

import asyncio

import grpc
from nats.js import JetStreamContext
from opentelemetry import trace
from prometheus_client import Counter

from rag.v1 import embed_pb2, events_pb2, types_pb2
from services.common import natsio
from services.common.chunking import label, same_sizes
from services.common.config import IngestSettings
from services.common.ids import chunk_id, token
from services.common.language import language_of
from services.ingest.chunker import CHUNKER_VERSION, ChunkDraft
from services.ingest.index_events import document_fields, fitting

tracer = trace.get_tracer("ragmesh.ingest")

CHUNKS = Counter("ragmesh_ingest_chunks_total", "Chunks embedded and sent to the index.", ["tenant"])
EMBED_TOKENS = Counter("ragmesh_ingest_embedding_tokens_total", "Embedding tokens spent on ingestion.", ["tenant"])


class IndexWriter:
    def __init__(
        self, js: JetStreamContext, embed, settings: IngestSettings, configured: types_pb2.Chunking, max_payload: int
    ) -> None:
        self.js, self.embed, self.settings = js, embed, settings
        self.configured = configured  # the workers' own chunking: its events keep the plain ids
        self.max_payload = max_payload  # the NATS server's limit on one message

    def tagged(self, event: events_pb2.IndexBatch, chunking: types_pb2.Chunking) -> events_pb2.IndexBatch:
        event.chunking.CopyFrom(chunking)
        event.chunking.chunker_version = CHUNKER_VERSION
        event.configured_chunking = same_sizes(chunking, self.configured)
        return event

    async def write(
        self,
        job: events_pb2.IngestJob,
        record: types_pb2.DocumentRecord,
        title: str,
        chunking: types_pb2.Chunking,
        drafts: list[ChunkDraft],
        skip: int,
        ids: str,
        on_batch=None,
    ) -> str:
        """Embed `drafts` from `skip` on in batches and publish each batch's upserts; returns the
        embedding model id. `on_batch(embedded, tokens)`, if given, after each batch is out."""
        s = self.settings
        model_id = ""
        for start in range(skip, len(drafts), s.embed_batch_size):
            batch = drafts[start : start + s.embed_batch_size]
            pieces, response = await self.embedded(job, record, title, chunking, batch)
            model_id = same_model(model_id, response.model_id)
            await self.publish(job, pieces, f"{ids}/upsert/{start}")
            if on_batch is not None:
                await on_batch(start + len(batch), response.tokens)
        return model_id

    async def whole(
        self,
        job: events_pb2.IngestJob,
        record: types_pb2.DocumentRecord,
        title: str,
        chunking: types_pb2.Chunking,
        drafts: list[ChunkDraft],
    ) -> tuple[list[events_pb2.IndexBatch], embed_pb2.EmbedResponse]:
        """A version whose chunks fit one batch, embedded, as upsert events of which the last also
        activates it (one event unless the chunks outgrow a message); published by `publish_whole`."""
        pieces, response = await self.embedded(job, record, title, chunking, drafts)
        pieces[-1].upserts.activate.CopyFrom(events_pb2.ActivateVersion(version=job.version, chunk_count=len(drafts)))
        return pieces, response

    async def publish_whole(self, job: events_pb2.IngestJob, pieces: list[events_pb2.IndexBatch], ids: str) -> None:
        # Ids of their own: events of a delivery that published the upserts and the activation
        # apart must not make these look like repeats.
        await self.publish(job, pieces, f"{ids}/whole")

    async def embedded(
        self,
        job: events_pb2.IngestJob,
        record: types_pb2.DocumentRecord,
        title: str,
        chunking: types_pb2.Chunking,
        batch: list[ChunkDraft],
    ) -> tuple[list[events_pb2.IndexBatch], embed_pb2.EmbedResponse]:
        """One batch embedded (bulk lane), as upsert events that each fit a message."""
        with tracer.start_as_current_span("rag.ingest.embed") as span:
            response = await self.embed_bulk([d.embed_text for d in batch])
            span.set_attribute("rag.batch.size", len(batch))
            span.set_attribute("rag.tokens", response.tokens)
        # The document's title, ACL and metadata travel once per event, in `fields`.
        chunks = [
            types_pb2.Chunk(
                chunk_id=chunk_id(job.tenant, job.doc_id, job.version, d.ordinal),
                tenant=job.tenant,
                doc_id=job.doc_id,
                version=job.version,
                ordinal=d.ordinal,
                text=d.text,
                title=title,
                section=d.section,
                char_start=d.char_start,
                char_end=d.char_end,
                chunker_version=CHUNKER_VERSION,
                page_start=d.page_start,
                page_end=d.page_end,
                content_kind=d.kind,
                language=language_of(f"{title}. {d.text}"),
            )
            for d in batch
        ]
        vectors = [list(v.values) for v in response.vectors]
        event = events_pb2.IndexBatch(
            tenant=job.tenant, doc_id=job.doc_id, embedding_model_id=response.model_id, job_id=job.job_id
        )
        self.tagged(event, chunking)
        fields = document_fields(record)
        CHUNKS.labels(job.tenant).inc(len(batch))
        EMBED_TOKENS.labels(job.tenant).inc(response.tokens)
        return fitting(event, chunks, vectors, response.dimension, fields, self.max_payload), response

    async def publish(self, job: events_pb2.IngestJob, pieces: list[events_pb2.IndexBatch], msg_id: str) -> None:
        for part, piece in enumerate(pieces):
            suffix = f".{part}" if part else ""
            await natsio.publish(self.js, f"rag.index.{job.tenant}", piece.SerializeToString(), msg_id=msg_id + suffix)

    async def activate(
        self,
        job: events_pb2.IngestJob,
        chunking,
        chunk_count: int,
        model_id: str,
        ids: str,
        rechunk: bool = False,
        records: events_pb2.IngestRecords | None = None,
    ) -> None:
        activate = events_pb2.IndexBatch(
            tenant=job.tenant,
            doc_id=job.doc_id,
            embedding_model_id=model_id,
            job_id=job.job_id,
            activate=events_pb2.ActivateVersion(
                version=job.version, chunk_count=chunk_count, rechunk=rechunk, records=records
            ),
        )
        self.tagged(activate, chunking)
        await natsio.publish(self.js, f"rag.index.{job.tenant}", activate.SerializeToString(), msg_id=f"{ids}/activate")

    def ids(self, job: events_pb2.IngestJob, chunking: types_pb2.Chunking) -> str:
        """Message-id prefix of a job's index events: the configured chunking keeps the plain ids;
        a re-chunk's ids name its generation, or JetStream would drop them as repeats of the
        original ingestion's."""
        ids = f"{job.tenant}/{token(job.doc_id)}/{job.version}"
        if job.rechunk_generation:
            return f"{ids}/rechunk/{job.rechunk_generation}/{label(chunking)}"
        return ids if same_sizes(chunking, self.configured) else f"{ids}/{label(chunking)}"

    async def embed_bulk(self, texts: list[str]):
        """Bulk-lane embedding; waits out a full queue as the service's retry hint says."""
        for _ in range(20):
            try:
                return await self.embed.Embed(
                    embed_pb2.EmbedRequest(texts=texts, lane=embed_pb2.EMBED_LANE_BULK), timeout=120
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                    raise
                hint = dict(exc.trailing_metadata() or ()).get("retry-after-ms", "500")
                await asyncio.sleep(int(hint) / 1000)
        raise RuntimeError("the embed service stayed overloaded")


def same_model(so_far: str, answered: str) -> str:
    """The model that embedded a document: every batch of it must come from the same one."""
    if so_far and answered != so_far:
        raise RuntimeError(f"the embedding model changed mid-document ({so_far} -> {answered})")
    return answered
