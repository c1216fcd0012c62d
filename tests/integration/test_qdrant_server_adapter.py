"""The retrieve service's Qdrant server adapter (QdrantServerIndex) over the REST protocol: against
the local server (tests/qdrant_server.py) or a real Qdrant at RAGMESH_TEST_QDRANT_URL, it searches,
fetches, counts, retires and updates as it does over qdrant-client's local mode; a write the server
fails before applying it leaves nothing behind, one it fails after applying it is all there."""

import uuid

import numpy as np
import pytest
from qdrant_client import models
from qdrant_client.http.exceptions import UnexpectedResponse

from rag.v1 import types_pb2
from services.common.ids import chunk_id
from services.retrieve.backends.base import ChunkWrite, DocFields, SearchScope, parse_date
from services.retrieve.backends.qdrant_server import QdrantServerIndex

DIM = 8


def vector(seed: int) -> list[float]:
    v = np.random.default_rng(seed).normal(size=DIM)
    return (v / np.linalg.norm(v)).tolist()


def stored_fields(index: QdrantServerIndex) -> dict:
    points, _ = index.client.scroll(index.collection, limit=1000, with_payload=True)
    return {p.id: p.payload for p in points}


def status_and_error(exc: UnexpectedResponse) -> tuple[int, str]:
    return exc.status_code, exc.structured()["status"]["error"]


def chunk(tenant, doc_id, version=1, ordinal=0, acl=("public",), metadata=None) -> types_pb2.Chunk:
    return types_pb2.Chunk(
        chunk_id=chunk_id(tenant, doc_id, version, ordinal),
        tenant=tenant,
        doc_id=doc_id,
        version=version,
        ordinal=ordinal,
        text=f"{doc_id} part {ordinal}",
        title=doc_id,
        acl=list(acl),
        metadata=metadata or {},
    )


CHUNKS = [
    *(chunk("t1", "cats", ordinal=o) for o in range(3)),
    *(chunk("t1", "dogs", ordinal=o, acl=("team",)) for o in range(2)),
    chunk("t1", "news", metadata={"date": "2024-03-01", "lang": "en"}),
    chunk("t1", "old", metadata={"date": "2019-06-01", "lang": "de"}),
    *(chunk("t2", "cats", ordinal=o) for o in range(2)),
]


def adapter_vectors(chunks):
    return [vector(uuid.UUID(c.chunk_id).int % 10_000) for c in chunks]


def writes(chunks, live=True) -> list[ChunkWrite]:
    """Chunks as the index consumer writes them, each with its own ACL and metadata as fields."""
    return [
        ChunkWrite(c, DocFields.of("", c.acl, c.metadata), live, tuple(v))
        for c, v in zip(chunks, adapter_vectors(chunks), strict=True)
    ]


@pytest.fixture
def adapters(qdrant_url, qdrant_collection, tmp_path):
    remote = QdrantServerIndex(DIM, url=qdrant_url, collection=qdrant_collection)
    reference = QdrantServerIndex(DIM, path=str(tmp_path / "local"))
    for index in (remote, reference):
        index.open()
        index.upsert(writes(CHUNKS))
    yield remote, reference
    remote.close()
    reference.close()


def hits(index, query: int, scope: SearchScope) -> list[tuple[str, float]]:
    return [(h.chunk_id, h.score) for h in index.search(vector(query), scope, limit=20)]


def assert_same_hits(found, reference, label=""):
    assert [chunk for chunk, _ in found] == [chunk for chunk, _ in reference], label
    assert [score for _, score in found] == pytest.approx([score for _, score in reference], abs=1e-5), label


def test_adapter_searches_fetches_and_counts_as_local_mode(adapters):
    remote, reference = adapters
    scopes = {
        "tenant, public only": (SearchScope("t1", ()), 5),
        "tenant, with team acl": (SearchScope("t1", ("team",)), 7),
        "other tenant": (SearchScope("t2", ()), 2),
        "one document": (SearchScope("t1", ("team",), doc_ids=("dogs",)), 2),
        "metadata": (SearchScope("t1", (), metadata=(("lang", ("en",)),)), 1),
        "date range": (SearchScope("t1", (), date_from=parse_date("2020-01-01")), 1),
    }
    for label, (scope, expected) in scopes.items():
        found = hits(remote, 7, scope)
        assert len(found) == expected, label
        assert_same_hits(found, hits(reference, 7, scope), label)
    ids = [c.chunk_id for c in CHUNKS[:4]] + ["00000000-0000-0000-0000-000000000000"]
    fetched = remote.fetch(ids)
    assert fetched == reference.fetch(ids)
    assert sorted(fetched) == sorted(ids[:4])
    assert fetched[CHUNKS[3].chunk_id].acl == ["team"]
    assert (remote.count(), remote.count("t1"), remote.count("t1", "cats")) == (9, 7, 3)


