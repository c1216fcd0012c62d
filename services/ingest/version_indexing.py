"""Indexing one version of a document once it is chunked: embed its chunks in each chunking, publish
them as index events, and move its document and job records along the way."""

import logging
import time

from opentelemetry import trace

from rag.v1 import events_pb2, types_pb2
from services.common.chunking import label
from services.common.usage import UsageStore
from services.ingest.chunker import ChunkDraft
from services.ingest.index_writer import IndexWriter, same_model
from services.ingest.job_records import advance, report, set_warnings
from services.ingest.registry import Registry, carried

log = logging.getLogger(__name__)


class VersionIndexer:
    def __init__(
        self, registry: Registry, writer: IndexWriter, embed_batch_size: int, usage: UsageStore | None = None
    ) -> None:
        self.registry, self.writer, self.usage = registry, writer, usage
        self.embed_batch_size = embed_batch_size

    async def index(
        self,
        job: events_pb2.IngestJob,
        seen: dict,
        chunkings: list[types_pb2.Chunking],
        title: str,
        warnings: list[str],
        chunk_sets: list[list[ChunkDraft]],
    ) -> None:
        """Index the version's `chunk_sets`, one per chunking. `seen`: the job and document records
        with the revisions this job last read or wrote, kept up to date as it writes them."""
        if all(len(drafts) <= self.embed_batch_size for drafts in chunk_sets):
            await self._whole(job, seen, chunkings, title, warnings, chunk_sets)
        else:
            await self._batched(job, seen, chunkings, title, warnings, chunk_sets)

    def _bill(self, tenant: str, tokens: int) -> None:
        if self.usage is not None:  # billed as embedded: a job cut off later has still spent it
            self.usage.add(tenant, time.time(), embedding_tokens=tokens)

    async def _whole(self, job, seen, chunkings, title, warnings, chunk_sets) -> None:
        """A document that is one batch in each chunking: nothing to resume, so no progress is
        written before it is done. The document record moves to `indexing` first (a delete or a
        newer version stops the job here), then the job record with what it spent, then one event
        per chunking upserts and activates the version."""
        chunk_count = len(chunk_sets[0])  # in the active generation's chunking
        seen["doc"] = await advance(
            self.registry,
            job,
            types_pb2.DOCUMENT_STATUS_INDEXING,
            chunk_count=chunk_count,
            seen=seen["doc"],
            warnings=warnings,
        )
        record = seen["doc"][0]
        prepared, tokens, model_id = [], 0, ""
        for chunking, drafts in zip(chunkings, chunk_sets, strict=True):
            pieces, response = await self.writer.whole(job, record, title, chunking, drafts)
            model_id = same_model(model_id, response.model_id)
            tokens += response.tokens
            self._bill(job.tenant, response.tokens)
            prepared.append((chunking, pieces))
        trace.get_current_span().set_attribute("rag.tokens", tokens)
        total = sum(len(drafts) for drafts in chunk_sets)
        seen["job"] = await report(
            self.registry,
            job.job_id,
            seen["job"],
            status=types_pb2.JOB_STATUS_INDEXING,
            chunks_total=total,
            chunks_embedded=total,
            embedding_tokens=tokens,
            chunkings=",".join(label(c) for c in chunkings),
        )
        records = carried(seen["job"], seen["doc"])
        for chunking, pieces in prepared:
            pieces[-1].upserts.activate.records.CopyFrom(records)
            await self.writer.publish_whole(job, pieces, self.writer.ids(job, chunking))

    async def _batched(self, job, seen, chunkings, parsed_title, warnings, chunk_sets) -> None:
        """A document of several batches: each batch's upserts published as it is embedded, the
        progress written after each, so a redelivered job resumes after the last one published."""
        progress = seen["job"][0]
        seen["doc"] = await advance(self.registry, job, types_pb2.DOCUMENT_STATUS_PROCESSING, seen=seen["doc"])
        record = seen["doc"][0]
        total = sum(len(drafts) for drafts in chunk_sets)
        plan = ",".join(label(c) for c in chunkings)
        # Resume after the last batch whose index event was published, if the chunkings are the same.
        same_plan = progress.chunks_total == total and progress.chunkings == plan
        done = progress.chunks_embedded if same_plan else 0
        if done:
            log.info("resuming job", extra={"fields": {"job_id": job.job_id, "chunks_done": done}})
        seen["job"] = await report(
            self.registry,
            job.job_id,
            seen["job"],
            status=types_pb2.JOB_STATUS_RUNNING,
            chunks_total=total,
            chunks_embedded=done,
            chunkings=plan,
        )
        if warnings:
            seen["doc"] = await set_warnings(self.registry, job, warnings, seen["doc"])
        title = parsed_title  # the owner's title, when there is one, travels in the events' fields
        spent = {"tokens": progress.embedding_tokens if done else 0}  # the batches of earlier deliveries
        offset, model_id = 0, ""
        for chunking, drafts in zip(chunkings, chunk_sets, strict=True):

            async def on_batch(embedded: int, tokens: int, offset: int = offset) -> None:
                spent["tokens"] += tokens
                self._bill(job.tenant, tokens)
                if offset + embedded < total:  # the last batch's progress goes out with INDEXING below
                    seen["job"] = await report(
                        self.registry,
                        job.job_id,
                        seen["job"],
                        chunks_embedded=offset + embedded,
                        embedding_tokens=spent["tokens"],
                    )

            skip = min(len(drafts), max(0, done - offset))
            ids = self.writer.ids(job, chunking)
            model_id = await self.writer.write(job, record, title, chunking, drafts, skip, ids, on_batch) or model_id
            offset += len(drafts)
        chunk_count = len(chunk_sets[0])  # in the active generation's chunking
        seen["doc"] = await advance(
            self.registry, job, types_pb2.DOCUMENT_STATUS_INDEXING, chunk_count=chunk_count, seen=seen["doc"]
        )
        trace.get_current_span().set_attribute("rag.tokens", spent["tokens"])
        # Before the activations go out: retrieve may mark the job done right after one.
        seen["job"] = await report(
            self.registry,
            job.job_id,
            seen["job"],
            status=types_pb2.JOB_STATUS_INDEXING,
            chunks_embedded=total,
            embedding_tokens=spent["tokens"],
        )
        records = carried(seen["job"], seen["doc"])
        for chunking, drafts in zip(chunkings, chunk_sets, strict=True):
            ids = self.writer.ids(job, chunking)
            await self.writer.activate(job, chunking, len(drafts), model_id, ids, records=records)
