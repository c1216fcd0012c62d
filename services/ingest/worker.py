"""Ingestion worker: pull jobs from the work queue, parse, chunk, embed (bulk lane), emit index events.

Explicit acks; a job in progress keeps extending its ack deadline; a transient failure is retried
with backoff; a bad document, or a job out of attempts, is dead-lettered with its reason and the
registry says `failed`. Nothing is dropped silently.
"""

import asyncio
import json
import logging
import time
from dataclasses import asdict

import grpc
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, ObjectNotFoundError
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore
from opentelemetry import trace
from prometheus_client import Counter

from rag.v1 import embed_pb2, events_pb2, retrieve_pb2, types_pb2
from services.common import natsio
from services.common.chunking import chunkings_to_write, label, same_sizes
from services.common.config import IngestSettings
from services.common.ids import chunk_id, token
from services.common.usage import UsageStore
from services.ingest.budget import ByteBudget
from services.ingest.chunker import CHUNKER_VERSION, ChunkDraft, chunk_document
from services.ingest.document import DocumentError
from services.ingest.index_events import document_fields, fitting
from services.ingest.job_parsing import JobParser
from services.ingest.registry import FINISHED_JOBS, Registry, now_ms, version_entry
from services.ingest.scheduler import FairJobQueue

log = logging.getLogger(__name__)
tracer = trace.get_tracer("ragmesh.ingest")

JOBS = Counter("ragmesh_ingest_jobs_total", "Ingestion jobs finished, by outcome.", ["outcome"])
REDELIVERIES = Counter("ragmesh_ingest_redeliveries_total", "Job deliveries after the first (retries, crashes).")
CHUNKS = Counter("ragmesh_ingest_chunks_total", "Chunks embedded and sent to the index.", ["tenant"])
EMBED_TOKENS = Counter("ragmesh_ingest_embedding_tokens_total", "Embedding tokens spent on ingestion.", ["tenant"])


class Superseded(Exception):
    """A newer version (or a delete) arrived while this job waited: its work is moot."""


