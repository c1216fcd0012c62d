"""Re-chunk generations are queued from their durable record, once, against a real nats-server:
a generation nobody queued (its gateway died after creating it) is found and queued; a queueing
cut short (ingest killed midway) completes without doubling a job; a restarted ingest queues
nothing twice; a generation that has served is never queued again."""

import pytest

from rag.v1 import events_pb2, retrieve_pb2, types_pb2
from services.common import natsio
from services.ingest.rechunk import Rechunker, UnknownGeneration, marker_key, unqueued
from services.ingest.registry import Registry

S = types_pb2
SMALL = types_pb2.Chunking(target_tokens=48, overlap_tokens=8)


def version(number: int, status) -> types_pb2.DocumentVersion:
    return types_pb2.DocumentVersion(version=number, status=status, content_sha256=f"sha{number}")


DOCUMENTS = {
    # doc_id: (status, current, indexed, versions): what a re-chunk generation needs of each
    "indexed": (S.DOCUMENT_STATUS_INDEXED, 1, 1, [version(1, S.DOCUMENT_STATUS_INDEXED)]),
    "changing": (
        S.DOCUMENT_STATUS_QUEUED,
        2,
        1,
        [version(1, S.DOCUMENT_STATUS_INDEXED), version(2, S.DOCUMENT_STATUS_QUEUED)],
    ),
    "deleted": (S.DOCUMENT_STATUS_DELETED, 1, 0, [version(1, S.DOCUMENT_STATUS_INDEXED)]),
    "other": (S.DOCUMENT_STATUS_INDEXED, 1, 1, [version(1, S.DOCUMENT_STATUS_INDEXED)]),
}
WANTED = {("t1", "indexed", 1), ("t1", "changing", 1), ("t1", "changing", 2), ("t2", "other", 1)}


@pytest.fixture
async def setup(nats_server):
    nc = await natsio.connect(nats_server.url, "test")
    js = nc.jetstream()
    await natsio.ensure_all(js)
    jobs_kv, index_kv = await js.key_value(natsio.KV_JOBS), await js.key_value(natsio.KV_INDEX)
    registry = Registry(js, await js.key_value(natsio.KV_DOCS), jobs_kv)
    for doc_id, (status, current, indexed, versions) in DOCUMENTS.items():
        tenant = "t2" if doc_id == "other" else "t1"
        record = types_pb2.DocumentRecord(
            tenant=tenant,
            doc_id=doc_id,
            status=status,
            current_version=current,
            indexed_version=indexed,
            versions=versions,
        )
        await registry.mutate(tenant, doc_id, lambda _, record=record: record)
    pointer = retrieve_pb2.IndexPointer(
        active=1,
        previous=4,
        generations=[
            retrieve_pb2.GenerationRecord(number=1),
            retrieve_pb2.GenerationRecord(number=2, rechunk=True, chunking=SMALL),
            retrieve_pb2.GenerationRecord(number=3),
            retrieve_pb2.GenerationRecord(number=4, rechunk=True),  # served before: full already
        ],
    )
    await index_kv.put(natsio.INDEX_POINTER_KEY, pointer.SerializeToString())
    yield js, jobs_kv, index_kv
    await natsio.close(nc)


async def queued_jobs(js) -> list[events_pb2.IngestJob]:
    info = await js.stream_info("RAG_JOBS")
    if not info.state.messages:
        return []
    jobs = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        message = await js.get_msg("RAG_JOBS", seq)
        jobs.append(events_pb2.IngestJob.FromString(message.data))
    return [j for j in jobs if j.rechunk_generation]


def described(jobs) -> list[tuple]:
    return sorted((j.tenant, j.doc_id, j.version, j.rechunk_generation, j.chunking.target_tokens) for j in jobs)


EXPECTED = sorted((tenant, doc, v, 2, 48) for tenant, doc, v in WANTED)


def test_only_unqueued_rechunk_generations_that_never_served_are_pending():
    pointer = retrieve_pb2.IndexPointer(
        active=5,
        previous=4,
        generations=[retrieve_pb2.GenerationRecord(number=n, rechunk=n != 3) for n in (2, 3, 4, 5, 6)],
    )
    assert [g.number for g in unqueued(pointer, queued={6})] == [2]
    assert [g.number for g in unqueued(pointer, queued=set())] == [2, 6]


async def test_a_generation_nobody_queued_is_found_and_queued_once(setup):
    js, jobs_kv, index_kv = setup
    rechunker = Rechunker(js, jobs_kv, index_kv, poll_seconds=60)
    assert await rechunker.catch_up() == [2]
    assert described(await queued_jobs(js)) == EXPECTED
    assert await rechunker.catch_up() == []
    assert await rechunker.queue(2) == len(WANTED)  # asked again (a gateway's retry): the same count
    restarted = Rechunker(js, jobs_kv, index_kv, poll_seconds=60)  # the marker outlives the process
    assert await restarted.catch_up() == []
    assert described(await queued_jobs(js)) == EXPECTED


async def test_a_queueing_cut_short_completes_without_doubling_a_job(setup):
    js, jobs_kv, index_kv = setup
    rechunker = Rechunker(js, jobs_kv, index_kv, poll_seconds=60)
    generation = (await rechunker.pointer()).generations[1]
    registry = Registry(js, await js.key_value(natsio.KV_DOCS), jobs_kv)
    record, _ = await registry.get("t1", "changing")
    await rechunker._publish(record, 1, generation)  # a killed ingest got this far, no marker written
    await rechunker._publish(record, 2, generation)
    assert await rechunker.catch_up() == [2]
    assert described(await queued_jobs(js)) == EXPECTED
    assert (await jobs_kv.get(marker_key(2))).value


async def test_a_generation_that_is_not_a_rechunk_or_is_gone_is_refused(setup):
    js, jobs_kv, index_kv = setup
    rechunker = Rechunker(js, jobs_kv, index_kv, poll_seconds=60)
    for number in (3, 9):
        with pytest.raises(UnknownGeneration, match=f"^there is no re-chunk index generation {number}$"):
            await rechunker.queue(number)
    assert await queued_jobs(js) == []
