"""A new generation started from a copy of another instead of from the first event of the index
stream, which retention may have removed: every stored chunk (vector, liveness) and every document
state (tombstones included) at the source's watermark; the new generation then applies the stream
from there. The source holds still meanwhile (its writer pauses between batches); searches go on."""

import asyncio
import logging

from services.retrieve.backends.base import ChunkWrite, DocFields
from services.retrieve.plan import DocState

log = logging.getLogger(__name__)


def copy_chunks(source_dense, target_dense, target_lexical, states: dict, batch: int = 512) -> int:
    copied = 0
    for entries in source_dense.export(batch):
        writes = []
        for chunk, vector, live in entries:
            state = states.get((chunk.tenant, chunk.doc_id))
            fields = state.fields if state else DocFields.of("", chunk.acl, chunk.metadata)
            writes.append(ChunkWrite(chunk, fields, live, tuple(vector)))
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
