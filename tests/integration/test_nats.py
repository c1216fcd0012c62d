"""NATS helpers and the registry against a real nats-server."""

import asyncio

import pytest
from nats.js.api import ConsumerConfig, KeyValueConfig, StorageType
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from rag.v1 import types_pb2
from services.common import natsio
from services.ingest.registry import Registry

trace.set_tracer_provider(TracerProvider())


async def test_declarations_are_idempotent(nats_server):
    nc = await natsio.connect(nats_server.url, "test")
    js = nc.jetstream()
    await natsio.ensure_all(js)
    await natsio.ensure_all(js)
    names = {s.config.name for s in await js.streams_info()}
    assert {c.name for c in natsio.STREAMS} <= names
    assert str((await js.stream_info("RAG_JOBS")).config.retention).endswith("workqueue")
    await natsio.close(nc)


async def test_buckets_read_by_direct_get_even_when_declared_without(nats_server):
    nc = await natsio.connect(nats_server.url, "test")
    js = nc.jetstream()
    old = await js.create_key_value(KeyValueConfig(bucket=natsio.KV_DOCS, storage=StorageType.FILE))
    await old.put("t.doc", b"kept")
    assert not (await js.stream_info(f"KV_{natsio.KV_DOCS}")).config.allow_direct
    await natsio.ensure_all(js)
    for bucket in (natsio.KV_DOCS, natsio.KV_JOBS, natsio.KV_INDEX):
        assert (await js.stream_info(f"KV_{bucket}")).config.allow_direct, bucket
    docs = await js.key_value(natsio.KV_DOCS)
    assert docs._direct
    assert (await docs.get("t.doc")).value == b"kept"
    answers = await natsio.ensure_bucket(js, KeyValueConfig(bucket="answers_probe", ttl=3600.0))
    await answers.put("a", b"1")
    longer = await natsio.ensure_bucket(js, KeyValueConfig(bucket="answers_probe", ttl=7200.0))
    assert (await js.stream_info("KV_answers_probe")).config.max_age == 7200.0
    assert (await longer.get("a")).value == b"1"
    await natsio.close(nc)


async def test_publish_dedupes_by_msg_id_and_carries_trace_context(nats_server):
    nc = await natsio.connect(nats_server.url, "test")
    js = nc.jetstream()
    await natsio.ensure_all(js)
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("parent") as parent:
        first = await natsio.publish(js, "rag.jobs.t1", b"one", msg_id="t1/doc/1/abc")
        second = await natsio.publish(js, "rag.jobs.t1", b"one", msg_id="t1/doc/1/abc")
    assert second.duplicate and first.seq == second.seq
    sub = await js.pull_subscribe("rag.jobs.>", durable="probe", stream="RAG_JOBS")
    [msg] = await sub.fetch(1, timeout=5)
    assert "traceparent" in msg.headers
    with natsio.consume_span("consume", msg) as span:
        assert span.get_span_context().trace_id == parent.get_span_context().trace_id
    await msg.ack()
    await natsio.close(nc)


