"""What ingest reports about NATS, read from a real nats-server: the oldest unfinished job moves
as jobs are taken and finished, stream sizes and the account's storage follow what is stored."""

import asyncio
import time

from prometheus_client import REGISTRY

from services.common import natsio
from services.ingest.nats_metrics import NatsObserver, oldest_job, storage_limit, unix_time


def sample(name: str, **labels) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_nats_times_and_limits_are_read_as_nats_writes_them():
    assert unix_time("2026-12-02T09:22:13.455033184Z") == 1796203333.455033184
    assert unix_time("2026-12-02T09:22:13Z") == 1796203333.0
    assert oldest_job({"state": {"messages": 0, "first_ts": "0001-01-01T00:00:00Z"}}) == 0.0
    assert oldest_job({"state": {"messages": 2, "first_ts": "2026-12-02T09:22:13Z"}}) == 1796203333.0
    assert storage_limit({"limits": {"max_storage": -1}}, 9_000_000_000) == 9_000_000_000
    assert storage_limit({"limits": {"max_storage": 5_000}}, 9_000_000_000) == 5_000
    assert storage_limit({"limits": {"max_storage": -1}}, 0) == 0


async def test_oldest_job_stream_sizes_and_storage_move_with_the_queue(nats_server):
    nc = await natsio.connect(nats_server.url, "test")
    js = nc.jetstream()
    await natsio.ensure_all(js)
    observer = NatsObserver(nc, configured_limit=123_456_789)
    observer.streams = ["RAG_JOBS", "RAG_DLQ"]  # a tool's connection: name the streams to read
    await observer.observe()
    assert sample("ragmesh_ingest_oldest_job_timestamp_seconds") == 0
    assert sample("ragmesh_nats_storage_limit_bytes") == 123_456_789
    dead_before = sample("ragmesh_nats_stream_messages", stream="RAG_DLQ")

    queued = []
    for n in range(2):
        before = time.time()
        await natsio.publish(js, "rag.jobs.metrics", f"job {n}".encode())
        queued.append((before, time.time()))
        await asyncio.sleep(0.01)  # the second job is queued strictly later
    await natsio.publish(js, "rag.dlq.metrics", b"dead letter")
    await observer.observe()
    oldest = sample("ragmesh_ingest_oldest_job_timestamp_seconds")
    assert queued[0][0] - 0.001 <= oldest <= queued[0][1] + 0.001  # the first job's queueing time
    assert sample("ragmesh_nats_stream_messages", stream="RAG_JOBS") == 2
    assert sample("ragmesh_nats_stream_messages", stream="RAG_DLQ") == dead_before + 1
    everything = sum(s.state.bytes for s in await js.streams_info())
    assert sample("ragmesh_nats_storage_bytes") == everything  # the account's storage is all its streams
    assert sample("ragmesh_nats_stream_bytes", stream="RAG_JOBS") == (await js.stream_info("RAG_JOBS")).state.bytes

    jobs = await js.pull_subscribe("rag.jobs.metrics", durable="metrics", stream="RAG_JOBS")
    [first] = await jobs.fetch(1, timeout=5)
    await observer.observe()
    assert sample("ragmesh_ingest_oldest_job_timestamp_seconds") == oldest, "a job in flight is not finished"
    await first.ack_sync()
    await observer.observe()
    second = sample("ragmesh_ingest_oldest_job_timestamp_seconds")
    assert queued[1][0] - 0.001 <= second <= queued[1][1] + 0.001 and second > oldest
    [last] = await jobs.fetch(1, timeout=5)
    await last.ack_sync()
    await observer.observe()
    assert sample("ragmesh_ingest_oldest_job_timestamp_seconds") == 0
    assert sample("ragmesh_nats_stream_messages", stream="RAG_JOBS") == 0
    await natsio.close(nc)
