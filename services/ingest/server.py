"""Ingest service: accepts documents off the request path and owns the registry and the workers."""

import asyncio
import uuid

import grpc

from rag.v1 import embed_pb2_grpc, events_pb2, ingest_pb2, ingest_pb2_grpc, types_pb2
from services.common import natsio
from services.common.access import PUBLIC, may_read
from services.common.chunking import chunking_problem
from services.common.clients import channel
from services.common.config import IngestSettings
from services.common.ids import sha256_hex, token, valid_doc_id, valid_tenant
from services.common.server import Service, run
from services.common.tokenizer import load_tokenizer, token_counter
from services.common.usage import UsageStore
from services.ingest.events import LifecycleFollower
from services.ingest.index_events import publish_fields, publish_removal, set_fields
from services.ingest.nats_metrics import NatsObserver
from services.ingest.parsing.formats.docx import inflated_size
from services.ingest.rechunk import Rechunker, UnknownGeneration, held_bytes
from services.ingest.registry import Registry, carried, now_ms, version_entry
from services.ingest.sealing import Sealer, load_key
from services.ingest.storage import delete_raw, object_name
from services.ingest.worker import IngestWorker


class NotReplaceable(Exception):
    """The upload would replace a document its uploader may not read."""


def check_replaceable(request: ingest_pb2.SubmitRequest, record: types_pb2.DocumentRecord | None) -> None:
    """An upload may create a document or replace one its uploader can read (a deleted one too: its
    history stays with the doc_id). Refusing shows only that the doc_id is taken."""
    if request.HasField("uploader") and record is not None and not may_read(request.uploader.principals, record.acl):
        raise NotReplaceable(
            f"doc_id {request.doc_id!r} is taken by a document this key may not read; upload under another doc_id"
        )


