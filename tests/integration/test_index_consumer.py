"""A generation's index consumer against a real nats-server and real Qdrant Edge and Tantivy: events
take effect in stream order whatever fails, a failing engine write retries the same batch in place,
the watermark only grows and a restart resumes after it, versions and removals are final, fields
changed while a version is written hold, a generation applies its own chunking only, and a batch
delivered again after a crash is not applied twice."""

import asyncio

import numpy as np
import pytest

from rag.v1 import events_pb2, retrieve_pb2, types_pb2
from services.common import natsio
from services.common.ids import chunk_id
from services.retrieve.backends.base import SearchScope
from services.retrieve.backends.qdrant_edge import QdrantEdgeIndex
from services.retrieve.backends.tantivy_index import TantivyIndex
from services.retrieve.consumer import IndexConsumer
from services.retrieve.state import LocalState

DIMENSION = 8
SMALL = types_pb2.Chunking(target_tokens=48, overlap_tokens=8)
CONFIGURED = types_pb2.Chunking(target_tokens=200, overlap_tokens=24)


def fields(revision: int = 1, acl=("public",)) -> events_pb2.DocumentFields:
    return events_pb2.DocumentFields(acl=list(acl), revision=revision)


def upserts(version, count, chunking=CONFIGURED, configured=True, doc="d1", revision=1, acl=("public",)):
    chunks = [
        types_pb2.Chunk(
            chunk_id=chunk_id("t1", doc, version, i),
            tenant="t1",
            doc_id=doc,
            version=version,
            ordinal=i,
            text=f"otters part {i} of version {version}",
        )
        for i in range(count)
    ]
    vectors = np.random.default_rng(version).random((count, DIMENSION), dtype=np.float32)
    return events_pb2.IndexBatch(
        tenant="t1",
        doc_id=doc,
        embedding_model_id="m@sha256:0",
        upserts=events_pb2.ChunkUpserts(
            chunks=chunks,
            vectors=vectors.ravel().tolist(),
            dimension=DIMENSION,
            version=version,
            fields=fields(revision, acl),
        ),
        chunking=chunking,
        configured_chunking=configured,
    )


def activate(version, count, chunking=CONFIGURED, configured=True, rechunk=False, doc="d1"):
    return events_pb2.IndexBatch(
        tenant="t1",
        doc_id=doc,
        embedding_model_id="m@sha256:0",
        job_id=f"job-{doc}-{version}-{rechunk}",
        activate=events_pb2.ActivateVersion(version=version, chunk_count=count, rechunk=rechunk),
        chunking=chunking,
        configured_chunking=configured,
    )


def remove(through, doc="d1"):
    return events_pb2.IndexBatch(
        tenant="t1", doc_id=doc, remove=events_pb2.RemoveDocumentChunks(through_version=through)
    )


def narrow(revision, acl, doc="d1"):
    update = events_pb2.UpdateMetadata(acl=list(acl), revision=revision)
    return events_pb2.IndexBatch(tenant="t1", doc_id=doc, update_metadata=update)


class FlakyWrites:
    """A real engine whose next `failures` writes raise, as a server that drops requests would."""

    def __init__(self, engine, failures: int = 0) -> None:
        self.engine, self.failures, self.failed = engine, failures, 0

    def _write(self, name):
        def call(*args):
            if self.failures:
                self.failures -= 1
                self.failed += 1
                raise ConnectionError("engine write failed")
            return getattr(self.engine, name)(*args)

        return call

    def __getattr__(self, name):
        if name in ("upsert", "rewrite", "retire", "commit"):
            return self._write(name)
        return getattr(self.engine, name)


@pytest.fixture
async def index(nats_server, tmp_path):
    """A connection with the streams declared, and both engines and the state, open in tmp_path."""
    nc = await natsio.connect(nats_server.url, "test")
    js = nc.jetstream()
    await natsio.ensure_all(js)
    dense, lexical = QdrantEdgeIndex(tmp_path / "dense", DIMENSION), TantivyIndex(tmp_path / "lexical")
    state = LocalState(tmp_path / "state.db", 2)
    for part in (dense, lexical, state):
        part.open()
    yield js, dense, lexical, state
    for part in (dense, lexical, state):
        part.close()
    await nc.close()


async def publish(js, *events) -> int:
    for event in events:
        ack = await js.publish("rag.index.t1", event.SerializeToString())
    return ack.seq


async def applied_through(state, sequence: int) -> None:
    for _ in range(400):
        if state.watermark >= sequence:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"watermark {state.watermark} never reached {sequence}")


