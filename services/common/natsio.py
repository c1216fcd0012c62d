"""NATS JetStream: connection, idempotent declaration of streams/KV/object store, traced publish."""

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
from collections.abc import Iterator

import nats
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    KeyValueConfig,
    ObjectStoreConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import APIError, BadRequestError, NotFoundError
from nats.js.kv import KeyValue
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

from services.common import nats_access, semconv
from services.common.nats_traffic import TRAFFIC

log = logging.getLogger(__name__)
tracer = trace.get_tracer("ragmesh.nats")

DAY = 86400.0

# Work queue of ingestion jobs: rag.jobs.<tenant>
STREAM_JOBS = StreamConfig(
    name="RAG_JOBS",
    subjects=["rag.jobs.>"],
    retention=RetentionPolicy.WORK_QUEUE,
    storage=StorageType.FILE,
    duplicate_window=120.0,
)
# Ordered index events: rag.index.<tenant>; kept until every reader passed them and a snapshot
# covers them (see services/retrieve/maintenance.py), at most RAGMESH_INDEX_RETENTION_DAYS.
STREAM_INDEX = StreamConfig(
    name="RAG_INDEX",
    subjects=["rag.index.>"],
    retention=RetentionPolicy.LIMITS,
    storage=StorageType.FILE,
    duplicate_window=120.0,
)
# Lifecycle events: rag.events.indexed.<tenant>, rag.events.failed.<tenant>
STREAM_EVENTS = StreamConfig(
    name="RAG_EVENTS",
    subjects=["rag.events.>"],
    retention=RetentionPolicy.LIMITS,
    storage=StorageType.FILE,
    max_age=30 * DAY,
)
# Query audit: rag.audit.<tenant>
STREAM_AUDIT = StreamConfig(
    name="RAG_AUDIT",
    subjects=["rag.audit.>"],
    retention=RetentionPolicy.LIMITS,
    storage=StorageType.FILE,
    max_age=90 * DAY,
)
# Jobs that exhausted their deliveries, with the error: rag.dlq.<tenant>
STREAM_DLQ = StreamConfig(
    name="RAG_DLQ",
    subjects=["rag.dlq.>"],
    retention=RetentionPolicy.LIMITS,
    storage=StorageType.FILE,
    max_age=30 * DAY,
)
# RAG_AUDIT is declared by the gateway alone, with its configured retention.
STREAMS = (STREAM_JOBS, STREAM_INDEX, STREAM_EVENTS, STREAM_DLQ)

KV_DOCS = "rag_docs"
KV_JOBS = "rag_jobs"
KV_KEYS = "rag_keys"
KV_USAGE = "rag_usage"
KV_INDEX = "rag_index"  # which index generation serves (key "pointer"), shared by every retrieve replica
INDEX_POINTER_KEY = "pointer"
WRITER_LEASE_KEY = "writer"  # which retrieve replica writes engines shared by several replicas
KV_INDEX_STATE = "rag_index_state"  # document states and progress of generations on shared engines
KV_ANSWERS = "rag_answers"  # query id -> QueryAudit, for replay and feedback (TTL = retention)
KV_CONVERSATIONS = "rag_conversations"  # <tenant>.<key id>.<conversation> -> Conversation (TTL)
OBJECTS_RAW = "rag_raw"
OBJECTS_CHUNK_CACHE = "rag_chunk_cache"  # parsed chunks of jobs in progress; entries expire after a day
OBJECTS_SNAPSHOTS = "rag_snapshots"  # index generation snapshots: a new replica starts from them
OBJECTS_AUDIT = "rag_audit"  # query id -> QueryAudit too large for one message (TTL = retention)


async def connect(url: str, name: str, password: str | None = None) -> nats.NATS:
    """Connect as NATS user `name` (a service connects as itself) with its password, by default
    RAGMESH_NATS_PASSWORD; without one, as nobody (a server without authorization). Replies come
    to the user's own inbox prefix, the only one it may subscribe to."""
    if password is None:
        password = os.environ.get("RAGMESH_NATS_PASSWORD", "")
    credentials = {"user": name, "password": password} if password else {}

    async def disconnected() -> None:
        log.warning("nats disconnected")

    async def reconnected() -> None:
        log.info("nats reconnected")

    nc = await nats.connect(
        servers=[u.strip() for u in url.split(",")],
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        disconnected_cb=disconnected,
        reconnected_cb=reconnected,
        inbox_prefix=nats_access.inbox_prefix(name),
        **credentials,
    )
    TRAFFIC.watch(nc)
    return nc


async def close(nc: nats.NATS, grace_seconds: float = 5.0) -> None:
    """Flush what was published (acks included), then close; give up quietly if the server is gone.

    Every subscription here is a pull subscription whose fetched messages the service finished
    (or left unacked, to be redelivered) before it closes, so there is nothing left to drain.
    nats-py's drain would wait for a fetched subscription's queue to be marked done, which fetch
    never does: every stop used to wait out the whole grace period."""
    try:
        await nc.flush(timeout=grace_seconds)
    except Exception:
        log.warning("nats did not confirm the last publishes; closing")
    try:
        await nc.close()
    except Exception:
        pass


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    try:
        await js.add_stream(config)
    except BadRequestError:
        await js.update_stream(config)


