"""NATS with the generated users and permissions, on a real nats-server: nobody connects without a
password, each service does its own work, and each is refused outside its subjects (checked by
what the server reports and by what the streams and buckets hold afterwards)."""

import asyncio
import secrets

import nats
import nats.errors
import pytest
from helpers import NatsServer
from nats.js.api import AckPolicy, ConsumerConfig
from prometheus_client import REGISTRY

from rag.v1 import events_pb2, gateway_pb2
from services.common import nats_access, natsio
from services.gateway.audit import AuditLog
from services.ingest.nats_metrics import NatsObserver
from services.retrieve.snapshots import snapshots_of

PASSWORDS = {user: secrets.token_urlsafe(16) for user in nats_access.GRANTS}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    started = NatsServer(tmp_path_factory.mktemp("nats") / "js", config=nats_access.authorization(PASSWORDS)).start()
    yield started
    started.stop()


class Session:
    """One user's connection, with the errors the server reported to it."""

    def __init__(self, nc, errors: list[str]) -> None:
        self.nc, self.errors = nc, errors  # as nats-py reports them: 'nats: permissions violation for ...'
        self.js = nc.jetstream(timeout=1)

    def refused(self, subject: str) -> bool:
        """Whether the server reported a publish to `subject` as a violation (nats-py lowercases it)."""
        return f'nats: permissions violation for publish to "{subject.lower()}"' in self.errors


async def session(server, user: str, password: str | None = None) -> Session:
    errors: list[str] = []

    async def on_error(exc):
        errors.append(str(exc))

    nc = await nats.connect(
        server.url,
        name=user,
        user=user,
        password=PASSWORDS[user] if password is None else password,
        inbox_prefix=nats_access.inbox_prefix(user),
        error_cb=on_error,
        allow_reconnect=False,
    )
    return Session(nc, errors)


@pytest.fixture(scope="module")
async def sessions(server):
    """Each service as it starts: retrieve and the gateway declare what they own, ingest waits for them."""
    made = {user: await session(server, user) for user in ("retrieve", "gateway", "ingest")}
    ingest = asyncio.create_task(natsio.ensure_all(made["ingest"].js))
    await natsio.ensure_all(made["retrieve"].js)
    await natsio.ensure_all(made["gateway"].js)
    await asyncio.wait_for(ingest, 10)
    yield made
    for each in made.values():
        await each.nc.close()


async def test_a_client_without_the_password_is_refused(server):
    for credentials in ({}, {"user": "ingest", "password": "wrong"}, {"user": "mallory", "password": "x"}):
        with pytest.raises(nats.errors.Error) as refused:
            await nats.connect(server.url, allow_reconnect=False, max_reconnect_attempts=0, **credentials)
        assert "authorization violation" in str(refused.value).lower()


async def test_each_service_does_its_own_work(sessions):
    gateway, ingest, retrieve = sessions["gateway"], sessions["ingest"], sessions["retrieve"]
    keys = await gateway.js.key_value(natsio.KV_KEYS)
    await keys.put("k1", b"record")
    assert (await keys.get("k1")).value == b"record"
    assert await natsio.kv_values(gateway.js, natsio.KV_KEYS) == [b"record"]
    audit = await AuditLog.open(gateway.js, gateway.nc.max_payload, 1, 1)
    event = events_pb2.QueryAudit(query_id="q1", tenant="acme", manifest={"query_id": "q1"})
    await audit.objects.put("q1", event.SerializeToString())
    assert (await audit.objects.get("q1")).data == event.SerializeToString()
    await audit.record(event)
    await audit.rate(event, gateway_pb2.ApiKeyRecord(key_id="k"), 1, "")
    assert (await audit.logged("q1")).feedback_rating == 1

    docs = await ingest.js.key_value(natsio.KV_DOCS)
    await docs.create("acme.ZA", b"doc")
    assert await natsio.kv_values(ingest.js, natsio.KV_DOCS, "acme.>") == [b"doc"]
    raw = await ingest.js.object_store(natsio.OBJECTS_RAW)
    await raw.put("acme/ZA/1", b"x" * 300_000)
    assert len((await raw.get("acme/ZA/1")).data) == 300_000
    await natsio.publish(ingest.js, "rag.jobs.acme", b"job")
    jobs = await ingest.js.pull_subscribe(
        "rag.jobs.acme", durable="ingest-acme", stream="RAG_JOBS", config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT)
    )
    [job] = await jobs.fetch(1, timeout=2)
    await job.ack()
    await natsio.publish(ingest.js, "rag.index.acme", b"batch")
    await natsio.publish(ingest.js, "rag.dlq.acme", b"dead")
    usage = await ingest.js.key_value(natsio.KV_USAGE)
    await usage.put("acme.2026-01-01", b"1")

    events = await retrieve.js.pull_subscribe("rag.index.>", durable="retrieve", stream="RAG_INDEX")
    [batch] = await events.fetch(1, timeout=2)
    assert batch.data == b"batch"
    await batch.ack()
    await natsio.publish(retrieve.js, "rag.events.indexed.acme", b"indexed")
    pointer = await retrieve.js.key_value(natsio.KV_INDEX)
    await pointer.create("lease", b"r1")
    await retrieve.js.purge_stream("RAG_INDEX")
    state = await retrieve.js.key_value(natsio.KV_INDEX_STATE)
    await state.put("g1", b"state")
    snapshots = await retrieve.js.object_store(natsio.OBJECTS_SNAPSHOTS)
    await snapshots.put("g1/00000000000000000001", b"snapshot")
    # What bounds the index stream: snapshots listed and pruned, consumers' floors, states purged.
    assert await snapshots_of(snapshots, 1) == [(1, "g1/00000000000000000001")]
    await snapshots.delete("g1/00000000000000000001")
    assert [c.name for c in await retrieve.js.consumers_info("RAG_INDEX")] == ["retrieve"]
    await retrieve.js.purge_stream("KV_rag_index_state", subject="$KV.rag_index_state.g1")
    cache = await ingest.js.object_store(natsio.OBJECTS_CHUNK_CACHE)
    await cache.put("acme/ZA/1.chunks", b"chunks")
    await cache.delete("acme/ZA/1.chunks")
    await raw.delete("acme/ZA/1")

    lifecycle = await ingest.js.pull_subscribe("rag.events.>", durable="lifecycle", stream="RAG_EVENTS")
    assert [m.data for m in await lifecycle.fetch(1, timeout=2)] == [b"indexed"]
    assert (await ingest.js.key_value(natsio.KV_INDEX)) is not None
    # What ingest reports to Prometheus: its streams' sizes and the account's storage.
    await NatsObserver(ingest.nc).observe()
    assert REGISTRY.get_sample_value("ragmesh_nats_stream_messages", {"stream": "RAG_DLQ"}) == 1
    assert REGISTRY.get_sample_value("ragmesh_nats_storage_bytes") > 0
    for each in sessions.values():
        assert not [e for e in each.errors if "permissions violation" in e], each.errors