def stored(engine, doc="d1") -> list[tuple[int, bool]]:
    return sorted((version, live) for _, version, live in engine.chunks_of("t1", doc))


async def test_a_generation_applies_its_own_chunking_and_never_goes_back(index):
    js, dense, lexical, state = index
    record = retrieve_pb2.GenerationRecord(number=2, rechunk=True, chunking=SMALL)
    consumer = IndexConsumer(js, dense, lexical, state, "test-g2", record=record)
    await consumer.start()
    announced = await js.subscribe("rag.events.indexed.>")
    try:
        # The configured chunking's version 1 (another generation's) and this chunking's re-chunk of it.
        last = await publish(
            js,
            upserts(1, 2, CONFIGURED, True),
            activate(1, 2, CONFIGURED, True),
            upserts(1, 5, SMALL, False),
            activate(1, 5, SMALL, False, rechunk=True),
        )
        await applied_through(state, last)
        assert stored(dense) == stored(lexical) == [(1, True)] * 5

        # Version 2 written in both chunkings, then a late re-chunk of version 1: it must not win.
        last = await publish(
            js,
            upserts(2, 3, SMALL, False),
            upserts(2, 1, CONFIGURED, True),
            activate(2, 3, SMALL, False),
            activate(2, 1, CONFIGURED, True),
            upserts(1, 5, SMALL, False),
            activate(1, 5, SMALL, False, rechunk=True),
        )
        await applied_through(state, last)
        assert stored(dense) == stored(lexical) == [(2, True)] * 3

        # Only the live version 2 was announced, once: the re-chunk's activations stay quiet.
        message = await announced.next_msg(timeout=5)
        indexed = events_pb2.DocumentIndexed.FromString(message.data)
        assert (indexed.version, indexed.chunk_count) == (2, 3)
        with pytest.raises(TimeoutError):
            await announced.next_msg(timeout=0.5)

        last = await publish(js, remove(2))  # a removal concerns every chunking
        await applied_through(state, last)
        assert dense.count() == lexical.count() == 0
    finally:
        await consumer.stop()


async def test_a_failing_engine_write_retries_the_batch_in_place_and_nothing_later_goes_first(index):
    js, dense, lexical, state = index
    flaky_dense = FlakyWrites(dense, failures=3)
    consumer = IndexConsumer(js, flaky_dense, lexical, state, "test-flaky", batch=2)
    await consumer.start()
    try:
        # Version 1, its removal, then a late job's version 1 again: applied out of order, the
        # late activation would show the removed document.
        last = await publish(js, upserts(1, 2), activate(1, 2), remove(1), upserts(1, 2), activate(1, 2))
        await applied_through(state, last)
        assert flaky_dense.failed == 3
        assert dense.count() == lexical.count() == 0
        assert (await state.load([("t1", "d1")]))[("t1", "d1")].floor == 1
    finally:
        await consumer.stop()


async def test_the_watermark_only_grows_and_a_restart_resumes_after_it(index):
    js, dense, lexical, state = index
    seen = []
    commit = state.commit

    async def recording(watermark, *rest):
        await commit(watermark, *rest)
        seen.append(state.watermark)

    state.commit = recording
    consumer = IndexConsumer(js, dense, lexical, state, "test-restart", batch=3)
    await consumer.start()
    last = await publish(js, *[e for v in (1, 2, 3) for e in (upserts(v, 1), activate(v, 1))])
    await applied_through(state, last)
    await consumer.stop()
    assert seen == sorted(seen) and seen[-1] == last

    # Stopped, more events arrive; the next start applies exactly those (the state holds v3).
    more = await publish(js, upserts(4, 2), activate(4, 2))
    before = len(seen)
    consumer = IndexConsumer(js, dense, lexical, state, "test-restart", batch=3)
    await consumer.start()
    try:
        await applied_through(state, more)
        assert seen[before:] == [more] and stored(dense) == stored(lexical) == [(4, True), (4, True)]
    finally:
        await consumer.stop()


async def test_activation_retires_older_versions_and_keeps_a_newer_one_being_written(index):
    js, dense, lexical, state = index
    consumer = IndexConsumer(js, dense, lexical, state, "test-newer")
    await consumer.start()
    try:
        last = await publish(js, upserts(1, 1), activate(1, 1), upserts(2, 2), upserts(3, 1))
        await applied_through(state, last)
        assert stored(dense) == stored(lexical) == [(1, True), (2, False), (2, False), (3, False)]
        last = await publish(js, activate(2, 2))
        await applied_through(state, last)
        assert stored(dense) == stored(lexical) == [(2, True), (2, True), (3, False)]
        last = await publish(js, activate(3, 1), activate(2, 2))  # v2's activation again, late
        await applied_through(state, last)
        assert stored(dense) == stored(lexical) == [(3, True)]
    finally:
        await consumer.stop()


