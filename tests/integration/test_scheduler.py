"""Fair scheduling across tenants against a real nats-server: a flood from one tenant does not
make another wait behind it."""

import asyncio

from rag.v1 import events_pb2
from services.common import natsio
from services.ingest.scheduler import FairJobQueue


async def next_within(queue: FairJobQueue, seconds: float):
    for _ in range(int(seconds * 10)):
        msg = await queue.next()
        if msg is not None:
            return msg
        await asyncio.sleep(0.1)
    return None


async def test_tenants_are_served_in_turn(nats_server):
    nc = await natsio.connect(nats_server.url, "test")
    js = nc.jetstream()
    await natsio.ensure_all(js)
    for i in range(50):
        await natsio.publish(
            js, "rag.jobs.flood", events_pb2.IngestJob(tenant="flood", doc_id=f"f{i}").SerializeToString()
        )
    for i in range(3):
        await natsio.publish(
            js, "rag.jobs.quiet", events_pb2.IngestJob(tenant="quiet", doc_id=f"q{i}").SerializeToString()
        )
    queue = FairJobQueue(js, ack_wait=30, max_deliver=3)
    order = []
    for _ in range(10):
        msg = await queue.next()
        order.append(events_pb2.IngestJob.FromString(msg.data).tenant)
        await msg.ack()
    assert order.count("quiet") == 3, order
    assert max(i for i, t in enumerate(order) if t == "quiet") <= 6, order
    await natsio.close(nc)


async def test_empty_queue_returns_none_and_redelivers_unacked(nats_server):
    nc = await natsio.connect(nats_server.url, "test")
    js = nc.jetstream()
    await natsio.ensure_all(js)
    queue = FairJobQueue(js, ack_wait=1, max_deliver=3)
    assert await queue.next() is None
    await natsio.publish(js, "rag.jobs.t", b"job")
    first = await next_within(queue, 3.0)
    assert first is not None and first.data == b"job"
    # Not acked: after the ack wait the same job comes back.
    again = await next_within(queue, 5.0)
    assert again is not None and again.data == b"job" and again.metadata.num_delivered == 2
    await natsio.close(nc)
