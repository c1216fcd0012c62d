"""The document registry and job records in NATS KV, updated by compare-and-set on revision."""

import time
from collections.abc import Callable

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from rag.v1 import types_pb2
from services.common import natsio
from services.common.ids import doc_key

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
        while True:
            record, revision = await self.get(tenant, doc_id)
            copy = types_pb2.DocumentRecord()
            if record is not None:
                copy.CopyFrom(record)
            updated = change(copy if record is not None else None)
            if updated is None:
                return record
            updated.updated_unix_ms = now_ms()
            try:
                key = doc_key(tenant, doc_id)
                if revision:
                    await self.docs.update(key, updated.SerializeToString(), last=revision)
                else:
                    await self.docs.create(key, updated.SerializeToString())
                return updated
            except KeyWrongLastSequenceError:
                continue

    async def list(self, tenant: str) -> list[types_pb2.DocumentRecord]:
        """Every record of a tenant (deleted ones are tombstones in their record, still listed)."""
        values = await natsio.kv_values(self.js, natsio.KV_DOCS, f"{tenant}.>")
        return sorted((types_pb2.DocumentRecord.FromString(v) for v in values), key=lambda r: r.doc_id)

    async def get_job(self, job_id: str) -> types_pb2.JobRecord | None:
        try:
            entry = await self.jobs.get(job_id)
        except KeyNotFoundError:
            return None
        return types_pb2.JobRecord.FromString(entry.value) if entry.value else None

    async def create_job(self, job: types_pb2.JobRecord) -> None:
        job.updated_unix_ms = now_ms()
        await self.jobs.put(job.job_id, job.SerializeToString())

    async def update_job(self, job_id: str, **fields) -> bool:
        """Set fields on a job record by compare-and-set. A finished job stays finished: a late
        write from a redelivered copy of the job must not turn `done` back into `indexing`.
        False when there is no such job or it has finished."""
        while True:
            try:
                entry = await self.jobs.get(job_id)
            except KeyNotFoundError:
                return False
            job = types_pb2.JobRecord.FromString(entry.value)
            if job.status in FINISHED_JOBS:
                return False
            for name, value in fields.items():
                setattr(job, name, value)
            job.updated_unix_ms = now_ms()
            try:
                await self.jobs.update(job_id, job.SerializeToString(), last=entry.revision)
                return True
            except KeyWrongLastSequenceError:
                continue


def version_entry(record: types_pb2.DocumentRecord, version: int) -> types_pb2.DocumentVersion | None:
    for entry in record.versions:
        if entry.version == version:
            return entry
    return None
