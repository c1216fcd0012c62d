"""Ingestion worker: pull jobs from the work queue, parse, chunk, embed (bulk lane), emit index events.

Explicit acks; a job in progress keeps extending its ack deadline; a transient failure is retried
with backoff; a bad document, or a job out of attempts, is dead-lettered with its reason and the
registry says `failed`. Nothing is dropped silently.
"""

import asyncio
import json
import logging
from dataclasses import asdict

import grpc
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, ObjectNotFoundError
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore
from opentelemetry import trace
from prometheus_client import Counter

from rag.v1 import events_pb2, retrieve_pb2, types_pb2
from services.common import natsio
from services.common.chunking import chunkings_to_write, label
from services.common.config import IngestSettings
from services.common.usage import UsageStore
from services.ingest.budget import ByteBudget
from services.ingest.chunker import CHUNKER_VERSION, ChunkDraft, chunk_document
from services.ingest.document import DocumentError
from services.ingest.index_writer import IndexWriter
from services.ingest.job_parsing import JobParser
from services.ingest.job_records import AlreadyFinished, Superseded, mark_failed, shown
from services.ingest.registry import FINISHED_JOBS, Registry, document_seen, job_seen, now_ms
from services.ingest.scheduler import FairJobQueue
from services.ingest.version_indexing import VersionIndexer

log = logging.getLogger(__name__)
tracer = trace.get_tracer("ragmesh.ingest")

JOBS = Counter("ragmesh_ingest_jobs_total", "Ingestion jobs finished, by outcome.", ["outcome"])
REDELIVERIES = Counter("ragmesh_ingest_redeliveries_total", "Job deliveries after the first (retries, crashes).")