async def test_publish_and_consume_spans_carry_the_messaging_conventions(nats_server):
    """PRODUCER and CONSUMER spans name the system, subject, operation, message id and size, the
    consumer and the stream sequence; a batch span counts its messages."""
    exporter = InMemorySpanExporter()
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))
    nc = await natsio.connect(nats_server.url, "test")
    js = nc.jetstream()
    await natsio.ensure_all(js)
    first = await natsio.publish(js, "rag.jobs.conv", b"twelve bytes", msg_id="conv/doc/1", span_name="send job")
    second = await natsio.publish(js, "rag.jobs.conv", b"second")
    sub = await js.pull_subscribe("rag.jobs.conv", durable="conventions", stream="RAG_JOBS")
    msgs = await sub.fetch(2, timeout=5)
    with natsio.consume_span("take job", msgs[0]):
        pass
    with natsio.consume_span("take batch", msgs[0], msgs):
        pass
    for msg in msgs:
        await msg.ack()
    await natsio.close(nc)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert spans["send job"].kind == SpanKind.PRODUCER
    assert dict(spans["send job"].attributes) == {
        "messaging.system": "nats",
        "messaging.destination.name": "rag.jobs.conv",
        "messaging.operation.type": "send",
        "messaging.operation.name": "publish",
        "messaging.message.body.size": 12,
        "messaging.message.id": "conv/doc/1",
        "messaging.nats.stream_sequence": first.seq,
    }
    unnamed = spans["rag.nats.publish rag.jobs.conv"].attributes
    assert "messaging.message.id" not in unnamed and unnamed["messaging.nats.stream_sequence"] == second.seq
    assert spans["take job"].kind == SpanKind.CONSUMER
    assert dict(spans["take job"].attributes) == {
        "messaging.system": "nats",
        "messaging.destination.name": "rag.jobs.conv",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.message.body.size": 12,
        "messaging.message.id": "conv/doc/1",
        "messaging.consumer.group.name": "conventions",
        "messaging.nats.stream_sequence": first.seq,
    }
    assert spans["take batch"].attributes["messaging.batch.message_count"] == 2
    assert "messaging.batch.message_count" not in spans["take job"].attributes


async def test_registry_compare_and_set_loses_no_update(nats_server):
    nc = await natsio.connect(nats_server.url, "test")
    js = nc.jetstream()
    await natsio.ensure_all(js)
    registry = Registry(js, await js.key_value(natsio.KV_DOCS), await js.key_value(natsio.KV_JOBS))

    def add_version(record):
        record = record or types_pb2.DocumentRecord(tenant="t", doc_id="doc/1")
        record.versions.append(types_pb2.DocumentVersion(version=len(record.versions) + 1))
        return record

    await asyncio.gather(*(registry.mutate("t", "doc/1", add_version) for _ in range(20)))
    record, revision = await registry.get("t", "doc/1")
    assert [v.version for v in record.versions] == list(range(1, 21))
    assert revision > 0
    assert [r.doc_id for r in await registry.list("t")] == ["doc/1"]
    assert await registry.list("other") == []
    await natsio.close(nc)


@pytest.mark.parametrize("bucket", [natsio.KV_DOCS, natsio.KV_JOBS, natsio.KV_KEYS])
async def test_buckets_exist(nats_server, bucket):
    nc = await natsio.connect(nats_server.url, "test")
    js = nc.jetstream()
    await natsio.ensure_all(js)
    kv = await js.key_value(bucket)
    await kv.put("probe", b"1")
    assert (await kv.get("probe")).value == b"1"
    await natsio.close(nc)


async def test_kv_values_lists_every_current_value_and_no_deleted_key(nats_server):
    nc = await natsio.connect(nats_server.url, "test")
    js = nc.jetstream()
    await natsio.ensure_all(js)
    kv = await js.key_value(natsio.KV_DOCS)
    for i in range(600):  # more than one fetch
        await kv.put(f"t1.d{i}", f"v{i}".encode())
    await kv.put("t1.d0", b"second value")
    await kv.put("t2.x", b"another tenant")
    await kv.delete("t1.d1")
    values = await natsio.kv_values(js, natsio.KV_DOCS, "t1.>")
    assert len(values) == 599 and b"second value" in values and b"v0" not in values and b"v1" not in values
    assert await natsio.kv_values(js, natsio.KV_DOCS, "t2.>") == [b"another tenant"]
    assert await natsio.kv_values(js, natsio.KV_DOCS, "t3.>") == []
    stream = await js.stream_info("KV_" + natsio.KV_DOCS)
    assert stream.state.consumer_count == 0  # each listing removes its consumer
    await natsio.close(nc)


