"""The ingest worker against a real nats-server and the real embed service: at-least-once delivery
means a job can arrive twice, even while its first delivery is still being worked on."""

import asyncio

import grpc
import pytest
from helpers import embed_service

from rag.v1 import embed_pb2_grpc, events_pb2, retrieve_pb2, types_pb2
from services.common import natsio
from services.common.chunking import label
from services.common.config import IngestSettings
from services.ingest.document import DocumentError
from services.ingest.events import LifecycleFollower
from services.ingest.job_records import AlreadyFinished, mark_failed, report
from services.ingest.registry import Registry
from services.ingest.worker import IngestWorker

TENANT, DOC = "t1", "notes.txt"
TEXT = b"\n\n".join(f"Paragraph {i} says the river froze on day {i} of the winter survey.".encode() for i in range(12))


@pytest.fixture(scope="module")
async def embed_addr():
    async with embed_service() as addr:
        yield addr


@pytest.fixture
async def setup(nats_server, embed_addr, count_tokens):
    nc = await natsio.connect(nats_server.url, "test")
    js = nc.jetstream()
    await natsio.ensure_all(js)
    registry = Registry(js, await js.key_value(natsio.KV_DOCS), await js.key_value(natsio.KV_JOBS))
    objects = await js.object_store(natsio.OBJECTS_RAW)
    await objects.put("raw/notes", TEXT)
    await registry.mutate(
        TENANT,
        DOC,
        lambda _: types_pb2.DocumentRecord(
            tenant=TENANT,
            doc_id=DOC,
            current_version=1,
            status=types_pb2.DOCUMENT_STATUS_QUEUED,
            versions=[types_pb2.DocumentVersion(version=1, status=types_pb2.DOCUMENT_STATUS_QUEUED, job_id="j1")],
        ),
    )
    await registry.create_job(
        types_pb2.JobRecord(job_id="j1", tenant=TENANT, doc_id=DOC, version=1, status=types_pb2.JOB_STATUS_QUEUED)
    )
    async with grpc.aio.insecure_channel(embed_addr) as channel:
        settings = IngestSettings(embed_batch_size=4, chunk_target_tokens=32, chunk_overlap_tokens=0)
        worker = IngestWorker(js, registry, objects, embed_pb2_grpc.EmbedServiceStub(channel), settings, count_tokens)
        yield js, registry, worker
        worker.parser.close()
    await natsio.close(nc)


JOB = events_pb2.IngestJob(
    job_id="j1", tenant=TENANT, doc_id=DOC, version=1, object_name="raw/notes", content_type="text/plain"
)


async def announce_indexed(js, registry, chunk_count: int) -> None:
    """What retrieve's DocumentIndexed event does to the registry once the activation is applied."""
    event = events_pb2.DocumentIndexed(tenant=TENANT, doc_id=DOC, version=1, job_id="j1", chunk_count=chunk_count)
    await LifecycleFollower(js, registry).apply(f"rag.events.indexed.{TENANT}", event.SerializeToString())


async def test_a_redelivered_finished_job_changes_nothing(setup):
    js, registry, worker = setup
    await worker.process(JOB)
    job = await registry.get_job("j1")
    assert job.status == types_pb2.JOB_STATUS_INDEXING and job.chunks_embedded == job.chunks_total > 4
    await announce_indexed(js, registry, job.chunks_total)

    with pytest.raises(AlreadyFinished):
        await worker.process(JOB, attempt=2)
    assert (await registry.get_job("j1")).status == types_pb2.JOB_STATUS_DONE
    record, _ = await registry.get(TENANT, DOC)
    assert record.status == types_pb2.DOCUMENT_STATUS_INDEXED and record.indexed_version == 1


