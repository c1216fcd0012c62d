"""Generation snapshots, so that the index stream can be bounded.

With embedded engines every replica applies the stream itself; a replica started after retention
removed the first events (a new replica, one away for longer than the retention) starts instead
from the newest snapshot of each generation and applies the stream from its watermark on.

One replica at a time (the holder of the snapshot lease) writes snapshots: it pauses a generation
between two batches, exports every document state and every stored chunk with its vector and
liveness to a local file, lets the generation go on, then uploads the file to the NATS Object
Store (bucket rag_snapshots). It then purges the index stream below what every generation's
newest snapshot and every index consumer have passed, so nothing a replica still needs goes.
"""

import asyncio
import contextlib
import logging
import struct
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from nats.js.object_store import ObjectStore
from prometheus_client import Counter, Gauge

from rag.v1 import retrieve_pb2
from services.common import natsio
from services.retrieve.backends.base import ChunkWrite, DocFields
from services.retrieve.state import state_from_proto, state_to_proto

log = logging.getLogger(__name__)

SNAPSHOT_WATERMARK = Gauge("ragmesh_index_snapshot_watermark", "Watermark of the newest snapshot.", ["generation"])
SNAPSHOTS = Counter("ragmesh_index_snapshots_total", "Generation snapshots written.", ["generation"])
PURGED = Counter("ragmesh_index_stream_purged_total", "Index-stream events purged once every reader passed them.")
LENGTH = struct.Struct(">I")


def snapshot_name(number: int, watermark: int) -> str:
    return f"g{number}/{watermark:020d}"


def parse_name(name: str) -> tuple[int, int] | None:
    generation, _, watermark = name.partition("/")
    if not generation.startswith("g") or not generation[1:].isdigit() or not watermark.isdigit():
        return None
    return int(generation[1:]), int(watermark)


async def snapshots_of(objects: ObjectStore, number: int) -> list[tuple[int, str]]:
    """(watermark, name) of every snapshot of generation `number`, oldest first."""
    try:
        infos = await objects.list(ignore_deletes=True)
    except NotFoundError:  # an empty bucket
        return []
    found = [(parse_name(i.name), i.name) for i in infos]
    return sorted((parsed[1], name) for parsed, name in found if parsed and parsed[0] == number)


def _write_entry(out, entry: retrieve_pb2.SnapshotEntry) -> None:
    data = entry.SerializeToString()
    out.write(LENGTH.pack(len(data)))
    out.write(data)


def read_entries(path: Path) -> Iterator[retrieve_pb2.SnapshotEntry]:
    with open(path, "rb") as src:
        while head := src.read(LENGTH.size):
            (size,) = LENGTH.unpack(head)
            yield retrieve_pb2.SnapshotEntry.FromString(src.read(size))


def export_to(path: Path, generation, states: dict) -> retrieve_pb2.SnapshotHeader:
    """Write a generation's states and chunks to `path` (the generation is paused meanwhile)."""
    state = generation.state
    header = retrieve_pb2.SnapshotHeader(
        record=generation.record,
        watermark=state.watermark,
        embedding_model_id=state.model_id,
        chunker_versions=sorted(state.chunkers),
        schema_version=state.schema_version,
        created_unix_ms=int(time.time() * 1000),
        documents=len(states),
    )
    with open(path, "wb") as out:
        _write_entry(out, retrieve_pb2.SnapshotEntry(header=header))
        for (tenant, doc_id), doc in states.items():
            document = retrieve_pb2.SnapshotDocument(tenant=tenant, doc_id=doc_id, state=state_to_proto(doc))
            _write_entry(out, retrieve_pb2.SnapshotEntry(document=document))
        for batch in generation.dense.export(512):
            chunks = retrieve_pb2.SnapshotChunks(dimension=len(batch[0][1]) if batch else 0)
            for chunk, vector, live in batch:
                chunks.chunks.append(chunk)
                chunks.vectors.extend(vector)
                chunks.live.append(live)
            header.chunks += len(batch)
            _write_entry(out, retrieve_pb2.SnapshotEntry(chunks=chunks))
    return header


