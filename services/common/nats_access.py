"""Who may do what in NATS: each service is a NATS user (named after the service) allowed only the
subjects of the streams, buckets and object stores it uses, in the ways it uses them. The grants
below are the one list; the server's permissions (`ragmesh up`, the Kubernetes manifests) are
generated from them. Adding a subject, stream or bucket to a service is one line here.

Each service declares (creates, updates) only what it owns; what it uses from others it waits for.
Every user subscribes only to its own inbox prefix, so no service reads replies meant for another.
generate and embed have no NATS user: they never talk to NATS.
"""

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Stream:
    name: str
    publish: tuple[str, ...] = ()  # subjects this service appends to the stream
    consume: bool = False  # consumers (durable or not), fetch, ack
    purge: bool = False
    owner: bool = False  # declares it


@dataclass(frozen=True)
class Bucket:  # a KV bucket
    name: str
    write: bool = False  # put, create, update, delete keys
    listing: bool = False  # read every key at once (a consumer on the bucket)
    owner: bool = False
    purge: bool = False  # remove keys by subject (a dropped generation's states)


@dataclass(frozen=True)
class Objects:  # an object store
    name: str
    write: bool = False
    owner: bool = False


@dataclass(frozen=True)
class Account:  # the JetStream account as a whole
    info: bool = False  # its storage in use and its limits (ingest reports them to Prometheus)


Grant = Stream | Bucket | Objects | Account

GRANTS: dict[str, tuple[Grant, ...]] = {
    "gateway": (
        Stream("RAG_AUDIT", publish=("rag.audit.>",), owner=True),
        Bucket("rag_keys", write=True, listing=True, owner=True),  # the gateway alone writes keys
        Bucket("rag_answers", write=True, owner=True),
        Bucket("rag_usage", write=True, owner=True),
        Bucket("rag_conversations", write=True, owner=True),  # turns kept per tenant and key
        Objects("rag_audit", write=True, owner=True),
    ),
    "ingest": (
        Stream("RAG_JOBS", publish=("rag.jobs.>",), consume=True, owner=True),
        Stream("RAG_DLQ", publish=("rag.dlq.>",), owner=True),
        Stream("RAG_INDEX", publish=("rag.index.>",)),
        Stream("RAG_EVENTS", consume=True),
        Bucket("rag_docs", write=True, listing=True, owner=True),
        Bucket("rag_jobs", write=True, owner=True),
        Bucket("rag_usage", write=True),
        Bucket("rag_index"),  # which generations exist, and their chunkings
        Objects("rag_raw", write=True, owner=True),
        Objects("rag_chunk_cache", write=True, owner=True),  # parsed chunks of jobs in progress
        Account(info=True),
    ),
    "retrieve": (
        Stream("RAG_INDEX", consume=True, purge=True, owner=True),  # nobody else consumes it
        Stream("RAG_EVENTS", publish=("rag.events.>",), owner=True),
        Bucket("rag_index", write=True, owner=True),  # the generation pointer, writer and snapshot leases
        Bucket("rag_index_state", write=True, listing=True, owner=True, purge=True),
        Objects("rag_snapshots", write=True, owner=True),
    ),
}

API = "$JS.API"


def inbox_prefix(user: str) -> str:
    return f"_INBOX_{user}"


def _stream_subjects(stream: str, owner: bool) -> list[str]:
    subjects = [f"{API}.STREAM.INFO.{stream}"]
    if owner:
        subjects += [f"{API}.STREAM.CREATE.{stream}", f"{API}.STREAM.UPDATE.{stream}"]
    return subjects


def _consumer_subjects(stream: str) -> list[str]:
    return [
        f"{API}.CONSUMER.CREATE.{stream}",
        f"{API}.CONSUMER.CREATE.{stream}.>",
        f"{API}.CONSUMER.DURABLE.CREATE.{stream}.>",
        f"{API}.CONSUMER.INFO.{stream}.>",
        f"{API}.CONSUMER.DELETE.{stream}.>",
        f"{API}.CONSUMER.MSG.NEXT.{stream}.>",
        f"{API}.CONSUMER.LIST.{stream}",
        f"$JS.ACK.{stream}.>",
        f"$JS.FC.{stream}.>",
    ]


