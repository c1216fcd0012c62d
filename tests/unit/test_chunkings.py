"""Which chunkings the workers write and which events a generation applies; what a re-chunk queues."""

from rag.v1 import events_pb2, retrieve_pb2, types_pb2
from services.common.chunking import applies_to, chunkings_to_write, label
from services.ingest.job_records import shown
from services.ingest.rechunk import rechunk_versions
from services.retrieve.control import missing_documents

CONFIGURED = types_pb2.Chunking(target_tokens=200, overlap_tokens=24, chunker_version="structure-v1")
SMALL = types_pb2.Chunking(target_tokens=48, overlap_tokens=8)
S = types_pb2.DocumentStatus


def pointer(active: int, *records: retrieve_pb2.GenerationRecord) -> retrieve_pb2.IndexPointer:
    return retrieve_pb2.IndexPointer(active=active, generations=list(records))


def test_workers_write_each_distinct_chunking_the_active_generations_first():
    plain = retrieve_pb2.GenerationRecord(number=1)
    small = retrieve_pb2.GenerationRecord(number=2, rechunk=True, chunking=SMALL)
    rechunked_configured = retrieve_pb2.GenerationRecord(number=3, rechunk=True)
    assert [label(c) for c in chunkings_to_write(None, CONFIGURED)] == ["200-24"]
    assert [label(c) for c in chunkings_to_write(pointer(1, plain), CONFIGURED)] == ["200-24"]
    assert [label(c) for c in chunkings_to_write(pointer(1, plain, small), CONFIGURED)] == ["200-24", "48-8"]
    assert [label(c) for c in chunkings_to_write(pointer(2, plain, small), CONFIGURED)] == ["48-8", "200-24"]
    assert [label(c) for c in chunkings_to_write(pointer(2, small), CONFIGURED)] == ["48-8"]
    # Two generations of one chunking share one set of chunks.
    both = chunkings_to_write(pointer(1, plain, rechunked_configured), CONFIGURED)
    assert [label(c) for c in both] == ["200-24"]
    same_sizes_named = retrieve_pb2.GenerationRecord(
        number=4, rechunk=True, chunking=types_pb2.Chunking(target_tokens=200, overlap_tokens=24)
    )
    assert [label(c) for c in chunkings_to_write(pointer(1, plain, same_sizes_named), CONFIGURED)] == ["200-24"]


def test_a_generation_applies_its_chunkings_chunks_and_every_removal():
    plain = retrieve_pb2.GenerationRecord(number=1)
    small = retrieve_pb2.GenerationRecord(number=2, rechunk=True, chunking=SMALL)
    upsert = events_pb2.ChunkUpserts()
    configured_event = events_pb2.IndexBatch(upserts=upsert, chunking=CONFIGURED, configured_chunking=True)
    small_event = events_pb2.IndexBatch(upserts=upsert, chunking=SMALL)
    legacy_event = events_pb2.IndexBatch(activate=events_pb2.ActivateVersion(version=1))
    removal = events_pb2.IndexBatch(remove=events_pb2.RemoveDocumentChunks())
    metadata = events_pb2.IndexBatch(update_metadata=events_pb2.UpdateMetadata(title="t"))
    assert applies_to(plain, configured_event) and not applies_to(plain, small_event)
    assert applies_to(small, small_event) and not applies_to(small, configured_event)
    assert applies_to(plain, legacy_event) and not applies_to(small, legacy_event)
    for generation in (plain, small):
        assert applies_to(generation, removal) and applies_to(generation, metadata)
    # A generation naming the configured sizes takes the configured chunks.
    named = retrieve_pb2.GenerationRecord(
        number=3, rechunk=True, chunking=types_pb2.Chunking(target_tokens=200, overlap_tokens=24)
    )
    assert applies_to(named, configured_event)


def record(status, current: int, indexed: int, *versions) -> types_pb2.DocumentRecord:
    entries = [types_pb2.DocumentVersion(version=v, status=s) for v, s in versions]
    return types_pb2.DocumentRecord(status=status, current_version=current, indexed_version=indexed, versions=entries)


def test_a_rechunk_queues_the_shown_version_and_one_still_on_its_way():
    assert rechunk_versions(record(S.DOCUMENT_STATUS_INDEXED, 1, 1, (1, S.DOCUMENT_STATUS_INDEXED))) == [1]
    on_its_way = record(
        S.DOCUMENT_STATUS_PROCESSING, 2, 1, (1, S.DOCUMENT_STATUS_INDEXED), (2, S.DOCUMENT_STATUS_PROCESSING)
    )
    assert rechunk_versions(on_its_way) == [1, 2]
    failed = record(S.DOCUMENT_STATUS_FAILED, 2, 1, (1, S.DOCUMENT_STATUS_INDEXED), (2, S.DOCUMENT_STATUS_FAILED))
    assert rechunk_versions(failed) == [1]
    assert rechunk_versions(record(S.DOCUMENT_STATUS_QUEUED, 1, 0, (1, S.DOCUMENT_STATUS_QUEUED))) == [1]
    assert rechunk_versions(record(S.DOCUMENT_STATUS_DELETED, 1, 0, (1, S.DOCUMENT_STATUS_INDEXED))) == []
    never = record(S.DOCUMENT_STATUS_FAILED, 1, 0, (1, S.DOCUMENT_STATUS_FAILED))
    assert rechunk_versions(never) == []


def test_a_rechunk_job_is_moot_once_its_version_is_neither_current_nor_shown():
    replaced = record(S.DOCUMENT_STATUS_INDEXED, 3, 3, (1, 0), (2, 0), (3, 0))
    assert shown(replaced, 3) and not shown(replaced, 2)
    assert shown(record(S.DOCUMENT_STATUS_PROCESSING, 2, 1), 1)
    assert not shown(record(S.DOCUMENT_STATUS_DELETED, 1, 0), 1) and not shown(None, 1)


def test_missing_documents_counts_what_the_reference_shows_and_the_candidate_does_not():
    reference = {("t", "a"): 1, ("t", "b"): 2, ("u", "a"): 1}
    candidate = {("t", "a"): 1, ("t", "b"): 1, ("t", "z"): 4}
    assert missing_documents(reference, candidate) == 2
    assert missing_documents(reference, reference) == 0