async def test_fields_changed_while_a_version_is_written_are_not_overwritten_by_its_chunks(index):
    js, dense, lexical, state = index
    consumer = IndexConsumer(js, dense, lexical, state, "test-acl")
    await consumer.start()
    try:
        # Version 1 is public; the ACL narrows to hr (revision 2) while version 2's job, which read
        # the record before the change, still writes chunks carrying revision 1.
        last = await publish(js, upserts(1, 1), activate(1, 1), narrow(2, ["hr"]), upserts(2, 2), activate(2, 2))
        await applied_through(state, last)
        everyone, hr = SearchScope("t1", ()), SearchScope("t1", ("hr",))
        vector = np.random.default_rng(2).random(DIMENSION).tolist()
        assert dense.search(vector, everyone, 10) == [] and lexical.search("otters", everyone, 10) == []
        assert len(dense.search(vector, hr, 10)) == 2 and len(lexical.search("otters", hr, 10)) == 2
        assert {tuple(c.acl) for c in dense.fetch([h.chunk_id for h in dense.search(vector, hr, 10)]).values()} == {
            ("hr",)
        }
    finally:
        await consumer.stop()


async def test_a_batch_delivered_again_after_a_crash_is_not_applied_twice(index):
    js, dense, lexical, state = index
    writes = []
    upsert = dense.upsert
    dense.upsert = lambda w: writes.append(len(w)) or upsert(w)
    consumer = IndexConsumer(js, dense, lexical, state, "test-crash")

    async def crash_before_acks(msgs):
        # Apply and commit, then "crash" before acknowledging: the messages come round again.
        await consumer._apply_events([(m, events_pb2.IndexBatch.FromString(m.data)) for m in msgs])

    consumer.apply = crash_before_acks
    await consumer.start()
    announced = await js.subscribe("rag.events.indexed.>")
    try:
        last = await publish(js, upserts(1, 3), activate(1, 3))
        await applied_through(state, last)
        await consumer.stop()
        consumer = IndexConsumer(js, dense, lexical, state, "test-crash")
        await consumer.start()
        # The activation is announced again (its message id collapses the repeat in the stream).
        indexed = events_pb2.DocumentIndexed.FromString((await announced.next_msg(timeout=10)).data)
        assert (indexed.doc_id, indexed.version) == ("d1", 1)
        assert writes == [3] and stored(dense) == [(1, True)] * 3  # delivered twice, written once
    finally:
        await consumer.stop()


async def test_events_arriving_one_by_one_share_a_commit_within_the_linger(index):
    js, dense, lexical, state = index
    commits = []
    commit = state.commit

    async def counting(watermark, *rest):
        commits.append(watermark)
        await commit(watermark, *rest)

    state.commit = counting
    consumer = IndexConsumer(js, dense, lexical, state, "test-linger", linger=2.0)
    await consumer.start()
    try:
        for version in range(1, 11):  # a document changed ten times, one event at a time
            await js.publish("rag.index.t1", upserts(version, 1).SerializeToString())
            ack = await js.publish("rag.index.t1", activate(version, 1).SerializeToString())
            await asyncio.sleep(0.03)
        await applied_through(state, ack.seq)
        assert stored(dense) == stored(lexical) == [(10, True)]
        assert len(commits) <= 3, commits  # 20 events, not 20 commits
    finally:
        await consumer.stop()


async def test_a_consumer_removed_under_a_running_generation_is_made_again(index):
    js, dense, lexical, state = index
    consumer = IndexConsumer(js, dense, lexical, state, "test-removed")
    await consumer.start()
    try:
        last = await publish(js, upserts(1, 1), activate(1, 1))
        await applied_through(state, last)
        # NATS removes it (its inactive threshold, an operator): the generation keeps applying.
        await js.delete_consumer(natsio.STREAM_INDEX.name, "test-removed")
        last = await publish(js, upserts(2, 2), activate(2, 2))
        await applied_through(state, last)
        assert stored(dense) == stored(lexical) == [(2, True), (2, True)]
    finally:
        await consumer.stop()
