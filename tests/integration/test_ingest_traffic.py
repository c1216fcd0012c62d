"""The NATS messages one small document costs ingest, counted exactly by each role's own client
against a real nats-server and the real embed service: the upload, the worker's job, and the
lifecycle follower's `indexed`. Each role has its own connection, so nothing else is counted."""

import pytest
from helpers import embed_service

from rag.v1 import embed_pb2_grpc, events_pb2, ingest_pb2, types_pb2
from services.common import natsio
from services.common.config import IngestSettings
from services.ingest.events import LifecycleFollower
from services.ingest.registry import Registry
from services.ingest.scheduler import FairJobQueue
from services.ingest.sealing import Sealer
from services.ingest.server import IngestService
from services.ingest.worker import IngestWorker

TENANT = "t1"
ABSTRACT = b"The Kessler Glacier is a glacier on the east coast of Greenland, surveyed in 1932 by a Danish party."


@pytest.fixture(scope="module")
async def embed_addr():
    async with embed_service() as addr:
        yield addr


class Role:
    """One role's connection and what it has sent and received since the last `take`."""

    def __init__(self, nc) -> None:
        self.nc, self.js = nc, nc.jetstream()
        self._mark = (0, 0)

    async def registry(self) -> Registry:
        return Registry(self.js, await self.js.key_value(natsio.KV_DOCS), await self.js.key_value(natsio.KV_JOBS))

    async def take(self) -> tuple[int, int]:
        await self.nc.flush()  # an ack is a publish without reply: out once flushed (a PING is no message)
        now = (self.nc.stats["out_msgs"], self.nc.stats["in_msgs"])
        spent = (now[0] - self._mark[0], now[1] - self._mark[1])
        self._mark = now
        return spent


@pytest.fixture
async def roles(nats_server, embed_addr, count_tokens, tmp_path):
    import grpc

    conns = [await natsio.connect(nats_server.url, name) for name in ("upload", "worker", "follower", "reader")]
    await natsio.ensure_all(conns[0].jetstream())
    upload, work, follow, reader = (Role(nc) for nc in conns)
    settings = IngestSettings(data_dir=str(tmp_path))
    service = IngestService(settings)
    service.js, service.registry = upload.js, await upload.registry()
    service.objects = await upload.js.object_store(natsio.OBJECTS_RAW)
    service.sealer = Sealer(b"k" * 32)
    async with grpc.aio.insecure_channel(embed_addr) as channel:
        worker = IngestWorker(
            work.js,
            await work.registry(),
            await work.js.object_store(natsio.OBJECTS_RAW),
            embed_pb2_grpc.EmbedServiceStub(channel),
            settings,
            count_tokens,
            index_kv=await work.js.key_value(natsio.KV_INDEX),
        )
        queue = FairJobQueue(work.js, settings.job_ack_wait_seconds, settings.max_deliveries)
        follower = LifecycleFollower(
            follow.js, await follow.registry(), await follow.js.object_store(natsio.OBJECTS_RAW)
        )
        index = await reader.js.pull_subscribe(f"rag.index.{TENANT}", durable="count", stream=natsio.STREAM_INDEX.name)
        yield {"upload": upload, "work": work, "follow": follow}, service, queue, worker, follower, index
        worker.parser.close()
    for nc in conns:
        await natsio.close(nc)