class AlreadyFinished(Exception):
    """Another delivery of this job finished it (at-least-once delivery: a job can be redelivered
    while its first delivery is still being worked on)."""


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
        self.usage = usage
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

    async def _advance(
        self, job: events_pb2.IngestJob, status: int, chunk_count: int | None = None, seen=None
    ) -> tuple[types_pb2.DocumentRecord, int]:
        """Move the document's current version to `status`; the record and its revision.
        Superseded if it is no longer current, AlreadyFinished if it is indexed already. `seen`:
        the record and revision this job last wrote."""
        outcome: list[Exception] = []

        def change(record):
            if record is None or record.status == types_pb2.DOCUMENT_STATUS_DELETED:
                outcome.append(Superseded("the document was deleted"))
                return None
            if record.current_version != job.version:
                outcome.append(Superseded(f"superseded by version {record.current_version}"))
                return None
            entry = version_entry(record, job.version)
            if entry is not None and entry.status == types_pb2.DOCUMENT_STATUS_INDEXED:
                if record.indexed_version >= job.version:
                    outcome.append(AlreadyFinished())
                    return None
            record.status = status
            if entry is not None:
                entry.status = status
                if chunk_count is not None:
                    entry.chunk_count = chunk_count
            return record

        written = await self.registry.mutate_seen(job.tenant, job.doc_id, change, seen)
        if outcome:
            raise outcome[0]
        return written

    async def _report(self, job_id: str, seen=None, **fields) -> tuple[types_pb2.JobRecord, int]:
        """Write the job's progress over `seen`, the record and revision this job last read or
        wrote; the new ones. AlreadyFinished when another delivery finished it."""
        written = await self.registry.update_job(job_id, seen, **fields)
        if written is None:
            raise AlreadyFinished()
        return written

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

    def _tagged(self, event: events_pb2.IndexBatch, chunking: types_pb2.Chunking) -> events_pb2.IndexBatch:
        event.chunking.CopyFrom(chunking)
        event.chunking.chunker_version = CHUNKER_VERSION
        event.configured_chunking = same_sizes(chunking, self.configured)
        return event

    async def _write(
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
        fields = document_fields(record)
        model_id = ""
        for start in range(skip, len(drafts), s.embed_batch_size):
            batch = drafts[start : start + s.embed_batch_size]
            with tracer.start_as_current_span("rag.ingest.embed") as span:
                response = await self._embed([d.embed_text for d in batch])
                span.set_attribute("rag.batch.size", len(batch))
                span.set_attribute("rag.tokens", response.tokens)
            if model_id and response.model_id != model_id:
                raise RuntimeError(f"the embedding model changed mid-document ({model_id} -> {response.model_id})")
            model_id = response.model_id
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
                )
                for d in batch
            ]
            vectors = [list(v.values) for v in response.vectors]
            event = events_pb2.IndexBatch(
                tenant=job.tenant, doc_id=job.doc_id, embedding_model_id=model_id, job_id=job.job_id
            )
            self._tagged(event, chunking)
            subject = f"rag.index.{job.tenant}"
            for part, piece in enumerate(fitting(event, chunks, vectors, response.dimension, fields, self.max_payload)):
                msg_id = f"{ids}/upsert/{start}" + (f".{part}" if part else "")
                await natsio.publish(self.js, subject, piece.SerializeToString(), msg_id=msg_id)
            CHUNKS.labels(job.tenant).inc(len(batch))
            EMBED_TOKENS.labels(job.tenant).inc(response.tokens)
            if on_batch is not None:
                await on_batch(start + len(batch), response.tokens)
        return model_id

    async def _activate(
        self, job: events_pb2.IngestJob, chunking, chunk_count: int, model_id: str, ids: str, rechunk: bool = False
    ) -> None:
        activate = events_pb2.IndexBatch(
            tenant=job.tenant,
            doc_id=job.doc_id,
            embedding_model_id=model_id,
            job_id=job.job_id,
            activate=events_pb2.ActivateVersion(version=job.version, chunk_count=chunk_count, rechunk=rechunk),
        )
        self._tagged(activate, chunking)
        await natsio.publish(self.js, f"rag.index.{job.tenant}", activate.SerializeToString(), msg_id=f"{ids}/activate")

    def _ids(self, job: events_pb2.IngestJob, chunking: types_pb2.Chunking) -> str:
        """Message-id prefix of a job's index events: the configured chunking keeps the plain ids;
        a re-chunk's ids name its generation, or JetStream would drop them as repeats of the
        original ingestion's."""
        ids = f"{job.tenant}/{token(job.doc_id)}/{job.version}"
        if job.rechunk_generation:
            return f"{ids}/rechunk/{job.rechunk_generation}/{label(chunking)}"
        return ids if same_sizes(chunking, self.configured) else f"{ids}/{label(chunking)}"

    async def process(self, job: events_pb2.IngestJob, attempt: int = 1) -> None:
        if job.rechunk_generation:
            await self.rechunk(job, attempt)
            return
        # Each write keeps the revision it made: the next write of the same record needs no read.
        seen = {"job": await self.registry.get_job_seen(job.job_id)}
        progress = seen["job"][0]
        if progress is None:  # its record was lost: start a new one
            progress = types_pb2.JobRecord(
                job_id=job.job_id, tenant=job.tenant, doc_id=job.doc_id, version=job.version, created_unix_ms=now_ms()
            )
            seen["job"] = await self.registry.create_job(progress)
        elif progress.status in FINISHED_JOBS:
            raise AlreadyFinished()
        seen["doc"] = await self._advance(job, types_pb2.DOCUMENT_STATUS_PROCESSING)
        record = seen["doc"][0]
        chunkings = await self._chunkings()
        parsed_title, warnings, chunk_sets = await self._chunks(job, attempt, chunkings)
        total = sum(len(drafts) for drafts in chunk_sets)
        plan = ",".join(label(c) for c in chunkings)
        # Resume after the last batch whose index event was published, if the chunkings are the same.
        same_plan = progress.chunks_total == total and progress.chunkings == plan
        done = progress.chunks_embedded if same_plan else 0
        if done:
            log.info("resuming job", extra={"fields": {"job_id": job.job_id, "chunks_done": done}})
        seen["job"] = await self._report(
            job.job_id,
            seen["job"],
            status=types_pb2.JOB_STATUS_RUNNING,
            chunks_total=total,
            chunks_embedded=done,
            chunkings=plan,
        )
        if warnings:
            seen["doc"] = await self._set_warnings(job, warnings, seen["doc"])
        title = parsed_title  # the owner's title, when there is one, travels in the events' fields
        spent = {"tokens": progress.embedding_tokens if done else 0}  # the batches of earlier deliveries
        offset, model_id = 0, ""
        for chunking, drafts in zip(chunkings, chunk_sets, strict=True):

            async def on_batch(embedded: int, tokens: int, offset: int = offset) -> None:
                spent["tokens"] += tokens
                if self.usage is not None:  # billed as embedded: a job cut off later has still spent it
                    self.usage.add(job.tenant, time.time(), embedding_tokens=tokens)
                if offset + embedded < total:  # the last batch's progress goes out with INDEXING below
                    seen["job"] = await self._report(
                        job.job_id, seen["job"], chunks_embedded=offset + embedded, embedding_tokens=spent["tokens"]
                    )

            skip = min(len(drafts), max(0, done - offset))
            ids = self._ids(job, chunking)
            model_id = await self._write(job, record, title, chunking, drafts, skip, ids, on_batch) or model_id
            offset += len(drafts)
        chunk_count = len(chunk_sets[0])  # in the active generation's chunking
        await self._advance(job, types_pb2.DOCUMENT_STATUS_INDEXING, chunk_count=chunk_count, seen=seen["doc"])
        trace.get_current_span().set_attribute("rag.tokens", spent["tokens"])
        # Before the activations go out: retrieve may mark the job done right after one.
        await self._report(
            job.job_id,
            seen["job"],
            status=types_pb2.JOB_STATUS_INDEXING,
            chunks_embedded=total,
            embedding_tokens=spent["tokens"],
        )
        for chunking, drafts in zip(chunkings, chunk_sets, strict=True):
            await self._activate(job, chunking, len(drafts), model_id, self._ids(job, chunking))

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
        ids = self._ids(job, chunking)

        # An operator's rebuild, not the tenant's ingestion: counted in metrics, not billed or reported.
        model_id = await self._write(job, record, title, chunking, drafts, 0, ids)
        record, _ = await self.registry.get(job.tenant, job.doc_id)
        if shown(record, job.version):
            await self._activate(job, chunking, len(drafts), model_id, ids, rechunk=True)

    async def _set_warnings(self, job: events_pb2.IngestJob, warnings: list[str], seen) -> tuple:
        def change(record):
            entry = version_entry(record, job.version) if record is not None else None
            if entry is None or list(entry.warnings) == warnings:
                return None
            del entry.warnings[:]
            entry.warnings.extend(warnings)
            return record

        return await self.registry.mutate_seen(job.tenant, job.doc_id, change, seen)

    async def _embed(self, texts: list[str]):
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


def shown(record: types_pb2.DocumentRecord | None, version: int) -> bool:
    """Whether `version` is the document's current or indexed version (not deleted, not replaced)."""
    if record is None or record.status == types_pb2.DOCUMENT_STATUS_DELETED:
        return False
    return version in (record.current_version, record.indexed_version)


async def mark_failed(registry: Registry, tenant: str, doc_id: str, version: int, job_id: str, reason: str) -> None:
    def change(record):
        if record is None:
            return None
        entry = version_entry(record, version)
        if entry is not None and entry.status == types_pb2.DOCUMENT_STATUS_INDEXED:
            return None  # another delivery of the job indexed it
        if entry is not None:
            entry.status = types_pb2.DOCUMENT_STATUS_FAILED
            entry.error = reason
        if record.current_version == version:
            record.status = types_pb2.DOCUMENT_STATUS_FAILED
        return record

    await registry.mutate(tenant, doc_id, change)
    await registry.update_job(job_id, status=types_pb2.JOB_STATUS_FAILED, error=reason)