class IngestService(Service, ingest_pb2_grpc.IngestServiceServicer):
    name = "ingest"

    def register(self, server):
        ingest_pb2_grpc.add_IngestServiceServicer_to_server(self, server)
        return [ingest_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name]

    async def start(self) -> None:
        s: IngestSettings = self.settings
        count = token_counter(load_tokenizer(s.tokenizer_path, s.max_tokens))
        self.nc = await natsio.connect(s.nats_url, "ingest")
        self.js = self.nc.jetstream()
        await natsio.ensure_all(self.js, self.settings.nats_replicas, self.settings.index_retention_days)
        self.registry = Registry(
            self.js, await self.js.key_value(natsio.KV_DOCS), await self.js.key_value(natsio.KV_JOBS)
        )
        self.objects = await self.js.object_store(natsio.OBJECTS_RAW)
        embed = embed_pb2_grpc.EmbedServiceStub(channel(s.embed_addr, self.settings))
        self.usage = UsageStore(await self.js.key_value(natsio.KV_USAGE), s.usage_flush_seconds)
        self.usage.start()
        index_kv = await self.js.key_value(natsio.KV_INDEX)
        self.sealer = Sealer(load_key(s.upload_secret, s.data_dir))
        chunk_cache = await self.js.object_store(natsio.OBJECTS_CHUNK_CACHE)
        self.worker = IngestWorker(
            self.js,
            self.registry,
            self.objects,
            embed,
            s,
            count,
            self.usage,
            index_kv,
            self.nc.max_payload,
            chunk_cache,
        )
        self.follower = LifecycleFollower(self.js, self.registry, self.objects)
        self.rechunker = Rechunker(self.js, self.registry.jobs, index_kv, s.rechunk_poll_seconds)
        self.rechunker.start()
        await self.worker.start()
        await self.follower.start()
        self.observer = NatsObserver(self.nc, s.nats_storage_limit_bytes)
        self.observer.start()

    async def stop(self) -> None:
        await self.observer.stop()
        await self.rechunker.stop()
        await self.worker.stop()
        await self.follower.stop()
        await self.usage.stop()
        await natsio.close(self.nc)

    async def _require(self, context, tenant: str, doc_id: str | None = None) -> None:
        if not valid_tenant(tenant):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"tenant {tenant!r} is not valid: use 1-63 of a-z, 0-9, '_' and '-'"
            )
        if doc_id is not None and not valid_doc_id(doc_id):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "doc_id must be 1-512 printable characters")

    async def Submit(self, request, context):
        await self._require(context, request.tenant, request.doc_id)
        size = len(request.content)
        if size == 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the document is empty")
        if size > self.settings.max_document_bytes:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the document has {size} bytes; the limit is {self.settings.max_document_bytes}",
            )
        try:
            return await self._submit(request, size)
        except NotReplaceable as refused:
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, str(refused))

    async def _submit(self, request: ingest_pb2.SubmitRequest, size: int) -> ingest_pb2.SubmitResponse:
        digest = sha256_hex(request.content)
        existing, revision = await self.registry.get(request.tenant, request.doc_id)
        check_replaceable(request, existing)
        if existing is not None and existing.status != types_pb2.DOCUMENT_STATUS_DELETED:
            current = existing.versions[-1] if existing.versions else None
            if (
                current is not None
                and current.content_sha256 == digest
                and current.status != types_pb2.DOCUMENT_STATUS_FAILED
            ):
                # The metadata first: its compare-and-set checks the uploader again, so an upload
                # refused there has queued nothing.
                updated = await self._update_metadata(request, existing)
                if current.status == types_pb2.DOCUMENT_STATUS_QUEUED:
                    await self._requeue(existing, current, request.content)
                return ingest_pb2.SubmitResponse(
                    job_id=current.job_id,
                    doc_id=request.doc_id,
                    version=current.version,
                    deduplicated=True,
                    content_sha256=digest,
                    metadata_updated=updated,
                )

        await self.objects.put(object_name(request.tenant, request.doc_id, digest), request.content)
        job_id = uuid.uuid4().hex
        created: dict[str, int] = {}
        # A zip's directory can list a million members: read off the event loop.
        inflated = await asyncio.to_thread(inflated_size, request.content) if request.content.startswith(b"PK") else 0

        def change(record):
            check_replaceable(request, record)  # the record written over, if changed since the read
            record = record or types_pb2.DocumentRecord(tenant=request.tenant, doc_id=request.doc_id)
            version = max([v.version for v in record.versions], default=0) + 1
            fields = (request.title or record.title, list(request.acl) or [PUBLIC], dict(request.metadata))
            created["fields_changed"] = set_fields(record, *fields) and bool(record.versions)
            record.source_name = request.source_name or record.source_name
            record.content_type = request.content_type or record.content_type
            record.current_version = version
            record.status = types_pb2.DOCUMENT_STATUS_QUEUED
            record.versions.append(
                types_pb2.DocumentVersion(
                    version=version,
                    content_sha256=digest,
                    size_bytes=size,
                    status=types_pb2.DOCUMENT_STATUS_QUEUED,
                    job_id=job_id,
                    created_unix_ms=now_ms(),
                    sealed_password=self.sealer.seal(request.password, request.tenant, request.doc_id, version),
                    inflated_bytes=inflated,
                )
            )
            created["version"] = version
            return record

        # Written over the revision just read: a second read only when somebody wrote in between.
        # Refused then (the ACL changed since the read), the bytes just stored stay unreferenced, as
        # after a crash here: removing them could take those of a permitted upload of the same bytes
        # under way at the same moment.
        record, revision = await self.registry.mutate_seen(request.tenant, request.doc_id, change, (existing, revision))
        version = created["version"]
        if created["fields_changed"]:
            # The version searches see now takes the new ACL and metadata at once, not when the new one is indexed.
            await publish_fields(self.js, record)
        inline = request.content if size <= self.settings.inline_job_bytes else b""
        await self._enqueue(record, version, digest, job_id, content=inline, revision=revision)
        return ingest_pb2.SubmitResponse(
            job_id=job_id, doc_id=request.doc_id, version=version, deduplicated=False, content_sha256=digest
        )

    async def SubmitStream(self, request_iterator, context):
        """Submit with the bytes streamed: gathered here, within the size limit, then submitted whole."""
        header, content = await self._gather(request_iterator, context)
        request = ingest_pb2.SubmitRequest()
        request.CopyFrom(header)
        request.content = bytes(content)
        del content
        return ingest_pb2.SubmitStreamResponse(response=await self.Submit(request, context))

    async def _gather(self, request_iterator, context) -> tuple[ingest_pb2.SubmitRequest, bytearray]:
        """The header and the bytes, once the end message confirms they all came: a stream cut
        short (a cancelled call ends like a finished one here) submits nothing."""
        header, content, limit = None, bytearray(), self.settings.max_document_bytes
        async for part in request_iterator:
            if part.HasField("header"):
                if header is not None:
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the header was sent twice")
                header = part.header
            elif header is None:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "send the header before the data")
            elif part.HasField("end"):
                if part.end.size_bytes != len(content):
                    await context.abort(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"the upload is incomplete: {len(content)} of {part.end.size_bytes} bytes arrived",
                    )
                return header, content
            else:
                content += part.data
                if len(content) > limit:
                    await context.abort(
                        grpc.StatusCode.RESOURCE_EXHAUSTED, f"the document is larger than the limit of {limit} bytes"
                    )
        if header is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no header: the first message names the document")
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the upload ended without its end message: cut short")

    async def _update_metadata(self, request, existing: types_pb2.DocumentRecord) -> bool:
        """Same bytes, new title/ACL/metadata: rewrite the registry and the indexed chunks, no re-embedding."""
        fields = (request.title or existing.title, list(request.acl) or [PUBLIC], dict(request.metadata))
        changed: list[bool] = []

        def change(record):
            check_replaceable(request, record)
            if record is None or not set_fields(record, *fields):
                return None
            changed.append(True)
            return record

        record = await self.registry.mutate(request.tenant, request.doc_id, change)
        if not changed:
            return False
        await publish_fields(self.js, record)
        return True

    async def RetryIngest(self, request, context):
        await self._require(context, request.tenant, request.doc_id)
        record, _ = await self.registry.get(request.tenant, request.doc_id)
        if record is None or not record.versions:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no document {request.doc_id!r}")
        current = record.versions[-1]
        if current.status != types_pb2.DOCUMENT_STATUS_FAILED or record.status == types_pb2.DOCUMENT_STATUS_DELETED:
            status = types_pb2.DocumentStatus.Name(current.status).removeprefix("DOCUMENT_STATUS_").lower()
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION, f"only a failed document can be retried; this one is {status}"
            )
        job_id = uuid.uuid4().hex

        def change(record):
            entry = record.versions[-1]
            if entry.version != current.version or entry.status != types_pb2.DOCUMENT_STATUS_FAILED:
                return None
            entry.status = types_pb2.DOCUMENT_STATUS_QUEUED
            entry.error = ""
            entry.job_id = job_id
            record.status = types_pb2.DOCUMENT_STATUS_QUEUED
            return record

        await self.registry.mutate(request.tenant, request.doc_id, change)
        await self._enqueue(record, current.version, current.content_sha256, job_id, retry=True)
        return ingest_pb2.RetryIngestResponse(job_id=job_id, version=current.version)

    async def _requeue(self, record: types_pb2.DocumentRecord, entry: types_pb2.DocumentVersion, content: bytes):
        """The same bytes again for a version still queued: an upload cut off between the registry
        and the job queue (the caller saw an error, and retried) left the version without its job
        record or its job message. Queue it again: a job record only where there is none, the
        message under its own id (JetStream drops it if it was sent; a worker finishes a job once)."""
        job = await self.registry.get_job(entry.job_id)
        if job is not None and job.status != types_pb2.JOB_STATUS_QUEUED:
            return
        inline = content if len(content) <= self.settings.inline_job_bytes else b""
        await self._enqueue(
            record, entry.version, entry.content_sha256, entry.job_id, content=inline, record_job=job is None
        )

    async def _enqueue(
        self,
        record: types_pb2.DocumentRecord,
        version: int,
        digest: str,
        job_id: str,
        retry: bool = False,
        content: bytes = b"",
        record_job: bool = True,
        revision: int = 0,
    ) -> None:
        """Queue the version's job. `revision`: the document record's, when `record` is as written
        at that revision; the job carries both records so that its first delivery need not read them."""
        written = None
        if record_job:
            written = await self.registry.create_job(
                types_pb2.JobRecord(
                    job_id=job_id,
                    tenant=record.tenant,
                    doc_id=record.doc_id,
                    version=version,
                    status=types_pb2.JOB_STATUS_QUEUED,
                    created_unix_ms=now_ms(),
                )
            )
        job = events_pb2.IngestJob(
            job_id=job_id,
            tenant=record.tenant,
            doc_id=record.doc_id,
            version=version,
            content_sha256=digest,
            object_name=object_name(record.tenant, record.doc_id, digest),
            content_type=record.content_type,
            source_name=record.source_name,
            title=record.title,
            acl=list(record.acl),
            metadata=dict(record.metadata),
            content=content,
            size_bytes=held_bytes(version_entry(record, version)),
            sealed_password=version_entry(record, version).sealed_password,
        )
        job.records.CopyFrom(carried(written, (record, revision)))
        # The version is part of the id: A -> B -> A within the duplicate window is three real jobs.
        msg_id = f"{record.tenant}/{token(record.doc_id)}/{version}/{digest}" + (f"/retry/{job_id}" if retry else "")
        await natsio.publish(
            self.js, f"rag.jobs.{record.tenant}", job.SerializeToString(), msg_id=msg_id, span_name="rag.ingest.enqueue"
        )

    async def Rechunk(self, request, context):
        await self._check_chunking(request, context)
        if request.validate_only:
            return ingest_pb2.RechunkResponse()
        if request.generation < 1:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "name the index generation to re-chunk for")
        try:
            return ingest_pb2.RechunkResponse(documents_queued=await self.rechunker.queue(request.generation))
        except UnknownGeneration as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))

    async def _check_chunking(self, request, context) -> None:
        """Chunk sizes must fit the embedding model, whose limit ingest's tokenizer knows."""
        problem = chunking_problem(request.chunking, self.settings.max_tokens) if request.HasField("chunking") else ""
        if problem:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)

    async def GetIngestJob(self, request, context):
        await self._require(context, request.tenant)
        job = await self.registry.get_job(request.job_id) if request.job_id else None
        if job is None or job.tenant != request.tenant:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no job {request.job_id!r}")
        return ingest_pb2.GetIngestJobResponse(job=job)

    async def GetDocumentRecord(self, request, context):
        await self._require(context, request.tenant, request.doc_id)
        record, _ = await self.registry.get(request.tenant, request.doc_id)
        if record is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no document {request.doc_id!r}")
        return ingest_pb2.GetDocumentRecordResponse(document=public(record))

    async def ListDocumentRecords(self, request, context):
        await self._require(context, request.tenant)
        records = await self.registry.list(request.tenant)
        if not request.include_deleted:
            records = [r for r in records if r.status != types_pb2.DOCUMENT_STATUS_DELETED]
        return ingest_pb2.ListDocumentRecordsResponse(documents=[public(r) for r in records])

    async def RemoveDocument(self, request, context):
        await self._require(context, request.tenant, request.doc_id)

        def change(record):
            if record is None:
                return None
            record.status = types_pb2.DOCUMENT_STATUS_DELETED
            record.indexed_version = 0
            return record

        record = await self.registry.mutate(request.tenant, request.doc_id, change)
        if record is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no document {request.doc_id!r}")
        await publish_removal(self.js, record)
        await delete_raw(self.objects, record, [v.version for v in record.versions])
        return ingest_pb2.RemoveDocumentResponse(document=public(record))


def public(record: types_pb2.DocumentRecord) -> types_pb2.DocumentRecord:
    """A record as the API shows it: sealed passwords stay inside ingest."""
    shown = types_pb2.DocumentRecord()
    shown.CopyFrom(record)
    for entry in shown.versions:
        entry.ClearField("sealed_password")
    return shown


def main() -> None:
    run(lambda: IngestService(IngestSettings()))