async def ensure_bucket(js: JetStreamContext, config: KeyValueConfig) -> KeyValue:
    """Declare a KV bucket that answers reads by direct get: a read is then one plain request a
    stream server answers with the raw value, instead of a JetStream API call that wraps it in
    base64 JSON. A bucket declared before without it is switched over, with its retention."""
    config = dataclasses.replace(config, direct=True)
    try:
        return await js.create_key_value(config)
    except BadRequestError:  # it exists with another configuration
        stream = (await js.stream_info(f"KV_{config.bucket}")).config
        await js.update_stream(dataclasses.replace(stream, allow_direct=True, max_age=config.ttl or stream.max_age))
        return await js.key_value(config.bucket)


async def ensure_all(
    js: JetStreamContext, replicas: int = 1, index_retention_days: float = 0.0, conversation_ttl_seconds: float = DAY
) -> None:
    """Declare the streams, buckets and object stores this connection's user owns (with `replicas`
    copies on a NATS cluster), and wait for the ones it uses that others own; safe to call at
    every start. A user that is no service (tests, tools) declares them all. The index stream keeps
    events at most `index_retention_days` (0: until every reader passed them and a snapshot covers them);
    a conversation's turns are kept `conversation_ttl_seconds` after its last turn."""
    user = js._nc.options.get("name")  # the NATS user the connection was made as (see `connect`)
    everything = user not in nats_access.GRANTS

    async def ensure(name: str, stream: str, declare) -> None:
        if everything or nats_access.owns(user, name):
            await declare()
        elif nats_access.uses(user, name):
            await wait_for_stream(js, stream, name)

    for config in STREAMS:
        config = dataclasses.replace(config, num_replicas=replicas)
        if config.name == STREAM_INDEX.name and index_retention_days:
            config = dataclasses.replace(config, max_age=index_retention_days * DAY)
        await ensure(config.name, config.name, lambda config=config: ensure_stream(js, config))
    buckets = ((KV_DOCS, 1), (KV_JOBS, 1), (KV_KEYS, 1), (KV_USAGE, 1), (KV_INDEX, 16), (KV_INDEX_STATE, 1))
    for bucket, history in buckets:
        config = KeyValueConfig(bucket=bucket, history=history, storage=StorageType.FILE, replicas=replicas)
        await ensure(bucket, f"KV_{bucket}", lambda config=config: ensure_bucket(js, config))
    conversations = KeyValueConfig(
        bucket=KV_CONVERSATIONS, ttl=conversation_ttl_seconds, storage=StorageType.FILE, replicas=replicas
    )
    await ensure(KV_CONVERSATIONS, f"KV_{KV_CONVERSATIONS}", lambda: ensure_bucket(js, conversations))
    stores = (
        (OBJECTS_RAW, ObjectStoreConfig(storage=StorageType.FILE, replicas=replicas)),
        (OBJECTS_CHUNK_CACHE, ObjectStoreConfig(storage=StorageType.FILE, replicas=replicas, ttl=DAY)),
        (OBJECTS_SNAPSHOTS, ObjectStoreConfig(storage=StorageType.FILE, replicas=replicas)),
    )
    for name, config in stores:
        await ensure(name, f"OBJ_{name}", lambda name=name, config=config: js.create_object_store(name, config=config))


async def delete_consumer(js: JetStreamContext, stream: str, name: str) -> None:
    """Delete a durable consumer if it exists."""
    try:
        await js.delete_consumer(stream, name)
    except NotFoundError:
        pass


async def wait_for_stream(js: JetStreamContext, stream: str, what: str, poll_seconds: float = 0.5) -> None:
    """Return once `stream` exists (its owner declares it, maybe starting at the same time)."""
    waited = False
    while True:
        try:
            await js.stream_info(stream)
            return
        except NotFoundError:
            if not waited:
                log.info("waiting for its owner to declare %s", what)
                waited = True
            await asyncio.sleep(poll_seconds)


async def publish(
    js: JetStreamContext,
    subject: str,
    payload: bytes,
    msg_id: str | None = None,
    span_name: str = "",
    headers: dict[str, str] | None = None,
):
    """Publish under a PRODUCER span, with the W3C trace context in the headers."""
    with tracer.start_as_current_span(span_name or f"rag.nats.publish {subject}", kind=SpanKind.PRODUCER) as span:
        span.set_attributes(semconv.publish(subject, len(payload), msg_id))
        headers = dict(headers or {})
        propagate.inject(headers)
        if msg_id:
            headers["Nats-Msg-Id"] = msg_id
        ack = await js.publish(subject, payload, headers=headers)
        span.set_attribute(semconv.NATS_STREAM_SEQUENCE, ack.seq)
        return ack


