"""How an ingestion job moves its document and job records in the registry: every step checks the
job is still wanted (the version current, the job not finished by another delivery)."""

from rag.v1 import events_pb2, types_pb2
from services.ingest.registry import Registry, version_entry


class Superseded(Exception):
    """A newer version (or a delete) arrived while this job waited: its work is moot."""


class AlreadyFinished(Exception):
    """Another delivery of this job finished it (at-least-once delivery: a job can be redelivered
    while its first delivery is still being worked on)."""


async def advance(
    registry: Registry, job: events_pb2.IngestJob, status: int, chunk_count: int | None = None, seen=None, warnings=()
) -> tuple[types_pb2.DocumentRecord, int]:
    """Move the document's current version to `status` (with the parser's `warnings`); the record
    and its revision. Superseded if it is no longer current, AlreadyFinished if it is indexed
    already. `seen`: the record and revision this job last read or wrote."""
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
            if warnings:
                del entry.warnings[:]
                entry.warnings.extend(warnings)
        return record

    written = await registry.mutate_seen(job.tenant, job.doc_id, change, seen)
    if outcome:
        raise outcome[0]
    return written


async def report(registry: Registry, job_id: str, seen=None, **fields) -> tuple[types_pb2.JobRecord, int]:
    """Write the job's progress over `seen`, the record and revision this job last read or wrote;
    the new ones. AlreadyFinished when another delivery finished it."""
    written = await registry.update_job(job_id, seen, **fields)
    if written is None:
        raise AlreadyFinished()
    return written


async def set_warnings(registry: Registry, job: events_pb2.IngestJob, warnings: list[str], seen) -> tuple:
    """Record the parser's warnings on the job's version, unless they are there already."""

    def change(record):
        entry = version_entry(record, job.version) if record is not None else None
        if entry is None or list(entry.warnings) == warnings:
            return None
        del entry.warnings[:]
        entry.warnings.extend(warnings)
        return record

    return await registry.mutate_seen(job.tenant, job.doc_id, change, seen)


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
