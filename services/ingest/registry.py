"""The document registry and job records in NATS KV, updated by compare-and-set on revision."""

import time
from collections.abc import Callable

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from rag.v1 import events_pb2, types_pb2
from services.common import natsio
from services.common.ids import doc_key

# A document record larger than this (many versions) is read again rather than carried with the work.
CARRIED_RECORD_BYTES = 16 * 1024

FINISHED_JOBS = frozenset({types_pb2.JOB_STATUS_DONE, types_pb2.JOB_STATUS_FAILED, types_pb2.JOB_STATUS_DEDUPLICATED})


def now_ms() -> int:
    return int(time.time() * 1000)


class Registry:
    def __init__(self, js: JetStreamContext, docs: KeyValue, jobs: KeyValue) -> None:
        self.js, self.docs, self.jobs = js, docs, jobs

    async def get(self, tenant: str, doc_id: str) -> tuple[types_pb2.DocumentRecord | None, int]:
        try:
            entry = await self.docs.get(doc_key(tenant, doc_id))
        except KeyNotFoundError:
            return None, 0
        if not entry.value:
            return None, entry.revision
        return types_pb2.DocumentRecord.FromString(entry.value), entry.revision

    async def mutate(
        self,
        tenant: str,
        doc_id: str,
        change: Callable[[types_pb2.DocumentRecord | None], types_pb2.DocumentRecord | None],
    ) -> types_pb2.DocumentRecord | None:
        """Apply `change` to the current record until the compare-and-set wins.
        `change` returns the new record, or None to leave it as it is."""
        return (await self.mutate_seen(tenant, doc_id, change))[0]

    async def mutate_seen(
        self,
        tenant: str,
        doc_id: str,
        change: Callable[[types_pb2.DocumentRecord | None], types_pb2.DocumentRecord | None],
        seen: tuple[types_pb2.DocumentRecord | None, int] | None = None,
    ) -> tuple[types_pb2.DocumentRecord | None, int]:
        """`mutate`, returning the record and its revision. `seen`: a record and revision this
        caller read or wrote before; the first compare-and-set is tried on it without reading
        again (one round trip instead of two), and fails harmlessly if somebody wrote since."""
        while True:
            record, revision = seen if seen is not None else await self.get(tenant, doc_id)
            seen = None
            copy = types_pb2.DocumentRecord()
            if record is not None:
                copy.CopyFrom(record)
            updated = change(copy if record is not None else None)
            if updated is None:
                return record, revision
            updated.updated_unix_ms = now_ms()
            try:
                key = doc_key(tenant, doc_id)
                if revision:
                    revision = await self.docs.update(key, updated.SerializeToString(), last=revision)
                else:
                    revision = await self.docs.create(key, updated.SerializeToString())
                return updated, revision
            except KeyWrongLastSequenceError:
                continue

    async def list(self, tenant: str) -> list[types_pb2.DocumentRecord]:
        """Every record of a tenant (deleted ones are tombstones in their record, still listed)."""
        values = await natsio.kv_values(self.js, natsio.KV_DOCS, f"{tenant}.>")
        return sorted((types_pb2.DocumentRecord.FromString(v) for v in values), key=lambda r: r.doc_id)

    async def get_job(self, job_id: str) -> types_pb2.JobRecord | None:
        return (await self.get_job_seen(job_id))[0]

    async def get_job_seen(self, job_id: str) -> tuple[types_pb2.JobRecord | None, int]:
        """A job record and its revision (0 when there is none)."""
        try:
            entry = await self.jobs.get(job_id)
        except KeyNotFoundError:
            return None, 0
        return (types_pb2.JobRecord.FromString(entry.value) if entry.value else None), entry.revision

    async def create_job(self, job: types_pb2.JobRecord) -> tuple[types_pb2.JobRecord, int]:
        job.updated_unix_ms = now_ms()
        return job, await self.jobs.put(job.job_id, job.SerializeToString())

    async def update_job(
        self, job_id: str, seen: tuple[types_pb2.JobRecord | None, int] | None = None, **fields
    ) -> tuple[types_pb2.JobRecord, int] | None:
        """Set fields on a job record by compare-and-set; the record and its new revision. A
        finished job stays finished: a late write from a redelivered copy of the job must not turn
        `done` back into `indexing`. None when there is no such job or it has finished. `seen`: as
        for `mutate_seen`, the record and revision this caller last read or wrote."""
        while True:
            job, revision = seen if seen is not None and seen[0] is not None else await self.get_job_seen(job_id)
            seen = None
            if job is None or job.status in FINISHED_JOBS:
                return None
            updated = types_pb2.JobRecord()
            updated.CopyFrom(job)
            for name, value in fields.items():
                setattr(updated, name, value)
            updated.updated_unix_ms = now_ms()
            try:
                return updated, await self.jobs.update(job_id, updated.SerializeToString(), last=revision)
            except KeyWrongLastSequenceError:
                continue


def version_entry(record: types_pb2.DocumentRecord, version: int) -> types_pb2.DocumentVersion | None:
    for entry in record.versions:
        if entry.version == version:
            return entry
    return None


def carried(job: tuple | None, document: tuple | None) -> events_pb2.IngestRecords:
    """Records and their revisions to carry with the work (see IngestRecords); None or a revision
    of 0 leaves one out, and so does a document record too large to carry."""
    records = events_pb2.IngestRecords()
    if job is not None and job[0] is not None and job[1]:
        records.job.CopyFrom(job[0])
        records.job_revision = job[1]
    if document is not None and document[0] is not None and document[1]:
        if document[0].ByteSize() <= CARRIED_RECORD_BYTES:
            records.document.CopyFrom(document[0])
            records.document_revision = document[1]
    return records


def job_seen(records: events_pb2.IngestRecords) -> tuple[types_pb2.JobRecord, int] | None:
    """The carried job record and revision, for `Registry.update_job`; None when not carried."""
    return (records.job, records.job_revision) if records.job_revision else None


def document_seen(records: events_pb2.IngestRecords) -> tuple[types_pb2.DocumentRecord, int] | None:
    """The carried document record and revision, for `Registry.mutate_seen`; None when not carried."""
    return (records.document, records.document_revision) if records.document_revision else None