@contextlib.contextmanager
def consume_span(name: str, msg, batch: list | None = None) -> Iterator[trace.Span]:
    """A CONSUMER span continuing the trace carried in the message headers; when one span covers
    a batch, it links to the trace of every other message in it."""
    context = propagate.extract(dict(msg.headers or {}))
    links = []
    for other in batch or []:
        if other is not msg:
            linked = trace.get_current_span(propagate.extract(dict(other.headers or {}))).get_span_context()
            if linked.is_valid:
                links.append(trace.Link(linked))
    with tracer.start_as_current_span(name, context=context, kind=SpanKind.CONSUMER, links=links) as span:
        span.set_attributes(semconv.process(msg, batch))
        yield span


@contextlib.contextmanager
def continued(msg) -> Iterator[None]:
    """Make the trace carried by a message current (for work done on its behalf inside a batch)."""
    token = otel_context.attach(propagate.extract(dict(msg.headers or {})))
    try:
        yield
    finally:
        otel_context.detach(token)


def delivery_count(msg) -> int:
    try:
        return int(msg.metadata.num_delivered)
    except Exception:
        return 1


async def kv_values(js: JetStreamContext, bucket: str, keys: str = ">") -> list[bytes]:
    """The current value of every key of `bucket` matching `keys` (deleted keys left out)."""
    return [value for _, value in await kv_items(js, bucket, keys)]


async def kv_items(js: JetStreamContext, bucket: str, keys: str = ">") -> list[tuple[str, bytes]]:
    """(key, current value) of every key of `bucket` matching `keys` (deleted keys left out).

    Every key that exists when the listing starts is in it. The values are read in one pass by a
    consumer; a key written meanwhile can be missing from that pass (its older value leaves the
    stream before it is read, and the server's count of what is pending can end the pass before
    the newer one), so the bucket's subjects are listed afterwards and what the pass missed is
    read key by key."""
    seen = await _kv_pass(js, bucket, keys)
    missed = [key for key in await kv_keys(js, bucket, keys) if key not in seen]
    for start in range(0, len(missed), 64):
        batch = missed[start : start + 64]
        values = await asyncio.gather(*(_kv_last(js, bucket, key) for key in batch))
        seen.update(zip(batch, values, strict=True))
    return [(key, value) for key, value in seen.items() if value is not None]


async def kv_keys(js: JetStreamContext, bucket: str, keys: str = ">") -> list[str]:
    """Every key of `bucket` matching `keys` that has a message (a deletion marker counts), from the
    stream's subjects, page by page (nats-py asks for the first page only)."""
    prefix, found = f"$KV.{bucket}.", []
    while True:
        request = json.dumps({"subjects_filter": prefix + keys, "offset": len(found)}).encode()
        reply = json.loads((await js._nc.request(f"{js._prefix}.STREAM.INFO.KV_{bucket}", request, timeout=10)).data)
        if "error" in reply:
            APIError.from_error(reply["error"])  # raises the error's own class (NotFoundError, ...)
        page = list((reply.get("state") or {}).get("subjects") or {})
        found += [subject.removeprefix(prefix) for subject in page]
        if not page or len(found) >= reply.get("total", 0):
            return found


async def _kv_last(js: JetStreamContext, bucket: str, key: str) -> bytes | None:
    """A key's current value; None when it is deleted or gone."""
    try:
        msg = await js.get_last_msg(f"KV_{bucket}", f"$KV.{bucket}.{key}")
    except NotFoundError:
        return None
    return None if (msg.headers or {}).get("KV-Operation") in ("DEL", "PURGE") or not msg.data else msg.data


async def _kv_pass(js: JetStreamContext, bucket: str, keys: str) -> dict[str, bytes | None]:
    """Key -> value (None: deleted) for the keys one consumer pass reads, from each key's last value.
    An ephemeral pull consumer delivers nothing until asked; nats-py's KV watch decides from a push
    consumer's count when the initial values are over, and can end before they arrive."""
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
        ack_policy=AckPolicy.NONE,
        inactive_threshold=30.0,
        mem_storage=True,
    )
    sub = await js.pull_subscribe(f"$KV.{bucket}.{keys}", stream=f"KV_{bucket}", config=config)
    seen: dict[str, bytes | None] = {}
    info = await sub.consumer_info()
    try:
        remaining = info.num_pending
        while remaining > 0:
            for msg in await sub.fetch(min(remaining, 256), timeout=10):
                remaining -= 1
                deleted = (msg.headers or {}).get("KV-Operation") in ("DEL", "PURGE") or not msg.data
                seen[msg.subject.removeprefix(f"$KV.{bucket}.")] = None if deleted else msg.data
    finally:
        try:
            await js.delete_consumer(f"KV_{bucket}", info.name)
        except (NotFoundError, TimeoutError):
            pass  # gone already, or NATS away: it expires on its own after inactive_threshold
        await sub.unsubscribe()
    return seen