async def test_a_late_write_from_a_second_delivery_does_not_reopen_a_finished_job(setup):
    js, registry, worker = setup
    await worker.process(JOB)
    # The second delivery read the job while the first was still running, then fell behind it.
    stale = await registry.update_job("j1", chunks_embedded=1)
    assert stale is not None and stale[0].status == types_pb2.JOB_STATUS_INDEXING
    await announce_indexed(js, registry, (await registry.get_job("j1")).chunks_total)

    assert not await registry.update_job("j1", status=types_pb2.JOB_STATUS_INDEXING)
    # Writing over the revision it saw before the job finished reads again, and refuses.
    assert not await registry.update_job("j1", stale, status=types_pb2.JOB_STATUS_INDEXING)
    with pytest.raises(AlreadyFinished):
        await report(registry, "j1", status=types_pb2.JOB_STATUS_RUNNING)
    with pytest.raises(AlreadyFinished):
        await report(registry, "j1", stale, status=types_pb2.JOB_STATUS_RUNNING)
    await mark_failed(registry, TENANT, DOC, 1, "j1", "gave up after 5 attempts")
    assert (await registry.get_job("j1")).status == types_pb2.JOB_STATUS_DONE
    record, _ = await registry.get(TENANT, DOC)
    assert record.status == types_pb2.DOCUMENT_STATUS_INDEXED and not record.versions[0].error


async def test_concurrent_job_updates_lose_no_field(setup):
    _, registry, _ = setup
    await asyncio.gather(
        registry.update_job("j1", chunks_total=7),
        registry.update_job("j1", chunks_embedded=3),
        registry.update_job("j1", status=types_pb2.JOB_STATUS_RUNNING),
        registry.update_job("j1", error="slow parse"),
    )
    job = await registry.get_job("j1")
    assert (job.chunks_total, job.chunks_embedded, job.status, job.error) == (
        7,
        3,
        types_pb2.JOB_STATUS_RUNNING,
        "slow parse",
    )
    assert not await registry.update_job("no-such-job", status=types_pb2.JOB_STATUS_DONE)


async def index_events(js) -> list[events_pb2.IndexBatch]:
    sub = await js.pull_subscribe("rag.index.>", stream=natsio.STREAM_INDEX.name)
    events = []
    try:
        while True:
            events += [events_pb2.IndexBatch.FromString(m.data) for m in await sub.fetch(64, timeout=1)]
    except TimeoutError:
        return events
    finally:
        await sub.unsubscribe()


SMALL = types_pb2.Chunking(target_tokens=16, overlap_tokens=0)


async def hold_two_chunkings(js, worker: IngestWorker, active: int) -> None:
    """Generation 1 with the configured chunking and generation 2 re-chunked into SMALL."""
    kv = await js.key_value(natsio.KV_INDEX)
    pointer = retrieve_pb2.IndexPointer(
        active=active,
        generations=[
            retrieve_pb2.GenerationRecord(number=1),
            retrieve_pb2.GenerationRecord(number=2, rechunk=True, chunking=SMALL),
        ],
    )
    await kv.put(natsio.INDEX_POINTER_KEY, pointer.SerializeToString())
    worker.index_kv = kv


async def test_a_redelivery_with_other_chunkings_starts_over_and_writes_each_whole(setup):
    """Two generations hold two chunkings, and one was promoted while the job ran: the plan of
    the redelivery differs from the first delivery's, so its progress cannot be reused."""
    js, registry, worker = setup
    await hold_two_chunkings(js, worker, active=2)
    chunkings = await worker._chunkings()
    assert [label(c) for c in chunkings] == ["16-0", "32-0"]  # the active generation's first
    _, _, chunk_sets = await worker._chunks(JOB, 1, chunkings)
    total = sum(len(s) for s in chunk_sets)
    # The first delivery, before the promotion, wrote 4 chunks in the other order.
    await registry.update_job("j1", chunks_total=total, chunks_embedded=4, chunkings="32-0,16-0")

    await worker.process(JOB, attempt=2)
    job = await registry.get_job("j1")
    assert (job.chunks_total, job.chunks_embedded, job.chunkings) == (total, total, "16-0,32-0")
    events = await index_events(js)
    for chunking, drafts in zip(chunkings, chunk_sets, strict=True):
        mine = [e for e in events if label(e.chunking) == label(chunking)]
        ordinals = sorted(c.ordinal for e in mine if e.WhichOneof("op") == "upserts" for c in e.upserts.chunks)
        assert ordinals == list(range(len(drafts))), label(chunking)
        [activation] = [e for e in mine if e.WhichOneof("op") == "activate"]
        assert activation.activate.chunk_count == len(drafts)
        assert activation.configured_chunking == (label(chunking) == "32-0")
    assert len(chunk_sets[0]) > len(chunk_sets[1])