async def ingest_one(roles, doc_id: str) -> dict[str, tuple[int, int]]:
    """Upload, work and settle one document; messages (out, in) of each role and the index events."""
    counts, service, queue, worker, follower, index = roles
    for role in counts.values():
        await role.take()
    request = ingest_pb2.SubmitRequest(tenant=TENANT, doc_id=doc_id, content=ABSTRACT, content_type="text/plain")
    await service.Submit(request, None)
    spent = {"upload": await counts["upload"].take()}

    await queue.refresh()  # which tenants have jobs: a poll on its own clock, not the document's cost
    await counts["work"].take()
    msg = await queue.next()
    await worker.handle(msg)
    spent["work"] = await counts["work"].take()

    events = [events_pb2.IndexBatch.FromString(m.data) for m in await index.fetch(10, timeout=2)]
    activation = next(e for e in events if e.WhichOneof("op") == "activate" or e.upserts.HasField("activate"))
    active = activation.activate if activation.HasField("activate") else activation.upserts.activate
    indexed = events_pb2.DocumentIndexed(  # as retrieve announces the activation once it is applied
        tenant=TENANT,
        doc_id=doc_id,
        version=active.version,
        chunk_count=active.chunk_count,
        job_id=activation.job_id,
        records=active.records,
    )
    await counts["follow"].take()
    await follower.apply(f"rag.events.indexed.{TENANT}", indexed.SerializeToString())
    spent["follow"] = await counts["follow"].take()
    spent["index events"] = len(events)
    record, _ = await service.registry.get(TENANT, doc_id)
    assert (record.status, record.indexed_version) == (types_pb2.DOCUMENT_STATUS_INDEXED, 1)
    assert (await service.registry.get_job(record.versions[0].job_id)).status == types_pb2.JOB_STATUS_DONE
    return spent


async def test_one_small_document_costs_ingest_an_exact_number_of_messages(roles):
    await ingest_one(roles, "warm-up.txt")  # consumers and buckets bound on first use
    spent = await ingest_one(roles, "kessler.txt")
    # Messages (sent, received). The upload: the record read, the raw bytes stored (object info,
    # chunk, meta), the record written over the revision read, the job record, the job. The worker:
    # the fetch, the index pointer, the record `indexing` and the job record over the revisions its
    # job carried, one event that upserts and activates the version, the ack. The follower: the
    # record `indexed` and the job `done` over the revisions the activation carried.
    assert spent == {"upload": (7, 7), "work": (6, 5), "follow": (2, 2), "index events": 1}


async def test_records_changed_on_the_way_are_read_again_and_the_last_change_wins(roles):
    """A title changed after the upload (the carried record is stale when the worker writes) and an
    ACL changed after the worker (stale when the follower writes): each compare-and-set fails once,
    the record is read again, and the newer fields stay."""
    counts, service, queue, worker, follower, index = roles
    await ingest_one(roles, "warm-up.txt")
    submit = ingest_pb2.SubmitRequest(tenant=TENANT, doc_id="kessler.txt", content=ABSTRACT, content_type="text/plain")
    await service.Submit(submit, None)
    submit.title = "Kessler Glacier"
    assert (await service.Submit(submit, None)).metadata_updated
    for role in counts.values():
        await role.take()
    await queue.refresh()
    await counts["work"].take()
    await worker.handle(await queue.next())
    # Two more than above: the compare-and-set on the carried record, refused, and the read after it.
    assert await counts["work"].take() == (8, 7)
    events = [events_pb2.IndexBatch.FromString(m.data) for m in await index.fetch(10, timeout=2)]
    assert [e.WhichOneof("op") for e in events] == ["update_metadata", "upserts"]
    combined = events[1].upserts
    assert (combined.fields.title, combined.fields.revision) == ("Kessler Glacier", 2)

    submit.acl[:] = ["geology"]
    assert (await service.Submit(submit, None)).metadata_updated
    await counts["follow"].take()
    indexed = events_pb2.DocumentIndexed(
        tenant=TENANT,
        doc_id="kessler.txt",
        version=1,
        chunk_count=combined.activate.chunk_count,
        job_id=events[1].job_id,
        records=combined.activate.records,
    )
    await follower.apply(f"rag.events.indexed.{TENANT}", indexed.SerializeToString())
    assert await counts["follow"].take() == (4, 4)  # a refused compare-and-set, a read, a write; the job's
    record, _ = await service.registry.get(TENANT, "kessler.txt")
    assert (record.title, list(record.acl), record.metadata_revision) == ("Kessler Glacier", ["geology"], 3)
    assert (record.status, record.indexed_version, record.versions[0].chunk_count) == (
        types_pb2.DOCUMENT_STATUS_INDEXED,
        1,
        combined.activate.chunk_count,
    )
    job = await service.registry.get_job(events[1].job_id)
    assert (job.status, job.chunks_total, job.chunks_embedded) == (types_pb2.JOB_STATUS_DONE, 1, 1)
    assert job.embedding_tokens > 0
