"""The index consumer of a generation with its own chunking, against a real nats-server and real
Qdrant Edge and Tantivy: it applies its chunking's events and every removal, never steps a
document back to an older version, and does not announce what a re-chunk wrote."""

import asyncio

import numpy as np
import pytest

from rag.v1 import events_pb2, retrieve_pb2, types_pb2
from services.common import natsio
from services.common.ids import chunk_id
from services.retrieve.backends.qdrant_edge import QdrantEdgeIndex
from services.retrieve.backends.tantivy_index import TantivyIndex
from services.retrieve.consumer import IndexConsumer
from services.retrieve.state import IndexState

DIMENSION = 8
SMALL = types_pb2.Chunking(target_tokens=48, overlap_tokens=8)
CONFIGURED = types_pb2.Chunking(target_tokens=200, overlap_tokens=24)


def upserts(version: int, count: int, chunking: types_pb2.Chunking, configured: bool) -> events_pb2.IndexBatch:
    chunks = [
        types_pb2.Chunk(
            chunk_id=chunk_id("t1", "d1", version, i),
            tenant="t1",
            doc_id="d1",
            version=version,
            ordinal=i,
            text=f"otters part {i} of version {version}",
            acl=["public"],
        )
        for i in range(count)
    ]
    vectors = np.random.default_rng(version).random((count, DIMENSION), dtype=np.float32)
    return events_pb2.IndexBatch(
        tenant="t1",
        doc_id="d1",
        embedding_model_id="m@sha256:0",
        upserts=events_pb2.ChunkUpserts(chunks=chunks, vectors=vectors.ravel().tolist(), dimension=DIMENSION),
        chunking=chunking,
        configured_chunking=configured,
    )


def activate(version: int, count: int, chunking, configured: bool, rechunk: bool = False) -> events_pb2.IndexBatch:
    return events_pb2.IndexBatch(
        tenant="t1",
        doc_id="d1",
        embedding_model_id="m@sha256:0",
        job_id=f"job-{version}-{rechunk}",
        activate=events_pb2.ActivateVersion(version=version, chunk_count=count, rechunk=rechunk),
        chunking=chunking,
        configured_chunking=configured,
    )


@pytest.fixture
async def index(nats_server, tmp_path):
    """A connection with the streams declared, and both engines and the state, open in tmp_path."""
    nc = await natsio.connect(nats_server.url, "test")
    js = nc.jetstream()
    await natsio.ensure_all(js)
    dense, lexical = QdrantEdgeIndex(tmp_path / "dense", DIMENSION), TantivyIndex(tmp_path / "lexical")
    state = IndexState(tmp_path / "state.db", 2)
    for part in (dense, lexical, state):
        part.open()
    yield js, dense, lexical, state
    for part in (dense, lexical, state):
        part.close()
    await nc.close()


async def applied_through(state: IndexState, sequence: int) -> None:
    for _ in range(300):
        if state.watermark >= sequence:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"watermark {state.watermark} never reached {sequence}")


async def test_a_generation_applies_its_own_chunking_and_never_goes_back(index):
    js, dense, lexical, state = index
    record = retrieve_pb2.GenerationRecord(number=2, rechunk=True, chunking=SMALL)
    consumer = IndexConsumer(js, dense, lexical, state, "test-g2", record=record)
    await consumer.start()
    announced = await js.subscribe("rag.events.indexed.>")

    async def publish(*events) -> int:
        for event in events:
            ack = await js.publish("rag.index.t1", event.SerializeToString())
        return ack.seq

    try:
        # The configured chunking's version 1 (another generation's) and this chunking's re-chunk of it.
        last = await publish(
            upserts(1, 2, CONFIGURED, True),
            activate(1, 2, CONFIGURED, True),
            upserts(1, 5, SMALL, False),
            activate(1, 5, SMALL, False, rechunk=True),
        )
        await applied_through(state, last)
        assert state.active == {("t1", "d1"): 1} and dense.count() == lexical.count() == 5

        # Version 2 written in both chunkings, then a late re-chunk of version 1: it must not win.
        last = await publish(
            upserts(2, 3, SMALL, False),
            upserts(2, 1, CONFIGURED, True),
            activate(2, 3, SMALL, False),
            activate(2, 1, CONFIGURED, True),
            upserts(1, 5, SMALL, False),
            activate(1, 5, SMALL, False, rechunk=True),
        )
        await applied_through(state, last)
        assert state.active == {("t1", "d1"): 2} and dense.count() == lexical.count() == 3

        # Only the live version 2 was announced, once: the re-chunk's activations stay quiet.
        message = await announced.next_msg(timeout=5)
        indexed = events_pb2.DocumentIndexed.FromString(message.data)
        assert (indexed.version, indexed.chunk_count) == (2, 3)
        try:
            extra = await announced.next_msg(timeout=0.5)
            raise AssertionError(f"announced again: {events_pb2.DocumentIndexed.FromString(extra.data)}")
        except TimeoutError:
            pass

        # A removal concerns every chunking.
        last = await publish(events_pb2.IndexBatch(tenant="t1", doc_id="d1", remove=events_pb2.RemoveDocumentChunks()))
        await applied_through(state, last)
        assert state.active == {} and dense.count() == lexical.count() == 0
    finally:
        await consumer.stop()


async def test_events_arriving_one_by_one_share_a_commit_within_the_linger(index):
    js, dense, lexical, state = index
    commits = []
    commit = state.commit
    state.commit = lambda watermark, *rest: commits.append(watermark) or commit(watermark, *rest)
    consumer = IndexConsumer(js, dense, lexical, state, "test-linger", linger=2.0)
    await consumer.start()
    try:
        for version in range(1, 11):  # a document changed ten times, one event at a time
            await js.publish("rag.index.t1", upserts(version, 1, CONFIGURED, True).SerializeToString())
            ack = await js.publish("rag.index.t1", activate(version, 1, CONFIGURED, True).SerializeToString())
            await asyncio.sleep(0.03)
        await applied_through(state, ack.seq)
        assert state.active == {("t1", "d1"): 10} and dense.count() == lexical.count() == 1
        assert len(commits) <= 3, commits  # 20 events, not 20 commits
    finally:
        await consumer.stop()
