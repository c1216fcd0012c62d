"""Which chunking each index generation holds, and so which chunks the ingest workers write and
which index events a generation applies. Pure functions over the protobuf records.

A generation without a chunking of its own holds the workers' configured one
(RAGMESH_CHUNK_TARGET_TOKENS/OVERLAP); a re-chunked generation may name other sizes. Workers write
one set of chunks per distinct chunking the generations hold, each event tagged with it.
"""

from rag.v1 import events_pb2, retrieve_pb2, types_pb2

CHUNK_OPS = frozenset({"upserts", "activate"})


def same_sizes(a: types_pb2.Chunking, b: types_pb2.Chunking) -> bool:
    return (a.target_tokens, a.overlap_tokens) == (b.target_tokens, b.overlap_tokens)


def label(chunking: types_pb2.Chunking) -> str:
    """e.g. `200-24`: part of message ids and object names."""
    return f"{chunking.target_tokens}-{chunking.overlap_tokens}"


def held(record: retrieve_pb2.GenerationRecord, configured: types_pb2.Chunking) -> types_pb2.Chunking:
    return record.chunking if record.HasField("chunking") else configured


def same_chunking(a: retrieve_pb2.GenerationRecord, b: retrieve_pb2.GenerationRecord) -> bool:
    """Whether two generations hold the same chunking (unset means the workers' configured one)."""
    if a.HasField("chunking") != b.HasField("chunking"):
        return False
    return not a.HasField("chunking") or same_sizes(a.chunking, b.chunking)


def chunkings_to_write(
    pointer: retrieve_pb2.IndexPointer | None, configured: types_pb2.Chunking
) -> list[types_pb2.Chunking]:
    """Distinct chunkings the generations hold, the active generation's first; just the configured
    one when there is no pointer yet."""
    if pointer is None or not pointer.generations:
        return [configured]
    records = sorted(pointer.generations, key=lambda r: r.number != pointer.active)
    chosen: list[types_pb2.Chunking] = []
    for record in records:
        chunking = held(record, configured)
        if not any(same_sizes(chunking, c) for c in chosen):
            chosen.append(chunking)
    return chosen


def applies_to(record: retrieve_pb2.GenerationRecord, event: events_pb2.IndexBatch) -> bool:
    """Whether generation `record` applies `event`. Chunk upserts and activations belong to one
    chunking; removals and metadata updates concern every generation."""
    if event.WhichOneof("op") not in CHUNK_OPS:
        return True
    if record.HasField("chunking"):
        return event.HasField("chunking") and same_sizes(event.chunking, record.chunking)
    # Events written before chunkings were recorded are the configured chunking's.
    return event.configured_chunking or not event.HasField("chunking")


def chunking_problem(chunking: types_pb2.Chunking, max_tokens: int) -> str:
    """Why chunk sizes cannot be used with an embedding model of `max_tokens` inputs, or ""."""
    if not 16 <= chunking.target_tokens <= max_tokens:
        return f"chunking.target_tokens must be 16-{max_tokens} (the embedding model's limit)"
    if chunking.overlap_tokens > chunking.target_tokens // 2:
        return "chunking.overlap_tokens may be at most half of target_tokens"
    return ""