def _read_subjects(stream: str) -> list[str]:
    return [f"{API}.DIRECT.GET.{stream}", f"{API}.DIRECT.GET.{stream}.>", f"{API}.STREAM.MSG.GET.{stream}"]


def stream_name(grant: Stream | Bucket | Objects) -> str:
    """The JetStream stream that holds what the grant names (a bucket's or object store's too)."""
    if isinstance(grant, Bucket):
        return f"KV_{grant.name}"
    if isinstance(grant, Objects):
        return f"OBJ_{grant.name}"
    return grant.name


def streams(user: str) -> list[str]:
    """Every stream `user` may read the information of."""
    return [stream_name(g) for g in GRANTS[user] if not isinstance(g, Account)]


def subjects(grant: Grant) -> list[str]:
    """The subjects a grant lets its user publish to (requests to the JetStream API included)."""
    if isinstance(grant, Account):
        return [f"{API}.INFO"] if grant.info else []
    if isinstance(grant, Stream):
        found = _stream_subjects(grant.name, grant.owner) + list(grant.publish)
        if grant.consume:
            found += _consumer_subjects(grant.name)
        if grant.purge:
            found.append(f"{API}.STREAM.PURGE.{grant.name}")
        return found
    if isinstance(grant, Bucket):
        stream = f"KV_{grant.name}"
        found = _stream_subjects(stream, grant.owner) + _read_subjects(stream)
        if grant.write:
            found.append(f"$KV.{grant.name}.>")
        if grant.listing:
            found += _consumer_subjects(stream)
        if grant.purge:
            found.append(f"{API}.STREAM.PURGE.{stream}")
        return found
    stream = f"OBJ_{grant.name}"
    # Reading an object runs an ordered consumer over its chunks, found by subject (stream names).
    found = _stream_subjects(stream, grant.owner) + _read_subjects(stream) + _consumer_subjects(stream)
    found.append(f"{API}.STREAM.NAMES")
    if grant.write:
        found += [f"$O.{grant.name}.>", f"{API}.STREAM.PURGE.{stream}"]
    return found


def permissions(user: str) -> dict:
    publish: list[str] = []
    for grant in GRANTS[user]:
        publish += [s for s in subjects(grant) if s not in publish]
    return {"publish": {"allow": publish}, "subscribe": {"allow": [f"{inbox_prefix(user)}.>"]}}


def owns(user: str, resource: str) -> bool:
    """Whether `user` declares the stream, bucket or object store named `resource`."""
    return any(getattr(g, "name", None) == resource and g.owner for g in GRANTS[user])


def uses(user: str, resource: str) -> bool:
    return any(getattr(g, "name", None) == resource for g in GRANTS[user])


def authorization(passwords: dict[str, str]) -> str:
    """The nats-server `authorization` block: one user per service, with its permissions. A password
    is a literal, or `$NAME` to have the server read it from its environment (Kubernetes Secrets)."""
    lines = ["authorization {", "  users: ["]
    for user in GRANTS:
        password = passwords[user]
        allowed = permissions(user)
        lines += [
            "    {",
            f"      user: {json.dumps(user)}",
            f"      password: {password if password.startswith('$') else json.dumps(password)}",
            "      permissions: {",
            "        publish: {allow: [",
            *(f"          {json.dumps(subject)}" for subject in allowed["publish"]["allow"]),
            "        ]}",
            f"        subscribe: {{allow: {json.dumps(allowed['subscribe']['allow'])}}}",
            "      }",
            "    }",
        ]
    return "\n".join([*lines, "  ]", "}"]) + "\n"