def test_adapter_activates_retires_and_sets_fields_by_filter(adapters):
    remote, reference = adapters
    newer = [chunk("t1", "cats", version=2, ordinal=o) for o in range(2)]
    fields = DocFields.of("Cats v2", ["team"], {"date": "2023-05-01", "lang": "fr"}, revision=2)
    for index in (remote, reference):
        index.upsert(writes(newer, live=False))
        index.rewrite("t1", "cats", fields, 2)  # the new version live, every chunk with the new fields
        index.retire("t1", "cats", 2)  # a range on the version
        index.retire("t2", "cats", 2)
    assert (remote.count("t1", "cats"), remote.count("t2"), remote.count()) == (2, 0, 6)
    stored = stored_fields(remote)
    cats = {p["chunk_id"]: p for p in stored.values() if p["doc_key"] == "t1/cats"}
    assert sorted(cats) == sorted(c.chunk_id for c in newer)
    for fields in cats.values():
        assert (fields["version"], fields["title"], fields["acl"]) == (2, "Cats v2", ["team"])
        assert fields["meta"] == {"date": "2023-05-01", "lang": "fr"} and fields["date"] == parse_date("2023-05-01")
    untouched = [p for p in stored.values() if p["doc_key"] == "t1/dogs"]
    assert [p["title"] for p in untouched] == ["dogs", "dogs"]
    scope = SearchScope("t1", ("team",), metadata=(("lang", ("fr",)),))
    found = hits(remote, 3, scope)
    assert sorted(chunk for chunk, _ in found) == sorted(c.chunk_id for c in newer)
    assert_same_hits(found, hits(reference, 3, scope))


def test_adapter_creates_its_collection_and_payload_indexes(qdrant_fake, qdrant_collection):
    index = QdrantServerIndex(DIM, url=qdrant_fake.url, collection=qdrant_collection)
    index.open()
    index.close()
    assert qdrant_collection in qdrant_fake.collection_names() and qdrant_fake.count(qdrant_collection) == 0
    calls = [(method, path) for method, path in qdrant_fake.requests if qdrant_collection in path]
    assert calls == [
        ("GET", f"/collections/{qdrant_collection}/exists"),
        ("PUT", f"/collections/{qdrant_collection}"),
        ("GET", f"/collections/{qdrant_collection}"),
        *[("PUT", f"/collections/{qdrant_collection}/index")] * 7,
    ]
    keyword, integer = models.PayloadSchemaType.KEYWORD, models.PayloadSchemaType.INTEGER
    assert qdrant_fake.payload_indexes(qdrant_collection) == {
        "tenant": keyword,
        "doc_id": keyword,
        "doc_key": keyword,
        "acl": keyword,
        "version": integer,
        "date": integer,
        "live": integer,
    }


# -- injected write failures ----------------------------------------------------------------------


def test_injected_failures_fail_the_next_writes_and_leave_reads_alone(qdrant_fake, qdrant_collection):
    index = QdrantServerIndex(DIM, url=qdrant_fake.url, collection=qdrant_collection)
    index.open()
    first, second, third = CHUNKS[0:3], CHUNKS[3:5], CHUNKS[5:7]
    qdrant_fake.fail_writes(2, status=503)
    for batch in (first, second):
        with pytest.raises(UnexpectedResponse) as raised:
            index.upsert(writes(batch))
        assert status_and_error(raised.value) == (503, "Shard temporarily unavailable: injected failure")
        assert index.count() == 0 and index.search(vector(1), SearchScope("t1", ()), 5) == []
    index.upsert(writes(third))
    assert qdrant_fake.faults.failed == 2
    assert sorted(qdrant_fake.payloads(qdrant_collection)) == sorted(c.chunk_id for c in third)
    index.close()


def test_an_injected_failure_after_the_write_leaves_it_applied(qdrant_fake, qdrant_collection):
    index = QdrantServerIndex(DIM, url=qdrant_fake.url, collection=qdrant_collection)
    index.open()
    qdrant_fake.fail_writes(1, status=500, applied=True)
    with pytest.raises(UnexpectedResponse) as raised:
        index.upsert(writes(CHUNKS))
    assert status_and_error(raised.value) == (500, "Service internal error: injected failure")
    assert qdrant_fake.count(qdrant_collection) == len(CHUNKS)
    index.upsert(writes(CHUNKS))  # the retry rewrites the same points
    assert qdrant_fake.count(qdrant_collection) == len(CHUNKS) and index.count("t1", "cats") == 3
    index.close()