async def test_a_write_over_a_seen_revision_reads_only_when_somebody_wrote_since(nats_server):
    nc = await natsio.connect(nats_server.url, "test")
    js = nc.jetstream()
    await natsio.ensure_all(js)
    registry = Registry(js, await js.key_value(natsio.KV_DOCS), await js.key_value(natsio.KV_JOBS))
    reads = []
    plain_get = registry.get

    async def counted_get(tenant, doc_id):
        reads.append(doc_id)
        return await plain_get(tenant, doc_id)

    registry.get = counted_get

    def titled(title):
        def change(record):
            record = record or types_pb2.DocumentRecord(tenant="t", doc_id="d")
            record.title = title
            return record

        return change

    seen = await registry.mutate_seen("t", "d", titled("one"))
    assert len(reads) == 1
    seen = await registry.mutate_seen("t", "d", titled("two"), seen)
    assert len(reads) == 1, "the revision written last was current: no read"
    assert seen == await plain_get("t", "d")

    def add_acl(record):
        record.acl.append("team")
        return record

    await registry.mutate("t", "d", add_acl)  # somebody else writes
    reads.clear()
    record, revision = await registry.mutate_seen("t", "d", titled("three"), seen)
    assert len(reads) == 1, "the stale revision failed its compare-and-set, then the record was read"
    assert record.title == "three" and list(record.acl) == ["team"]
    assert (record, revision) == await plain_get("t", "d")
    await natsio.close(nc)


async def test_close_delivers_the_acks_sent_just_before_it(nats_server):
    nc = await natsio.connect(nats_server.url, "test")
    js = nc.jetstream()
    await natsio.ensure_all(js)
    for i in range(50):
        await natsio.publish(js, "rag.jobs.closing", f"job {i}".encode())
    sub = await js.pull_subscribe(
        "rag.jobs.closing",
        durable="closing",
        stream=natsio.STREAM_JOBS.name,
        config=ConsumerConfig(ack_wait=120),  # a lost ack would stay pending far longer than the wait below
    )
    fetched = await sub.fetch(50, timeout=5)
    assert len(fetched) == 50
    for msg in fetched:
        await msg.ack()  # a plain publish: nothing waits for the server to have it
    await natsio.close(nc)
    assert nc.is_closed

    other = await natsio.connect(nats_server.url, "check")
    js = other.jetstream()
    # The server has read every ack once the flush returns, but applies them to the consumer on its
    # own goroutine a moment later: wait a few seconds for that, never the ack wait.
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        info = await js.consumer_info(natsio.STREAM_JOBS.name, "closing")
        stored = (await js.stream_info(natsio.STREAM_JOBS.name)).state.messages
        if (info.num_ack_pending, info.num_pending, stored) == (0, 0, 0):
            break
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert (info.num_ack_pending, info.num_pending) == (0, 0)
    assert stored == 0  # work queue: acked = gone
    await natsio.close(other)


async def test_a_listing_holds_every_key_while_keys_are_being_rewritten(nats_server):
    """A key rewritten during a listing loses its older value from the stream (history 1): the
    listing must then return the newer one, never leave the key out."""
    nc = await natsio.connect(nats_server.url, "test")
    js = nc.jetstream()
    kv = await js.create_key_value(KeyValueConfig(bucket="listing_probe", history=1, storage=StorageType.FILE))
    keys = [f"t.doc-{i:03d}" for i in range(300)]
    for key in keys:
        await kv.put(key, b"v0")
    writing = True

    async def rewrite() -> int:
        turn = 0
        while writing:
            turn += 1
            await asyncio.gather(*(kv.put(key, f"v{turn}".encode()) for key in keys[::7]))
        return turn

    writer = asyncio.create_task(rewrite())
    try:
        for _ in range(15):
            listed = dict(await natsio.kv_items(js, "listing_probe", "t.>"))
            assert sorted(listed) == keys, f"{len(keys) - len(listed)} keys left out"
    finally:
        writing = False
        turns = await writer
    await kv.delete(keys[0])
    listed = dict(await natsio.kv_items(js, "listing_probe", "t.>"))
    assert sorted(listed) == keys[1:]  # a deleted key is left out
    rewritten = set(keys[7::7])
    assert {listed[k] for k in rewritten} == {f"v{turns}".encode()}
    assert {listed[k] for k in keys[1:] if k not in rewritten} == {b"v0"}
    await natsio.close(nc)