async def test_a_rechunk_job_writes_only_for_a_generation_that_exists(setup):
    js, registry, worker = setup
    await worker.process(JOB)
    await announce_indexed(js, registry, (await registry.get_job("j1")).chunks_total)
    await hold_two_chunkings(js, worker, active=1)
    before = len(await index_events(js))
    rechunk = events_pb2.IngestJob()
    rechunk.CopyFrom(JOB)
    rechunk.job_id, rechunk.rechunk_generation = "rechunk-7", 7
    rechunk.chunking.CopyFrom(SMALL)
    await worker.process(rechunk)  # generation 7 was dropped: nothing is written
    assert len(await index_events(js)) == before

    rechunk.job_id, rechunk.rechunk_generation = "rechunk-2", 2
    await worker.process(rechunk)
    written = (await index_events(js))[before:]
    assert {label(e.chunking) for e in written} == {"16-0"} and not any(e.configured_chunking for e in written)
    [activation] = [e for e in written if e.WhichOneof("op") == "activate"]
    assert activation.activate.rechunk and activation.job_id == "rechunk-2"
    job = await registry.get_job("j1")
    assert job.status == types_pb2.JOB_STATUS_DONE and await registry.get_job("rechunk-2") is None


async def test_a_job_carrying_its_bytes_reads_nothing_back_from_the_object_store(setup):
    js, registry, worker = setup
    store, reads = worker.objects, []

    class CountedStore:
        async def get(self, name):
            reads.append(name)
            return await store.get(name)

        def __getattr__(self, name):
            return getattr(store, name)

    chunkings = await worker._chunkings()
    _, _, (expected,) = await worker._chunks(JOB, 1, chunkings)  # from the object store
    worker.objects = CountedStore()
    inline = events_pb2.IngestJob()
    inline.CopyFrom(JOB)
    inline.content = TEXT
    await worker.process(inline)
    assert reads == []
    events = await index_events(js)
    texts = [c.text for e in events if e.WhichOneof("op") == "upserts" for c in e.upserts.chunks]
    assert texts == [d.text for d in expected] and len(texts) > 4
    assert (await registry.get_job("j1")).chunks_embedded == len(expected)
    # Each chunk carries the language it was detected in: the lexical engines analyse it in that language.
    assert {c.language for e in events if e.WhichOneof("op") == "upserts" for c in e.upserts.chunks} == {"en"}


@pytest.mark.parametrize(
    "content, source_name, reason",
    [
        (b'a,b\n"' + b"x" * (2 << 20) + b'",1\n', "big.csv", "field larger than field limit"),
        (b"%PDF-1.7\n" + bytes(range(256)) * 40, "broken.pdf", "the PDF cannot be read"),
        (b"<html><body>" + b"<div>" * 50_000 + b"</body></html>", "deep.html", "the document has no text"),
    ],
)
async def test_a_document_the_parser_rejects_fails_at_once(setup, content, source_name, reason):
    """A DocumentError out of process() is failed and acked on its first delivery (handle), never retried."""
    js, registry, worker = setup
    job = events_pb2.IngestJob(
        job_id="j1", tenant=TENANT, doc_id=DOC, version=1, content=content, source_name=source_name
    )
    with pytest.raises(DocumentError, match=reason):
        await worker.process(job)
