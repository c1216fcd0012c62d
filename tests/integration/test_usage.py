"""Usage totals in NATS KV (real nats-server): counted in memory, added by compare-and-set."""

import asyncio
import time

from services.common import natsio
from services.common.usage import UsageStore


async def stores(nats_server, count: int, flush_seconds: float = 60.0):
    nc = await natsio.connect(nats_server.url, "test")
    js = nc.jetstream()
    await natsio.ensure_all(js)
    kv = await js.key_value(natsio.KV_USAGE)
    return nc, [UsageStore(kv, flush_seconds) for _ in range(count)]


async def test_replicas_counting_at_once_lose_nothing(nats_server):
    nc, replicas = await stores(nats_server, 3)
    now = time.time()

    async def count(store: UsageStore, n: int):
        for i in range(n):
            store.add("acme", now, queries=1, llm_tokens=7, cost_usd=0.25)
            if i % 10 == 9:
                await store.flush()  # flushes of several replicas interleave: compare-and-set conflicts
            await asyncio.sleep(0)

    await asyncio.gather(*(count(store, 50) for store in replicas))
    await asyncio.gather(*(store.flush() for store in replicas))
    today, month = await UsageStore(replicas[0].kv).get("acme", now)
    assert (today.queries, today.llm_tokens, today.cost_usd) == (150, 1050, 37.5)
    assert (month.queries, month.period) == (150, time.strftime("%Y-%m", time.gmtime(now)))
    await natsio.close(nc)


async def test_a_process_sees_its_own_usage_at_once_and_others_after_a_flush(nats_server):
    nc, (mine, other) = await stores(nats_server, 2, flush_seconds=0.2)
    now = time.time()
    assert (await other.get("acme", now))[0].queries == 0
    mine.add("acme", now, queries=2)
    assert (await mine.get("acme", now))[0].queries == 2  # nothing written yet
    assert (await other.get("acme", now))[0].queries == 0
    await mine.flush()
    assert mine.pending == {}
    await asyncio.sleep(0.25)  # the other's last read is older than a flush interval
    assert (await other.get("acme", now))[0].queries == 2
    mine.add("acme", now, queries=1)
    assert (await mine.get("acme", now))[0].queries == 3
    await natsio.close(nc)


async def test_stop_writes_what_is_still_counted(nats_server):
    nc, (store,) = await stores(nats_server, 1, flush_seconds=60.0)
    store.start()
    now = time.time()
    store.add("acme", now, documents=1, embedding_tokens=40)
    await store.stop()
    today, _ = await UsageStore(store.kv).get("acme", now)
    assert (today.documents, today.embedding_tokens) == (1, 40)
    await natsio.close(nc)


async def test_counts_that_cannot_be_written_stay_pending(nats_server):
    nc, (store,) = await stores(nats_server, 1)
    now = time.time()
    store.add("acme", now, queries=4)
    nats_server.stop()
    await store.flush()
    assert sum(r.queries for r in store.pending.values()) == 8  # today's and this month's record
    nats_server.start()
    await asyncio.sleep(2.5)  # the client reconnects
    await store.flush()
    assert store.pending == {}
    assert (await UsageStore(store.kv).get("acme", now))[0].queries == 4
    await natsio.close(nc)


async def test_stopping_while_a_flush_is_writing_loses_nothing(nats_server):
    nc, (store,) = await stores(nats_server, 1, flush_seconds=0.01)
    store.start()
    now = time.time()
    for _ in range(200):
        store.add("acme", now, queries=1)
        await asyncio.sleep(0.001)  # the loop flushes between adds; stop() lands wherever it lands
    await store.stop()
    assert store.pending == {}
    assert (await UsageStore(store.kv).get("acme", now))[0].queries == 200
    await natsio.close(nc)


async def test_budget_use_is_exported_as_requests_spend_it(nats_server):
    """The gauge the budget alert watches moves with the usage the gateway checks, to the refusal."""
    import grpc
    from prometheus_client import REGISTRY

    from rag.v1 import gateway_pb2
    from services.common.refusal import Refused
    from services.gateway.limits import Governor, TenantLimits
    from services.gateway.metering import Meter

    nc, (store,) = await stores(nats_server, 1)
    limits = {"default": TenantLimits(), "budgeted": TenantLimits(daily_llm_tokens=1000, monthly_cost_usd=5.0)}
    meter = Meter(Governor(limits), store)
    caller = gateway_pb2.ApiKeyRecord(tenant="budgeted", key_id="k1")

    def used(budget: str) -> float | None:
        return REGISTRY.get_sample_value("ragmesh_budget_used_ratio", {"tenant": "budgeted", "budget": budget})

    store.add("budgeted", time.time(), llm_tokens=250, cost_usd=1.25)
    async with meter.query(caller, llm=True):
        pass
    assert (used("daily_llm_tokens"), used("monthly_cost_usd")) == (0.25, 0.25)
    assert used("daily_embedding_tokens") is None  # no such budget for this tenant
    store.add("budgeted", time.time(), llm_tokens=750)
    try:
        async with meter.query(caller, llm=True):
            raise AssertionError("a spent budget must refuse")
    except Refused as exc:
        assert exc.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert used("daily_llm_tokens") == 1.0
    await natsio.close(nc)
