"""What index events do to a generation, as pure functions.

A generation keeps one DocState per document: the version searches see, the tombstone below which
every version is deleted for good, and the document's fields (ACL, metadata, title) with the
revision that ordered them. Events change states only forwards:

- an activation of v makes v visible and retires versions below v, never newer ones, and is a
  no-op once v (or something newer) is active or v is under the tombstone;
- a removal through v is a tombstone: nothing at or below v is written or shown again, whatever
  arrives later (a redelivery, a replay, a job that was still running);
- fields with a newer revision apply to every stored chunk of the document and to every chunk
  written later with older fields, so an ACL narrowed while a version is being written holds;
- chunks of a version that is stale on arrival are dropped.

`plan` folds a batch of events, in stream order, into the new states and one DocWrite per
document that carries the change out. Applying a plan twice, or applying it again after some of
its writes took effect, leaves the engines the same: the index apply logic is idempotent.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from rag.v1 import events_pb2, types_pb2
from services.retrieve.backends.base import ChunkWrite, DocFields

Key = tuple[str, str]  # (tenant, doc_id)


@dataclass(frozen=True)
class DocState:
    active: int = 0  # the version searches see; 0: none
    floor: int = 0  # every version up to this one is deleted for good
    highest: int = 0  # the newest version any event named
    fields: DocFields = DocFields()

    @property
    def retired_below(self) -> int:
        """Chunks of versions below this one are gone from the engines."""
        return max(self.active, self.floor + 1)

    def stale(self, version: int) -> bool:
        return version <= self.floor or version < self.active


@dataclass(frozen=True)
class Upsert:
    version: int
    chunks: tuple[types_pb2.Chunk, ...]
    vectors: tuple[tuple[float, ...], ...]
    fields: DocFields


@dataclass(frozen=True)
class Activate:
    version: int
    chunk_count: int = 0
    job_id: str = ""
    rechunk: bool = False  # written for a new generation: the version was announced when first indexed
    records: events_pb2.IngestRecords | None = None  # ingest's, returned untouched in DocumentIndexed


@dataclass(frozen=True)
class Remove:
    through: int  # 0: events written before removals named a version mean every version so far


@dataclass(frozen=True)
class SetFields:
    fields: DocFields


Op = Upsert | Activate | Remove | SetFields


@dataclass
class DocWrite:
    """The engine writes that take one document from its old state to its new one."""

    key: Key
    fields: DocFields  # the document's fields after the batch: every chunk written carries them
    rewrite_fields: bool = False  # stored chunks take `fields`
    live_version: int = 0  # stored chunks of this version become live
    upserts: list[ChunkWrite] = field(default_factory=list)
    retire_below: int = 0  # delete stored chunks of versions below this; 0: nothing

    @property
    def rewrites(self) -> bool:
        return self.rewrite_fields or bool(self.live_version)


@dataclass
class Plan:
    states: dict[Key, DocState]  # the new state of every document the batch touched
    writes: list[DocWrite]
    in_effect: list[int]  # positions of activations whose version is active once they are applied


def newer_fields(current: DocFields, incoming: DocFields) -> DocFields:
    """Fields with a higher revision win. Events written before revisions existed carry 0: the
    last of them wins, as it did when they were written."""
    if incoming.revision > current.revision or incoming.revision == current.revision == 0:
        return incoming
    return current


def step(state: DocState, op: Op) -> DocState:
    """One event's effect on a document's state."""
    if isinstance(op, Upsert):
        return replace(state, fields=newer_fields(state.fields, op.fields), highest=max(state.highest, op.version))
    if isinstance(op, SetFields):
        return replace(state, fields=newer_fields(state.fields, op.fields))
    if isinstance(op, Activate):
        highest = max(state.highest, op.version)
        if state.stale(op.version) or op.version == state.active:
            return replace(state, highest=highest)
        return replace(state, active=op.version, highest=highest)
    through = op.through or state.highest
    if through <= state.floor:
        return state
    return replace(state, floor=through, active=0 if state.active <= through else state.active)


def plan(states: Mapping[Key, DocState], events: Sequence[tuple[Key, Op]]) -> Plan:
    """Fold `events` (in stream order) into new states and the writes that carry them out."""
    before = {key: states.get(key, DocState()) for key, _ in events}
    after = dict(before)
    chunks: dict[Key, dict[str, tuple[types_pb2.Chunk, tuple[float, ...]]]] = {}
    in_effect = []
    for position, (key, op) in enumerate(events):
        after[key] = step(after[key], op)
        if isinstance(op, Upsert) and not after[key].stale(op.version):
            written = chunks.setdefault(key, {})
            for chunk, vector in zip(op.chunks, op.vectors, strict=True):
                written[chunk.chunk_id] = (chunk, vector)
        if isinstance(op, Activate) and after[key].active == op.version:
            in_effect.append(position)
    writes = []
    for key, old in before.items():
        new = after[key]
        write = DocWrite(key, new.fields, rewrite_fields=new.fields != old.fields)
        if new.active and new.active != old.active:
            write.live_version = new.active
        write.upserts = [
            ChunkWrite(chunk, new.fields, chunk.version == new.active, vector)
            for chunk, vector in chunks.get(key, {}).values()
            if not new.stale(chunk.version)
        ]
        if new.retired_below > old.retired_below:
            write.retire_below = new.retired_below
        if write.rewrites or write.upserts or write.retire_below:
            writes.append(write)
    return Plan({k: v for k, v in after.items() if v != before[k]}, writes, in_effect)


# -- events as operations ---------------------------------------------------------------------


def event_fields(event: events_pb2.IndexBatch) -> DocFields:
    """The document fields an upsert carries: once per event, or (events written before that)
    copied on every chunk."""
    upserts = event.upserts
    if upserts.HasField("fields"):
        f = upserts.fields
        return DocFields.of(f.title, f.acl, f.metadata, f.revision)
    first = upserts.chunks[0] if upserts.chunks else types_pb2.Chunk()
    return DocFields.of("", first.acl, first.metadata)


def decode(event: events_pb2.IndexBatch) -> list[tuple[Key, Op]]:
    """An index event as (document, operation) pairs, in the order they take effect: none for an
    event without an operation; an upsert of a version's only chunks that activates it is the
    upsert followed by the activation, exactly as the two events one after the other."""
    key = (event.tenant, event.doc_id)
    kind = event.WhichOneof("op")
    if kind == "upserts":
        chunks = tuple(event.upserts.chunks)
        rows = np.asarray(event.upserts.vectors, dtype=np.float32).reshape(len(chunks), event.upserts.dimension)
        version = event.upserts.version or (chunks[0].version if chunks else 0)
        ops: list[tuple[Key, Op]] = [
            (key, Upsert(version, chunks, tuple(tuple(r) for r in rows.tolist()), event_fields(event)))
        ]
        if event.upserts.HasField("activate"):
            ops.append((key, activation(event, event.upserts.activate)))
        return ops
    if kind == "activate":
        return [(key, activation(event, event.activate))]
    if kind == "remove":
        return [(key, Remove(event.remove.through_version))]
    if kind == "update_metadata":
        u = event.update_metadata
        return [(key, SetFields(DocFields.of(u.title, u.acl, u.metadata, u.revision)))]
    return []


def activation(event: events_pb2.IndexBatch, a: events_pb2.ActivateVersion) -> Activate:
    return Activate(a.version, a.chunk_count, event.job_id, a.rechunk, a.records if a.HasField("records") else None)


def activated(event: events_pb2.IndexBatch) -> events_pb2.ActivateVersion | None:
    """The activation an event carries, alone or after its upserts; None for none."""
    if event.WhichOneof("op") == "activate":
        return event.activate
    if event.WhichOneof("op") == "upserts" and event.upserts.HasField("activate"):
        return event.upserts.activate
    return None