class IngestWorker:
    def __init__(
        self,
        js: JetStreamContext,
        registry: Registry,
        objects: ObjectStore,
        embed,
        settings: IngestSettings,
        count_tokens,
        usage: UsageStore | None = None,
        index_kv: KeyValue | None = None,
        max_payload: int = 1 << 20,
        chunk_cache: ObjectStore | None = None,
    ) -> None:
        self.js, self.registry, self.objects, self.embed = js, registry, objects, embed
        self.index_kv = index_kv  # the index pointer: which chunkings the generations hold
        self.max_payload = max_payload  # the NATS server's limit on one message
        # Parsed chunks of a job in progress, kept so a redelivery need not parse again; removed
        # when the job ends (the bucket's age limit removes what a crash left behind).
        self.chunk_cache = chunk_cache or objects
        self._caches: dict[str, set[str]] = {}
        self.settings = settings
        self.count_tokens = count_tokens
        self.budget = ByteBudget(settings.worker_bytes_in_flight)
        self.parser = JobParser(settings)  # parsing processes start on first use
        self.writer = IndexWriter(js, embed, settings, self.configured, max_payload)
        self.indexer = VersionIndexer(registry, self.writer, settings.embed_batch_size, usage)
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        self.queue = FairJobQueue(self.js, self.settings.job_ack_wait_seconds, self.settings.max_deliveries)
        self._tasks = [asyncio.create_task(self._loop()) for _ in range(self.settings.worker_concurrency)]

    async def stop(self) -> None:
        """Stop taking jobs; let the ones in hand finish."""
        self._stopping.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.parser.close()

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                msg = await self.queue.next()
            except Exception:
                log.exception("job fetch failed")
                await asyncio.sleep(1.0)
                continue
            if msg is None:
                await asyncio.sleep(0.1)
                continue
            try:
                await self.handle(msg)
            except Exception:  # NATS gone mid-job: the unacked job is redelivered after its ack wait
                log.exception("job handling interrupted; it will be redelivered")
                await asyncio.sleep(0.5)

    async def _heartbeat(self, msg) -> None:
        """Keep extending the ack deadline while the job is worked on (long parses, big documents)."""
        while True:
            await asyncio.sleep(max(0.5, self.settings.job_ack_wait_seconds / 3))
            try:
                await msg.in_progress()
            except Exception:
                log.warning("could not extend a job's ack deadline")

    async def handle(self, msg) -> None:
        try:
            job = events_pb2.IngestJob.FromString(msg.data)
        except Exception:
            log.error("undecodable job dead-lettered", extra={"fields": {"subject": msg.subject}})
            await natsio.publish(self.js, "rag.dlq.unknown", msg.data)
            await msg.ack()
            return
        attempt = natsio.delivery_count(msg)
        if attempt > 1:
            REDELIVERIES.inc()
        with natsio.consume_span("rag.ingest.job", msg) as span:
            span.set_attribute("rag.tenant", job.tenant)
            span.set_attribute("rag.doc_id", job.doc_id)
            span.set_attribute("rag.version", job.version)
            span.set_attribute("rag.attempt", attempt)
            heartbeat = asyncio.create_task(self._heartbeat(msg))
            try:
                async with self.budget.hold(job.size_bytes or len(job.content)):
                    await self.process(job, attempt)
                await msg.ack()
                JOBS.labels("indexing").inc()
            except AlreadyFinished:
                log.info("job already finished by another delivery", extra={"fields": {"job_id": job.job_id}})
                await msg.ack()
                JOBS.labels("duplicate").inc()
            except Superseded as exc:
                await self.registry.update_job(job.job_id, status=types_pb2.JOB_STATUS_DONE, error=str(exc))
                await msg.ack()
                JOBS.labels("superseded").inc()
            except DocumentError as exc:
                await self.fail(job, str(exc), attempt)
                await msg.ack()
                JOBS.labels("failed").inc()
            except Exception as exc:
                span.record_exception(exc)
                reason = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else str(exc) or type(exc).__name__
                if attempt >= self.settings.max_deliveries:
                    await self.fail(job, f"gave up after {attempt} attempts: {reason}", attempt)
                    await msg.ack()
                    JOBS.labels("dead_lettered").inc()
                else:
                    log.warning("job failed, will retry", extra={"fields": {"job_id": job.job_id, "error": reason}})
                    self._caches.pop(job.job_id, None)  # kept for the redelivery
                    await msg.nak(delay=min(30.0, 2.0**attempt))
                    JOBS.labels("retried").inc()
            finally:
                heartbeat.cancel()
                await self._drop_caches(job.job_id)

    async def _drop_caches(self, job_id: str) -> None:
        for name in self._caches.pop(job_id, set()):
            try:
                await self.chunk_cache.delete(name)
            except Exception:
                log.debug("chunk cache not removed; it expires", exc_info=True)

    async def fail(self, job: events_pb2.IngestJob, reason: str, attempt: int) -> None:
        event = events_pb2.DocumentFailed(
            tenant=job.tenant,
            doc_id=job.doc_id,
            version=job.version,
            job_id=job.job_id,
            error=reason,
            deliveries=attempt,
        )
        await natsio.publish(self.js, f"rag.dlq.{job.tenant}", event.SerializeToString())
        if job.rechunk_generation:  # the live version stays as it is; the new generation lacks it
            log.error(
                "re-chunk failed",
                extra={"fields": {"generation": job.rechunk_generation, "doc_id": job.doc_id, "error": reason}},
            )
            return
        await mark_failed(self.registry, job.tenant, job.doc_id, job.version, job.job_id, reason)
        log.error("job failed", extra={"fields": {"job_id": job.job_id, "doc_id": job.doc_id, "error": reason}})

    @property
    def configured(self) -> types_pb2.Chunking:
        s = self.settings
        return types_pb2.Chunking(
            target_tokens=s.chunk_target_tokens, overlap_tokens=s.chunk_overlap_tokens, chunker_version=CHUNKER_VERSION
        )

    async def _pointer(self) -> retrieve_pb2.IndexPointer | None:
        """Which index generations exist; None before retrieve first started."""
        if self.index_kv is None:
            return None
        try:
            return retrieve_pb2.IndexPointer.FromString((await self.index_kv.get(natsio.INDEX_POINTER_KEY)).value)
        except KeyNotFoundError:
            return None

    async def _chunkings(self) -> list[types_pb2.Chunking]:
        """The chunkings the index generations hold, read as the job starts: a generation made
        later is filled by its own re-chunk jobs."""
        return chunkings_to_write(await self._pointer(), self.configured)

    async def _chunks(
        self, job: events_pb2.IngestJob, attempt: int, chunkings: list[types_pb2.Chunking]
    ) -> tuple[str, list[str], list[list[ChunkDraft]]]:
        """The document's chunks in each chunking. Parsed once per content and chunked once per
        chunking, kept beside the raw bytes when embedding takes more than one batch: a
        redelivered job does not parse again."""
        s = self.settings
        title, warnings, parsed = "", [], None
        chunk_sets: list[list[ChunkDraft]] = []
        for chunking in chunkings:
            name = f"{job.object_name}.chunks.{CHUNKER_VERSION}-{label(chunking)}-{s.max_tokens}"
            if attempt > 1 and parsed is None:
                try:
                    kept = json.loads((await self.chunk_cache.get(name)).data)
                    self._caches.setdefault(job.job_id, set()).add(name)
                    title, warnings = kept["title"], kept["warnings"]
                    chunk_sets.append([ChunkDraft(**d) for d in kept["chunks"]])
                    continue
                except ObjectNotFoundError:
                    pass
            if parsed is None:
                data = job.content or (await self.objects.get(job.object_name)).data
                with tracer.start_as_current_span("rag.ingest.parse") as span:
                    parsed = await self.parser.parse(job, data)
                    span.set_attribute("rag.bytes", len(data))
                title, warnings = parsed.title, parsed.warnings
            with tracer.start_as_current_span("rag.ingest.chunk") as span:
                drafts = await asyncio.to_thread(
                    chunk_document,
                    parsed,
                    self.count_tokens,
                    chunking.target_tokens,
                    chunking.overlap_tokens,
                    s.max_tokens,
                )
                span.set_attribute("rag.chunks", len(drafts))
                span.set_attribute("rag.chunking", label(chunking))
            if len(drafts) > s.max_chunks_per_document:
                raise DocumentError(
                    f"the document makes {len(drafts)} chunks; the limit is {s.max_chunks_per_document}"
                )
            if len(drafts) > s.embed_batch_size:
                kept = {"title": title, "warnings": warnings, "chunks": [asdict(d) for d in drafts]}
                self._caches.setdefault(job.job_id, set()).add(name)
                await self.chunk_cache.put(name, json.dumps(kept).encode())
            chunk_sets.append(drafts)
        return title, warnings, chunk_sets

    async def process(self, job: events_pb2.IngestJob, attempt: int = 1) -> None:
        if job.rechunk_generation:
            await self.rechunk(job, attempt)
            return
        # Each write keeps the revision it made: the next write of the same record needs no read.
        # A first delivery starts from the records the upload wrote, which its job carries.
        first = attempt == 1
        seen = {
            "job": (first and job_seen(job.records)) or await self.registry.get_job_seen(job.job_id),
            "doc": document_seen(job.records) if first else None,
        }
        progress = seen["job"][0]
        if progress is None:  # its record was lost: start a new one
            progress = types_pb2.JobRecord(
                job_id=job.job_id, tenant=job.tenant, doc_id=job.doc_id, version=job.version, created_unix_ms=now_ms()
            )
            seen["job"] = await self.registry.create_job(progress)
        elif progress.status in FINISHED_JOBS:
            raise AlreadyFinished()
        chunkings = await self._chunkings()
        parsed_title, warnings, chunk_sets = await self._chunks(job, attempt, chunkings)
        await self.indexer.index(job, seen, chunkings, parsed_title, warnings, chunk_sets)

    async def rechunk(self, job: events_pb2.IngestJob, attempt: int) -> None:
        """Chunk and embed an indexed version again, from its stored bytes, for one new index
        generation. The registry and the job records are the live ingestion's and stay as they are."""
        record, _ = await self.registry.get(job.tenant, job.doc_id)
        if not shown(record, job.version):
            return  # deleted or replaced since: the newer version's own job writes every chunking
        pointer = await self._pointer()
        if pointer is not None and job.rechunk_generation not in {r.number for r in pointer.generations}:
            return  # the generation was dropped: nobody would apply the chunks
        chunking = job.chunking if job.HasField("chunking") else self.configured
        title, _, (drafts,) = await self._chunks(job, attempt, [chunking])
        ids = self.writer.ids(job, chunking)

        # An operator's rebuild, not the tenant's ingestion: counted in metrics, not billed or reported.
        model_id = await self.writer.write(job, record, title, chunking, drafts, 0, ids)
        record, _ = await self.registry.get(job.tenant, job.doc_id)
        if shown(record, job.version):
            await self.writer.activate(job, chunking, len(drafts), model_id, ids, rechunk=True)