async def refused(call) -> None:
    """A refused JetStream request gets no answer: it times out (the server reports the violation)."""
    with pytest.raises((TimeoutError, nats.errors.TimeoutError)):
        await call


async def test_ingest_cannot_write_keys_nor_read_them(sessions, server):
    ingest, gateway = await session(server, "ingest"), sessions["gateway"]
    forged = gateway_pb2.ApiKeyRecord(key_id="forged", tenant="acme", role=gateway_pb2.ROLE_OPERATOR)
    await refused(ingest.js.publish("$KV.rag_keys.forged", forged.SerializeToString()))
    await refused(ingest.js.key_value(natsio.KV_KEYS))
    await refused(ingest.js.get_last_msg("KV_rag_keys", "$KV.rag_keys.k1", direct=True))
    assert ingest.refused("$KV.rag_keys.forged") and ingest.refused("$JS.API.STREAM.INFO.KV_rag_keys")
    keys = await gateway.js.key_value(natsio.KV_KEYS)
    assert sorted(await keys.keys()) == ["k1"]  # nothing was written
    await ingest.nc.close()


async def test_nobody_but_ingest_publishes_index_events_and_nobody_but_retrieve_reads_them(sessions, server):
    before = (await sessions["retrieve"].js.stream_info("RAG_INDEX")).state.last_seq
    for user in ("gateway", "retrieve"):
        hostile = await session(server, user)
        await refused(hostile.js.publish("rag.index.globex", b"forged IndexBatch"))
        assert hostile.refused("rag.index.globex"), user
        await hostile.nc.close()
    ingest = await session(server, "ingest")
    await refused(ingest.js.pull_subscribe("rag.index.>", durable="spy", stream="RAG_INDEX"))
    await refused(ingest.js.add_consumer("RAG_INDEX", ConsumerConfig(durable_name="spy")))
    await refused(ingest.js.add_consumer("RAG_INDEX", ConsumerConfig()))
    await refused(ingest.js.get_msg("RAG_INDEX", seq=1))
    await refused(ingest.js.purge_stream("RAG_INDEX"))
    for subject in (
        "$JS.API.CONSUMER.INFO.RAG_INDEX.spy",
        "$JS.API.CONSUMER.DURABLE.CREATE.RAG_INDEX.spy",
        "$JS.API.CONSUMER.CREATE.RAG_INDEX",
        "$JS.API.STREAM.MSG.GET.RAG_INDEX",
        "$JS.API.STREAM.PURGE.RAG_INDEX",
    ):
        assert ingest.refused(subject), (subject, ingest.errors)
    await ingest.nc.close()
    assert (await sessions["retrieve"].js.stream_info("RAG_INDEX")).state.last_seq == before


async def test_services_stay_out_of_each_others_data(sessions, server):
    gateway = await session(server, "gateway")
    await refused(gateway.js.key_value(natsio.KV_DOCS))
    await refused(gateway.js.object_store(natsio.OBJECTS_RAW))
    await refused(gateway.js.publish("rag.jobs.acme", b"job"))
    retrieve = await session(server, "retrieve")
    await refused(retrieve.js.key_value(natsio.KV_ANSWERS))
    await refused(retrieve.js.key_value(natsio.KV_USAGE))
    ingest = await session(server, "ingest")
    await refused(ingest.js.publish("$KV.rag_index.pointer", b"forged pointer"))
    await refused(ingest.js.update_stream(natsio.STREAM_INDEX))
    await refused(ingest.js.delete_stream("RAG_INDEX"))
    assert ingest.refused("$KV.rag_index.pointer") and ingest.refused("$JS.API.STREAM.DELETE.RAG_INDEX")
    for each in (gateway, retrieve, ingest):
        await each.nc.close()


async def test_a_service_cannot_listen_to_another_services_replies(sessions, server):
    ingest = await session(server, "ingest")
    spied: list = []

    async def spy(msg):
        spied.append(msg)

    await ingest.nc.subscribe("_INBOX_gateway.>", cb=spy)
    await ingest.nc.subscribe(">", cb=spy)
    await ingest.nc.flush()
    keys = await sessions["gateway"].js.key_value(natsio.KV_KEYS)
    assert (await keys.get("k1")).value == b"record"  # a reply to the gateway's inbox
    await asyncio.sleep(0.2)
    assert spied == []
    assert 'nats: permissions violation for subscription to "_inbox_gateway.>"' in ingest.errors
    await ingest.nc.close()
