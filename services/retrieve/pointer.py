"""The index pointer in NATS KV: which generations exist, which one serves and which served
before. Every change is one compare-and-set on it, tried again over a concurrent change."""

import time

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from rag.v1 import retrieve_pb2
from services.common import natsio


async def read(kv: KeyValue) -> tuple[retrieve_pb2.IndexPointer | None, int]:
    """The pointer and its revision; None before the first retrieve started."""
    try:
        entry = await kv.get(natsio.INDEX_POINTER_KEY)
    except KeyNotFoundError:
        return None, 0
    return retrieve_pb2.IndexPointer.FromString(entry.value), entry.revision


async def ensure(kv: KeyValue) -> retrieve_pb2.IndexPointer:
    """The pointer, made with generation 1 active if nobody made it yet."""
    pointer, _ = await read(kv)
    if pointer is not None:
        return pointer
    first = retrieve_pb2.IndexPointer(
        active=1,
        generations=[retrieve_pb2.GenerationRecord(number=1, created_unix_ms=int(time.time() * 1000))],
        note="first generation",
        last_number=1,
    )
    try:
        await kv.create(natsio.INDEX_POINTER_KEY, first.SerializeToString())
    except KeyWrongLastSequenceError:
        pass  # another replica made it first
    pointer, _ = await read(kv)
    return pointer


async def change(kv: KeyValue, edit) -> retrieve_pb2.IndexPointer:
    """Apply `edit` (a function changing a pointer in place) by compare-and-set; the new pointer."""
    while True:
        current, revision = await read(kv)
        updated = retrieve_pb2.IndexPointer()
        updated.CopyFrom(current)
        edit(updated)
        updated.updated_unix_ms = int(time.time() * 1000)
        try:
            await kv.update(natsio.INDEX_POINTER_KEY, updated.SerializeToString(), last=revision)
        except KeyWrongLastSequenceError:
            continue
        return updated
