"""Follows index lifecycle events so the registry says `indexed` (or `failed`) when retrieve is done."""

import asyncio
import logging
from collections import defaultdict

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.object_store import ObjectStore

from rag.v1 import events_pb2, types_pb2
from services.common import natsio
from services.ingest.job_records import mark_failed
from services.ingest.registry import Registry, document_seen, job_seen, version_entry
from services.ingest.storage import delete_raw

log = logging.getLogger(__name__)
DURABLE = "ingest-lifecycle"


def document_of(msg) -> tuple[str, str]:
    """(tenant, doc_id) of a lifecycle event."""
    kind = events_pb2.DocumentIndexed if msg.subject.startswith("rag.events.indexed.") else events_pb2.DocumentFailed
    try:
        event = kind.FromString(msg.data)
    except Exception:  # undecodable: its own group, where apply reports it
        return "", msg.subject
    return event.tenant, event.doc_id


class LifecycleFollower:
    def __init__(self, js: JetStreamContext, registry: Registry, objects: ObjectStore | None = None) -> None:
        self.js, self.registry, self.objects = js, registry, objects
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        config = ConsumerConfig(
            durable_name=DURABLE, ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL, ack_wait=30.0
        )
        self.sub = await self.js.pull_subscribe(
            "rag.events.>", durable=DURABLE, stream=natsio.STREAM_EVENTS.name, config=config
        )
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stopping.set()
        if self._task:
            await self._task

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                msgs = await self.sub.fetch(batch=64, timeout=1.0)
            except TimeoutError:
                continue
            except Exception:
                log.exception("lifecycle fetch failed")
                await asyncio.sleep(1.0)
                continue
            # Documents side by side, so their registry writes share round trips; each
            # document's events in order.
            by_document = defaultdict(list)
            for msg in msgs:
                by_document[document_of(msg)].append(msg)
            await asyncio.gather(*(self._settle(group) for group in by_document.values()))

    async def _settle(self, msgs) -> None:
        for msg in msgs:
            try:
                with natsio.consume_span("rag.ingest.lifecycle", msg):
                    await self.apply(msg.subject, msg.data)
                await msg.ack()
            except Exception:
                log.exception("lifecycle event failed; it will be redelivered")
                try:
                    await msg.nak(delay=1.0)
                except Exception:
                    await asyncio.sleep(0.5)

    async def apply(self, subject: str, data: bytes) -> None:
        if subject.startswith("rag.events.indexed."):
            event = events_pb2.DocumentIndexed.FromString(data)
            replaced: list[int] = []

            def change(record):
                if record is None:
                    return None
                replaced[:] = [
                    v.version for v in record.versions if record.indexed_version <= v.version < event.version
                ]
                entry = version_entry(record, event.version)
                if entry is not None:
                    entry.status = types_pb2.DOCUMENT_STATUS_INDEXED
                    entry.chunk_count = event.chunk_count
                if record.status != types_pb2.DOCUMENT_STATUS_DELETED and event.version >= record.indexed_version:
                    record.indexed_version = event.version
                    if record.current_version == event.version:
                        record.status = types_pb2.DOCUMENT_STATUS_INDEXED
                return record

            # Over the records as the job left them, carried here through retrieve: read only if changed since.
            seen = document_seen(event.records)
            record, _ = await self.registry.mutate_seen(event.tenant, event.doc_id, change, seen)
            await self.registry.update_job(event.job_id, job_seen(event.records), status=types_pb2.JOB_STATUS_DONE)
            if record is not None and replaced and self.objects is not None:
                # Versions this one replaced keep no raw bytes (a version sharing its bytes keeps them).
                await delete_raw(self.objects, record, replaced)
        elif subject.startswith("rag.events.failed."):
            event = events_pb2.DocumentFailed.FromString(data)
            record, _ = await self.registry.get(event.tenant, event.doc_id)
            job = await self.registry.get_job(event.job_id)
            version = job.version if job else (record.current_version if record else 0)
            await mark_failed(self.registry, event.tenant, event.doc_id, version, event.job_id, event.error)
