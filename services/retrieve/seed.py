"""A new generation started from a copy of another instead of from the first event of the index
stream, which retention may have removed: every stored chunk (vector, liveness) and every document
state (tombstones included) at the source's watermark; the new generation then applies the stream
from there. The source holds still meanwhile (its writer pauses between batches); searches go on.

A generation of another embedding model starts the same way, with every chunk re-embedded from its
text instead of its vector copied. The source holds still only while its chunks are read; the
re-embedding runs after, while the source goes on applying the stream and serving."""

import asyncio
import logging
import time

from services.retrieve.backends.base import ChunkWrite, DocFields
from services.retrieve.consumer import NotWriter
from services.retrieve.plan import DocState
from services.retrieve.reembed import Reembedder

log = logging.getLogger(__name__)


def chunk_write(chunk, vector, live: bool, states: dict) -> ChunkWrite:
    state = states.get((chunk.tenant, chunk.doc_id))
    fields = state.fields if state else DocFields.of("", chunk.acl, chunk.metadata)
    return ChunkWrite(chunk, fields, live, tuple(vector))


def copy_chunks(source_dense, target_dense, target_lexical, states: dict, batch: int = 512) -> int:
    copied = 0
    for entries in source_dense.export(batch):
        writes = [chunk_write(chunk, vector, live, states) for chunk, vector, live in entries]
        target_dense.upsert(writes)
        target_lexical.upsert(writes)
        copied += len(writes)
    target_lexical.commit()
    target_dense.commit()
    return copied


async def seed_from(source, target) -> None:
    """Copy generation `source` into the empty generation `target` (both Generation objects)."""
    async with source.consumer.paused():
        states: dict[tuple[str, str], DocState] = await source.state.all_states()
        copied = await asyncio.to_thread(copy_chunks, source.dense, target.dense, target.lexical, states)
        await target.state.commit(source.state.watermark, source.state.model_id, states, source.state.chunkers)
    log.info(
        "index generation started from a copy",
        extra={"fields": {"from": source.number, "to": target.number, "chunks": copied, "documents": len(states)}},
    )


def check_writer(may_write) -> None:
    if not may_write():
        raise NotWriter("this replica no longer holds the writer lease")


def read_chunks(dense, batch: int = 512) -> list[tuple[object, bool]]:
    """Every stored chunk and whether it is live; vectors left behind."""
    return [(chunk, live) for entries in dense.export(batch) for chunk, _, live in entries]


def write_chunks(dense, lexical, writes: list[ChunkWrite]) -> None:
    dense.upsert(writes)
    lexical.upsert(writes)


async def reembed_from(
    source, target, reembedder: Reembedder, model_id: str, batch: int = 256, may_write=lambda: True
) -> int:
    """Fill the empty generation `target` with `source`'s chunks embedded again by `model_id`, and
    its document states at the watermark the chunks were read at; `target` applies the stream
    from there. Returns the number of chunks. `may_write` is asked before every write: with shared
    engines, a replica that lost the writer lease stops (its successor starts again from empty)."""
    started = time.monotonic()
    async with source.consumer.paused():
        states: dict[tuple[str, str], DocState] = await source.state.all_states()
        watermark, chunkers = source.state.watermark, set(source.state.chunkers)
        chunks = await asyncio.to_thread(read_chunks, source.dense)
    for start in range(0, len(chunks), batch):
        part = chunks[start : start + batch]
        vectors = await reembedder.vectors([chunk for chunk, _ in part], model_id, "seed")
        writes = [chunk_write(chunk, vector, live, states) for (chunk, live), vector in zip(part, vectors, strict=True)]
        check_writer(may_write)
        await asyncio.to_thread(write_chunks, target.dense, target.lexical, writes)
    await asyncio.to_thread(target.lexical.commit)
    await asyncio.to_thread(target.dense.commit)
    check_writer(may_write)
    await target.state.commit(watermark, model_id, states, chunkers)
    seconds = time.monotonic() - started
    log.info(
        "index generation started from re-embedded chunks",
        extra={
            "fields": {
                "from": source.number,
                "to": target.number,
                "model": model_id,
                "chunks": len(chunks),
                "documents": len(states),
                "seconds": round(seconds, 2),
                "chunks_per_s": round(len(chunks) / max(seconds, 1e-6), 1),
            }
        },
    )
    return len(chunks)