def import_from(path: Path, generation) -> tuple[retrieve_pb2.SnapshotHeader, dict]:
    """Fill an empty generation's engines from a snapshot file; its header and document states."""
    header, states = None, {}
    for entry in read_entries(path):
        kind = entry.WhichOneof("entry")
        if kind == "header":
            header = entry.header
        elif kind == "document":
            states[(entry.document.tenant, entry.document.doc_id)] = state_from_proto(entry.document.state)
        else:
            part, size = entry.chunks, entry.chunks.dimension
            writes = []
            for i, (chunk, live) in enumerate(zip(part.chunks, part.live, strict=True)):
                doc = states.get((chunk.tenant, chunk.doc_id))
                fields = doc.fields if doc else DocFields.of("", chunk.acl, chunk.metadata)
                writes.append(ChunkWrite(chunk, fields, live, tuple(part.vectors[i * size : (i + 1) * size])))
            generation.dense.upsert(writes)
            generation.lexical.upsert(writes)
    generation.lexical.commit()
    generation.dense.commit()
    if header is None:
        raise ValueError(f"{path} is not a generation snapshot")
    return header, states


async def write(objects: ObjectStore, generation, keep: int = 2) -> retrieve_pb2.SnapshotHeader:
    """Snapshot `generation` (which this replica writes) and keep its `keep` newest snapshots."""
    with tempfile.TemporaryDirectory(prefix="ragmesh-snapshot-") as folder:
        path = Path(folder) / "snapshot"
        async with generation.consumer.paused():
            states = await generation.state.all_states()
            header = await asyncio.to_thread(export_to, path, generation, states)
        with open(path, "rb") as data:  # noqa: ASYNC230 - a local file, read by the upload in chunks
            await objects.put(snapshot_name(generation.number, header.watermark), data)
    for _, name in (await snapshots_of(objects, generation.number))[:-keep]:
        with contextlib.suppress(NotFoundError):
            await objects.delete(name)
    SNAPSHOTS.labels(str(generation.number)).inc()
    SNAPSHOT_WATERMARK.labels(str(generation.number)).set(header.watermark)
    log.info(
        "index snapshot written",
        extra={"fields": {"generation": generation.number, "watermark": header.watermark, "chunks": header.chunks}},
    )
    return header


async def restore(objects: ObjectStore, generation) -> bool:
    """Start an empty generation from its newest snapshot; False when there is none."""
    found = await snapshots_of(objects, generation.number)
    if not found:
        return False
    watermark, name = found[-1]
    with tempfile.TemporaryDirectory(prefix="ragmesh-snapshot-") as folder:
        path = Path(folder) / "snapshot"
        with open(path, "wb") as out:  # noqa: ASYNC230 - the download writes into it in chunks
            await objects.get(name, writeinto=out)
        header, states = await asyncio.to_thread(import_from, path, generation)
    await generation.state.commit(header.watermark, header.embedding_model_id, states, header.chunker_versions)
    log.info(
        "index generation started from a snapshot",
        extra={"fields": {"generation": generation.number, "watermark": watermark, "chunks": header.chunks}},
    )
    return True


async def purge_bound(js: JetStreamContext, objects: ObjectStore | None, numbers: list[int]) -> int:
    """The first index-stream sequence some reader may still need: below every consumer's ack
    floor and (with snapshots) below every generation's newest snapshot."""
    bounds = []
    for info in await js.consumers_info(natsio.STREAM_INDEX.name):
        bounds.append(info.ack_floor.stream_seq + 1)
    if objects is not None:
        for number in numbers:
            found = await snapshots_of(objects, number)
            bounds.append(found[-1][0] + 1 if found else 1)
    return min(bounds, default=1)


async def purge(js: JetStreamContext, bound: int) -> int:
    """Remove index-stream events below `bound`; how many went."""
    before = (await js.stream_info(natsio.STREAM_INDEX.name)).state.first_seq
    if bound <= before:
        return 0
    await js.purge_stream(natsio.STREAM_INDEX.name, seq=bound)
    PURGED.inc(bound - before)
    log.info("index stream purged", extra={"fields": {"below": bound, "events": bound - before}})
    return bound - before
