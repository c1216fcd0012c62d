"""Re-chunk rebuilds, driven by the durable record of the generation rather than by whoever asked.

Retrieve records a re-chunk generation in the index pointer (NATS KV) first; its documents must
then be queued once. The gateway asks ingest at once (RebuildIndex), and the Rechunker also looks,
every few seconds, for a re-chunk generation nobody queued (a gateway killed between the two
steps, ingest unreachable at the time) and queues it. Queueing is idempotent: each job message has
a deterministic id (JetStream drops a repeat within its duplicate window) and a re-chunk job run
twice writes the same chunks; a marker per generation in the jobs bucket records it as done.
"""

import asyncio
import contextlib
import logging
import uuid

from nats.js.errors import KeyNotFoundError

from rag.v1 import events_pb2, ingest_pb2, retrieve_pb2, types_pb2
from services.common import natsio
from services.common.ids import token
from services.ingest.registry import version_entry
from services.ingest.storage import object_name

log = logging.getLogger(__name__)
PUBLISH_AT_ONCE = 256  # acknowledged publishes in flight together


class UnknownGeneration(LookupError):
    pass


def held_bytes(entry: types_pb2.DocumentVersion) -> int:
    """What a worker holds of its in-flight budget for a version: a zipped format's expanded size."""
    return max(entry.size_bytes, entry.inflated_bytes)


def rechunk_versions(record: types_pb2.DocumentRecord) -> list[int]:
    """What a new generation needs of a document: the version searches show, and the current one
    when it is still on its way (its job may have started before the generation existed)."""
    if record.status == types_pb2.DOCUMENT_STATUS_DELETED:
        return []
    versions = [record.indexed_version] if record.indexed_version else []
    current = version_entry(record, record.current_version)
    if (
        current is not None
        and record.current_version not in versions
        and current.status != types_pb2.DOCUMENT_STATUS_FAILED
    ):
        versions.append(record.current_version)
    return versions


def unqueued(pointer: retrieve_pb2.IndexPointer, queued: set[int]) -> list[retrieve_pb2.GenerationRecord]:
    """Re-chunk generations whose documents are not known to be queued. One that is active or was
    active before is full already (a promotion needs every document), whatever its marker says."""
    served = {pointer.active, pointer.previous}
    return [r for r in pointer.generations if r.rechunk and r.number not in served and r.number not in queued]


def marker_key(generation: int) -> str:
    return f"rechunk.queued.{generation}"


def rechunk_job(record: types_pb2.DocumentRecord, version: int, generation: retrieve_pb2.GenerationRecord):
    entry = version_entry(record, version)
    job = events_pb2.IngestJob(
        job_id=f"rechunk-{generation.number}-{uuid.uuid4().hex}",
        tenant=record.tenant,
        doc_id=record.doc_id,
        version=version,
        content_sha256=entry.content_sha256,
        object_name=object_name(record.tenant, record.doc_id, entry.content_sha256),
        content_type=record.content_type,
        source_name=record.source_name,
        title=record.title,
        rechunk_generation=generation.number,
        size_bytes=held_bytes(entry),
        sealed_password=entry.sealed_password,
    )
    if generation.HasField("chunking"):
        job.chunking.CopyFrom(generation.chunking)
    return job


class Rechunker:
    def __init__(self, js, jobs_kv, index_kv, poll_seconds: float) -> None:
        self.js, self.jobs_kv, self.index_kv, self.poll_seconds = js, jobs_kv, index_kv, poll_seconds
        self.queued: set[int] = set()  # generations whose marker this process has seen
        self._lock = asyncio.Lock()  # one queueing at a time in this process
        self._task: asyncio.Task | None = None

    async def pointer(self) -> retrieve_pb2.IndexPointer:
        try:
            return retrieve_pb2.IndexPointer.FromString((await self.index_kv.get(natsio.INDEX_POINTER_KEY)).value)
        except KeyNotFoundError:
            return retrieve_pb2.IndexPointer()

    async def _marker(self, number: int) -> ingest_pb2.RechunkResponse | None:
        try:
            entry = await self.jobs_kv.get(marker_key(number))
        except KeyNotFoundError:
            return None
        self.queued.add(number)
        return ingest_pb2.RechunkResponse.FromString(entry.value)

    async def queue(self, number: int) -> int:
        """Queue every document generation `number` needs, once; the count queued."""
        async with self._lock:
            done = await self._marker(number)
            if done is not None:
                return done.documents_queued
            generation = next((r for r in (await self.pointer()).generations if r.number == number), None)
            if generation is None or not generation.rechunk:
                raise UnknownGeneration(f"there is no re-chunk index generation {number}")
            records = [types_pb2.DocumentRecord.FromString(v) for v in await natsio.kv_values(self.js, natsio.KV_DOCS)]
            wanted = [(record, version) for record in records for version in rechunk_versions(record)]
            for start in range(0, len(wanted), PUBLISH_AT_ONCE):
                batch = wanted[start : start + PUBLISH_AT_ONCE]
                await asyncio.gather(*(self._publish(record, version, generation) for record, version in batch))
            done = ingest_pb2.RechunkResponse(documents_queued=len(wanted))
            await self.jobs_kv.put(marker_key(number), done.SerializeToString())
            self.queued.add(number)
            log.info(
                "documents queued for a re-chunk generation",
                extra={"fields": {"generation": number, "documents": len(wanted)}},
            )
            return len(wanted)

    async def _publish(self, record, version: int, generation: retrieve_pb2.GenerationRecord) -> None:
        job = rechunk_job(record, version, generation)
        # Fair scheduling puts it beside the tenant's own uploads, not ahead of other tenants.
        await natsio.publish(
            self.js,
            f"rag.jobs.{record.tenant}",
            job.SerializeToString(),
            msg_id=f"rechunk/{generation.number}/{record.tenant}/{token(record.doc_id)}/{version}",
            span_name="rag.ingest.enqueue",
        )

    async def catch_up(self) -> list[int]:
        """Queue every re-chunk generation nobody has queued; the numbers queued now."""
        pointer = await self.pointer()
        found = []
        for generation in unqueued(pointer, self.queued):
            if await self._marker(generation.number) is None:
                await self.queue(generation.number)
                found.append(generation.number)
        return found

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self.catch_up()
            except asyncio.CancelledError:
                raise
            except Exception:  # NATS away for a moment: the next round tries again
                log.warning("re-chunk generations could not be checked", exc_info=True)
            await asyncio.sleep(self.poll_seconds)
