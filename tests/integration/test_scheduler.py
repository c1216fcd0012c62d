"""Fair scheduling across tenants against a real nats-server: a flood from one tenant does not
make another wait behind it."""

import asyncio

from nats.errors import NoRespondersError, TimeoutError
from nats.js.errors import NotFoundError

from rag.v1 import events_pb2
from services.common import natsio
from services.ingest.scheduler import FairJobQueue, consumer_name


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


async def publish_job(js, tenant: str, doc_id: str) -> None:
    job = events_pb2.IngestJob(tenant=tenant, doc_id=doc_id)
    await natsio.publish(js, f"rag.jobs.{tenant}", job.SerializeToString())


async def serve_one(queue: FairJobQueue) -> tuple[str, str]:
    """Take the next job, ack it, and say whose and which it was."""
    msg = await next_within(queue, 10.0)
    assert msg is not None, "no job was served"
    await msg.ack_sync()
    job = events_pb2.IngestJob.FromString(msg.data)
    return job.tenant, job.doc_id


async def consumer_exists(js, tenant: str) -> bool:
    for _ in range(100):
        try:
            await js.consumer_info(natsio.STREAM_JOBS.name, consumer_name(tenant), timeout=1)
        except NotFoundError:
            return False
        except (TimeoutError, NoRespondersError):  # NATS restarting
            await asyncio.sleep(0.1)
            continue
        return True
    raise AssertionError("NATS did not answer")


async def wait_consumer_gone(js, tenant: str, seconds: float = 30.0, while_waiting=None) -> None:
    for _ in range(int(seconds * 10)):
        if not await consumer_exists(js, tenant):
            return
        if while_waiting is not None:
            await while_waiting()
        await asyncio.sleep(0.1)
    raise AssertionError(f"the consumer of {tenant} was never removed")


async def jobs_left(js) -> int:
    return (await js.stream_info(natsio.STREAM_JOBS.name)).state.messages


async def test_idle_tenant_is_served_after_its_consumer_expired(nats_server):
    nc = await natsio.connect(nats_server.url, "test")
    js = nc.jetstream()
    await natsio.ensure_all(js)
    queue = FairJobQueue(js, ack_wait=30, max_deliver=3, idle_seconds=2.0)
    await publish_job(js, "idle", "i0")
    await publish_job(js, "steady", "s0")
    assert sorted([await serve_one(queue), await serve_one(queue)]) == [("idle", "i0"), ("steady", "s0")]
    steady_created = (await js.consumer_info(natsio.STREAM_JOBS.name, consumer_name("steady"))).created

    # "steady" keeps working while "idle" waits past its consumer's inactivity threshold.
    steady_served = []

    async def steady_job() -> None:
        doc = f"s{len(steady_served) + 1}"
        await publish_job(js, "steady", doc)
        steady_served.append(await serve_one(queue))

    await wait_consumer_gone(js, "idle", while_waiting=steady_job)
    assert steady_served == [("steady", f"s{i + 1}") for i in range(len(steady_served))]

    for i in range(3):
        await publish_job(js, "idle", f"i{i + 1}")
        await publish_job(js, "steady", f"t{i}")
    served = [await serve_one(queue) for _ in range(6)]
    assert [doc for tenant, doc in served if tenant == "idle"] == ["i1", "i2", "i3"], served
    assert [doc for tenant, doc in served if tenant == "steady"] == ["t0", "t1", "t2"], served
    tenants = [tenant for tenant, _ in served]
    assert all(a != b for a, b in zip(tenants, tenants[1:], strict=False)), f"not served in turn: {tenants}"
    assert await jobs_left(js) == 0
    # The busy tenant's consumer was left alone.
    assert (await js.consumer_info(natsio.STREAM_JOBS.name, consumer_name("steady"))).created == steady_created
    await natsio.close(nc)


async def test_consumer_deleted_during_a_fetch_loses_no_job(nats_server):
    nc = await natsio.connect(nats_server.url, "test")
    js = nc.jetstream()
    await natsio.ensure_all(js)
    queue = FairJobQueue(js, ack_wait=30, max_deliver=3)
    await publish_job(js, "t", "d0")
    held = await next_within(queue, 10.0)
    assert held is not None and events_pb2.IngestJob.FromString(held.data).doc_id == "d0"

    # d0 is in flight (not acked), so the next fetch waits on the server: delete the consumer then.
    deleted_mid_fetch = False
    for _ in range(200):
        fetching = asyncio.create_task(queue.next())
        while not fetching.done():
            info = await js.consumer_info(natsio.STREAM_JOBS.name, consumer_name("t"))
            if info.num_waiting > 0:
                await js.delete_consumer(natsio.STREAM_JOBS.name, consumer_name("t"))
                deleted_mid_fetch = True
                break
            await asyncio.sleep(0.005)
        assert await fetching is None
        if deleted_mid_fetch:
            break
        await asyncio.sleep(0.05)
    assert deleted_mid_fetch, "never caught a fetch waiting on the server"

    # The job in flight went with the consumer: the new consumer delivers it again, then new ones.
    await held.ack()
    assert await serve_one(queue) == ("t", "d0")
    await publish_job(js, "t", "d1")
    assert await serve_one(queue) == ("t", "d1")
    assert await jobs_left(js) == 0
    await natsio.close(nc)


async def test_idle_tenant_is_served_after_nats_restarted(nats_server):
    nc = await natsio.connect(nats_server.url, "test")
    js = nc.jetstream()
    await natsio.ensure_all(js)
    queue = FairJobQueue(js, ack_wait=30, max_deliver=3, idle_seconds=1.0)
    await publish_job(js, "t", "d0")
    assert await serve_one(queue) == ("t", "d0")

    nats_server.stop()
    nats_server.start()
    await wait_consumer_gone(js, "t")

    await publish_job(js, "t", "d1")
    assert await serve_one(queue) == ("t", "d1")
    assert await jobs_left(js) == 0
    await natsio.close(nc)
