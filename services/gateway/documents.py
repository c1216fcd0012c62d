"""Documents through the gateway: uploads streamed on to ingest piece by piece (never gathered
here), and the registry's records, jobs, deletes and retries, each behind the policy's ACL check."""

import asyncio
import time

import grpc

from rag.v1 import gateway_pb2, ingest_pb2, ingest_pb2_grpc
from services.common.ids import valid_doc_id
from services.common.refusal import Refused
from services.common.usage import UsageStore
from services.gateway import policy
from services.gateway.downstream import Downstream
from services.gateway.metering import Meter

HEADER_LIMITS = {"title": 1024, "source_name": 1024, "content_type": 256}
MAX_METADATA, MAX_METADATA_KEY, MAX_METADATA_VALUE = 64, 128, 2048


def header_problem(header: gateway_pb2.DocumentHeader) -> str:
    """What is wrong with a document header, or "" (every field has a size limit)."""
    if not valid_doc_id(header.doc_id):
        return "doc_id must be 1-512 printable characters"
    for name, limit in HEADER_LIMITS.items():
        if len(getattr(header, name)) > limit:
            return f"{name} has {len(getattr(header, name))} characters; the limit is {limit}"
    problem = policy.principals_problem(header.acl, "acl")
    if problem:
        return problem
    if len(header.metadata) > MAX_METADATA:
        return f"metadata has {len(header.metadata)} entries; the limit is {MAX_METADATA}"
    for key, value in header.metadata.items():
        if not key or len(key) > MAX_METADATA_KEY:
            return f"metadata key {key[:40]!r} must be 1-{MAX_METADATA_KEY} characters"
        if len(value) > MAX_METADATA_VALUE:
            return f"metadata value of {key!r} has {len(value)} characters; the limit is {MAX_METADATA_VALUE}"
    return ""


def invalid(message: str) -> Refused:
    return Refused(grpc.StatusCode.INVALID_ARGUMENT, message)


class Documents:
    def __init__(
        self,
        ingest: ingest_pb2_grpc.IngestServiceStub,
        downstream: Downstream,
        meter: Meter,
        usage: UsageStore,
        max_document_bytes: int,
    ) -> None:
        self.ingest, self.downstream, self.meter, self.usage = ingest, downstream, meter, usage
        self.limit = max_document_bytes

    async def _record(self, context, tenant: str, doc_id: str):
        request = ingest_pb2.GetDocumentRecordRequest(tenant=tenant, doc_id=doc_id)
        reply = await self.downstream.found(context, self.ingest.GetDocumentRecord, request)
        return reply.document if reply is not None else None

    async def _readable(self, context, caller, doc_id: str):
        if not valid_doc_id(doc_id):
            raise invalid("doc_id must be 1-512 printable characters")
        return policy.readable(caller, await self._record(context, caller.tenant, doc_id), doc_id)

    async def upload(self, caller, request_iterator, context) -> gateway_pb2.IngestDocumentResponse:
        await self.meter.ingest(caller.tenant)
        async with self.meter.upload(caller.tenant):
            messages = aiter(request_iterator)
            first = await anext(messages, None)
            if first is None or not first.HasField("header"):
                raise invalid("no header: the first message names the document")
            header = first.header
            problem = header_problem(header)
            if problem:
                raise invalid(problem)
            # Whether the caller may replace a document of that id is checked by ingest, on the
            # record its upload writes over.
            response = await self._stream(caller, header, messages, context)
        if not response.deduplicated:
            self.usage.add(caller.tenant, time.time(), documents=1)
        return gateway_pb2.IngestDocumentResponse(
            job_id=response.job_id,
            doc_id=response.doc_id,
            version=response.version,
            deduplicated=response.deduplicated,
            content_sha256=response.content_sha256,
            metadata_updated=response.metadata_updated,
        )

    async def _stream(self, caller, header, messages, context) -> ingest_pb2.SubmitResponse:
        """Pass each piece on as it comes: an upload holds one piece here at a time. Ingest submits
        only once the end message confirms every byte arrived; a bad stream is cancelled before it."""
        problem: list[Refused] = []

        async def parts():
            yield ingest_pb2.SubmitStreamRequest(
                header=ingest_pb2.SubmitRequest(
                    tenant=caller.tenant,
                    doc_id=header.doc_id,
                    title=header.title,
                    source_name=header.source_name,
                    content_type=header.content_type,
                    acl=list(header.acl),
                    metadata=dict(header.metadata),
                    password=header.password,
                    uploader=ingest_pb2.UploaderAccess(principals=list(caller.principals)),
                )
            )
            size = 0
            async for message in messages:
                if message.HasField("header"):
                    problem.append(invalid("the header was sent twice"))
                else:
                    size += len(message.data)
                    if size > self.limit:
                        problem.append(
                            Refused(
                                grpc.StatusCode.RESOURCE_EXHAUSTED,
                                f"the document is larger than the limit of {self.limit} bytes",
                            )
                        )
                if problem:
                    call.cancel()
                    return
                yield ingest_pb2.SubmitStreamRequest(data=message.data)
            yield ingest_pb2.SubmitStreamRequest(end=ingest_pb2.SubmitStreamEnd(size_bytes=size))

        call = self.ingest.SubmitStream(parts(), timeout=self.downstream.timeout(context))
        try:
            return (await call).response
        except (grpc.aio.AioRpcError, asyncio.CancelledError) as exc:
            if problem:
                raise problem[0] from None
            if isinstance(exc, grpc.aio.AioRpcError):
                raise Refused(exc.code(), exc.details()) from None
            raise

    async def get_job(self, caller, request, context) -> gateway_pb2.GetJobResponse:
        asked = ingest_pb2.GetIngestJobRequest(tenant=caller.tenant, job_id=request.job_id)
        job = (await self.downstream.call(context, self.ingest.GetIngestJob, asked)).job
        record = await self._record(context, caller.tenant, job.doc_id) if policy.job_needs_document(caller) else None
        policy.job_readable(caller, job, record)
        return gateway_pb2.GetJobResponse(job=job)

    async def get(self, caller, request, context) -> gateway_pb2.GetDocumentResponse:
        return gateway_pb2.GetDocumentResponse(document=await self._readable(context, caller, request.doc_id))

    async def list(self, caller, request, context) -> gateway_pb2.ListDocumentsResponse:
        asked = ingest_pb2.ListDocumentRecordsRequest(tenant=caller.tenant, include_deleted=request.include_deleted)
        records = (await self.downstream.call(context, self.ingest.ListDocumentRecords, asked)).documents
        return gateway_pb2.ListDocumentsResponse(documents=policy.visible(caller, records))

    async def delete(self, caller, request, context) -> gateway_pb2.DeleteDocumentResponse:
        await self._readable(context, caller, request.doc_id)
        asked = ingest_pb2.RemoveDocumentRequest(tenant=caller.tenant, doc_id=request.doc_id)
        return gateway_pb2.DeleteDocumentResponse(
            document=(await self.downstream.call(context, self.ingest.RemoveDocument, asked)).document
        )

    async def retry(self, caller, request, context) -> gateway_pb2.RetryDocumentResponse:
        await self._readable(context, caller, request.doc_id)
        asked = ingest_pb2.RetryIngestRequest(tenant=caller.tenant, doc_id=request.doc_id)
        response = await self.downstream.call(context, self.ingest.RetryIngest, asked)
        return gateway_pb2.RetryDocumentResponse(job_id=response.job_id, version=response.version)
