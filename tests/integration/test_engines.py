"""One conformance suite for every engine of a kind: real Qdrant Edge and Tantivy in temp dirs,
qdrant-client in its local mode, and Qdrant and OpenSearch servers when RAGMESH_TEST_QDRANT_URL and
RAGMESH_TEST_OPENSEARCH_URL are set."""

import os
import uuid

import numpy as np
import pytest
import tantivy
from conftest import DATASETS
from opensearch_server import OpenSearchServer
from qdrant_server import QdrantServer as LocalQdrant

from rag.v1 import types_pb2
from services.cli.evaluate import read_jsonl
from services.common.ids import chunk_id
from services.retrieve.backends.base import ChunkWrite, DocFields, EngineHit, SearchScope, doc_hash, parse_date
from services.retrieve.backends.dense_tiers import TieredDenseIndex
from services.retrieve.backends.opensearch_index import OpenSearchIndex
from services.retrieve.backends.qdrant_edge import QdrantEdgeIndex
from services.retrieve.backends.qdrant_server import QdrantServerIndex
from services.retrieve.backends.tantivy_index import LayoutError, TantivyIndex

DIM = 8
TEXTS = {
    "cats": "Cats are small domesticated felines that purr.",
    "dogs": "Dogs are loyal companions that bark at strangers.",
    "k8s": "Kubernetes schedules containers; a pod is the smallest unit.",
}


def make_chunk(tenant, doc_id, version=1, ordinal=0, acl=("public",), text=None):
    return types_pb2.Chunk(
        chunk_id=chunk_id(tenant, doc_id, version, ordinal),
        tenant=tenant,
        doc_id=doc_id,
        version=version,
        ordinal=ordinal,
        text=text or TEXTS.get(doc_id, doc_id),
        title=doc_id,
        acl=list(acl),
    )


def writes(chunks, live=True, fields=None) -> list[ChunkWrite]:
    """Chunks as engine writes; without `fields`, each chunk's own ACL and metadata."""
    return [
        ChunkWrite(c, fields or DocFields.of("", c.acl, c.metadata), live, tuple(vector_for(c.doc_id))) for c in chunks
    ]


def fetch(index, tenant: str, chunk_ids: list[str]):
    """Whole chunks by id: a lexical engine reads them from the tenant's own index."""
    if isinstance(index, TantivyIndex | OpenSearchIndex):
        return index.fetch(tenant, chunk_ids)
    return index.fetch(chunk_ids)


def resolved(index, candidates: list[EngineHit], tenant: str = "t1") -> list[EngineHit]:
    """Candidates with their whole chunks loaded from the engine, as retrieve does for its final
    hits; each candidate's document hash and version must be those of the chunk it names."""
    chunks = fetch(index, tenant, [h.chunk_id for h in candidates])
    for h in candidates:
        chunk = chunks[h.chunk_id]
        assert (h.doc, h.version) == (doc_hash(chunk.tenant, chunk.doc_id), chunk.version)
    return [EngineHit.whole(chunks[h.chunk_id], h.score) for h in candidates]


def vector_for(doc_id: str) -> list[float]:
    rng = np.random.default_rng(abs(hash(doc_id)) % (2**32))
    v = rng.normal(size=DIM)
    return (v / np.linalg.norm(v)).tolist()


class Dense:
    def __init__(self, path):
        self.index = QdrantEdgeIndex(path / "dense", DIM)
        self.index.open()

    def upsert(self, chunks, live=True, fields=None):
        self.index.upsert(writes(chunks, live, fields))

    def search(self, doc_id_as_query, scope, limit=10):
        return resolved(self.index, self.index.search(vector_for(doc_id_as_query), scope, limit), scope.tenant)

    def reopen(self, path):
        self.index.close()
        self.__init__(path)


class SettlingTiers(TieredDenseIndex):
    """The tiered index, each commit followed by every seal, build and merge then due."""

    def commit(self):
        super().commit()
        self.settle()


class DenseTiers(Dense):
    """The tiered index with a hot shard of two points: commits seal and merge, so searches run
    over several sealed shards and a hot one."""

    def __init__(self, path):
        self.index = SettlingTiers(
            path / "dense",
            DIM,
            hot_points=2,
            merge_factor=2,
            maintain_seconds=0,
            indexing_threshold_kb=1,
        )
        self.index.open()


class Lexical:
    def __init__(self, path):
        self.index = TantivyIndex(path / "lexical")
        self.index.open()

    def upsert(self, chunks, live=True, fields=None):
        self.index.upsert(writes(chunks, live, fields))

    def search(self, doc_id_as_query, scope, limit=10):
        query = TEXTS.get(doc_id_as_query, doc_id_as_query)
        return resolved(self.index, self.index.search(query, scope, limit), scope.tenant)

    def reopen(self, path):
        self.index.close()
        self.__init__(path)


class QdrantLocal(Dense):
    """qdrant-client's local mode: the client code path the Qdrant server adapter runs."""

    def __init__(self, path):
        self.index = QdrantServerIndex(DIM, path=str(path / "qdrant-local"))
        self.index.open()


class QdrantServer(Dense):
    """The Qdrant server adapter against a real server (RAGMESH_TEST_QDRANT_URL) or the local server
    speaking its REST protocol; every test gets a collection of its own."""

    fake: LocalQdrant | None = None

    def __init__(self, path):
        url = os.environ.get("RAGMESH_TEST_QDRANT_URL", "")
        if not url:
            if QdrantServer.fake is None:
                QdrantServer.fake = LocalQdrant().start()
            url = QdrantServer.fake.url
        self.collection = getattr(self, "collection", None) or f"conformance_{uuid.uuid4().hex[:8]}"
        self.index = QdrantServerIndex(DIM, url=url, collection=self.collection)
        self.index.open()


class OpenSearch(Lexical):
    """The OpenSearch adapter against a real cluster (RAGMESH_TEST_OPENSEARCH_URL) or the local
    server speaking its REST protocol."""

    fake: OpenSearchServer | None = None

    def __init__(self, path):
        url = os.environ.get("RAGMESH_TEST_OPENSEARCH_URL", "")
        if not url:
            if OpenSearch.fake is None:
                OpenSearch.fake = OpenSearchServer().start()
            url = OpenSearch.fake.url
        name = getattr(self, "name", None) or f"conformance-{uuid.uuid4().hex[:8]}"
        self.name = name
        self.index = OpenSearchIndex(url, index=name)
        self.index.open()


ENGINES = {
    "qdrant_edge": Dense,
    "qdrant_edge_tiers": DenseTiers,
    "tantivy": Lexical,
    "qdrant_local": QdrantLocal,
    "qdrant_server": QdrantServer,
    "opensearch": OpenSearch,
}


@pytest.fixture(params=list(ENGINES.values()), ids=list(ENGINES))
def engine(request, tmp_path):
    e = request.param(tmp_path)
    yield e
    if isinstance(e, QdrantServer | OpenSearch):
        e.index.destroy()  # a server outlives the test: leave nothing behind
    else:
        e.index.close()


def ids(hits):
    return [h.chunk.doc_id for h in hits]


def test_search_finds_the_matching_chunk_first(engine):
    engine.upsert([make_chunk("t1", d) for d in TEXTS])
    engine.index.commit()
    assert ids(engine.search("cats", SearchScope("t1", ())))[0] == "cats"


def test_tenant_filter_is_mandatory_and_exact(engine):
    engine.upsert([make_chunk("t1", "cats"), make_chunk("t2", "cats", text="Cats are small domesticated felines.")])
    engine.index.commit()
    hits = engine.search("cats", SearchScope("t2", ()))
    assert {h.chunk.tenant for h in hits} == {"t2"}
    with pytest.raises(ValueError):
        SearchScope("", ())


def test_acl_filter_admits_public_and_the_callers_principals(engine):
    engine.upsert(
        [make_chunk("t1", "cats", acl=["alice"]), make_chunk("t1", "dogs"), make_chunk("t1", "k8s", acl=["bob"])]
    )
    engine.index.commit()
    everyone = set(ids(engine.search("cats", SearchScope("t1", ()))))
    alice = set(ids(engine.search("cats", SearchScope("t1", ("alice",)))))
    assert "cats" not in everyone and "k8s" not in everyone
    assert "cats" in alice and "k8s" not in alice


def test_doc_id_filter(engine):
    engine.upsert([make_chunk("t1", d) for d in TEXTS])
    engine.index.commit()
    scope = SearchScope("t1", (), doc_ids=("dogs",))
    assert {d for q in TEXTS for d in ids(engine.search(q, scope))} == {"dogs"}


def versions_found(engine, doc_id="cats"):
    return sorted({h.chunk.version for h in engine.search(doc_id, SearchScope("t1", ())) if h.chunk.doc_id == doc_id})


def test_upsert_is_idempotent_and_pending_chunks_are_not_searched(engine):
    v1 = [make_chunk("t1", "cats", 1, i) for i in range(3)]
    engine.upsert(v1)
    engine.upsert(v1)
    engine.upsert([make_chunk("t1", "cats", 2, i) for i in range(2)], live=False)
    engine.index.commit()
    assert engine.index.count("t1") == 5 and engine.index.count("t1", "cats") == 5
    assert versions_found(engine) == [1]
    assert sorted(engine.index.chunks_of("t1", "cats")) == sorted(
        [(c.chunk_id, 1, True) for c in v1] + [(make_chunk("t1", "cats", 2, i).chunk_id, 2, False) for i in range(2)]
    )


def test_a_pending_write_never_hides_a_live_chunk(engine):
    v1 = [make_chunk("t1", "cats", 1, i) for i in range(2)]
    engine.upsert(v1)
    engine.index.commit()
    engine.upsert(v1, live=False)  # the same upsert delivered again after its activation
    engine.index.commit()
    assert {live for _, _, live in engine.index.chunks_of("t1", "cats")} == {True}
    assert versions_found(engine) == [1]


def test_activation_shows_one_version_and_retires_only_older_ones(engine):
    engine.upsert([make_chunk("t1", "cats", 1, i) for i in range(3)])
    engine.upsert([make_chunk("t1", "cats", 2, i) for i in range(2)], live=False)
    engine.upsert([make_chunk("t1", "cats", 3, 0)], live=False)  # a newer version still being written
    engine.upsert([make_chunk("t1", "dogs", 1, 0)])
    engine.index.commit()
    engine.index.rewrite("t1", "cats", None, 2)
    engine.index.retire("t1", "cats", 2)
    engine.index.commit()
    assert versions_found(engine) == [2]
    assert sorted((v, live) for _, v, live in engine.index.chunks_of("t1", "cats")) == [
        (2, True),
        (2, True),
        (3, False),
    ]
    assert engine.index.count("t1", "dogs") == 1  # another document is untouched
    engine.index.retire("t1", "cats", 4)  # a removal through version 3
    engine.index.commit()
    assert engine.index.count("t1", "cats") == 0 and engine.index.count("t1") == 1


def test_new_fields_reach_every_chunk_of_the_document(engine):
    engine.upsert([make_chunk("t1", "cats", 1, 0)])
    engine.upsert([make_chunk("t1", "cats", 2, 0)], live=False)
    engine.index.commit()
    hr = DocFields.of("", ["hr"], {"team": "people"}, revision=2)
    engine.index.rewrite("t1", "cats", hr, 0)
    engine.index.commit()
    assert engine.search("cats", SearchScope("t1", ())) == []  # no longer public
    [hit] = engine.search("cats", SearchScope("t1", ("hr",)))
    assert (list(hit.chunk.acl), dict(hit.chunk.metadata), hit.chunk.title) == (["hr"], {"team": "people"}, "cats")
    engine.index.rewrite("t1", "cats", None, 2)  # the pending version took the fields too
    engine.index.retire("t1", "cats", 2)
    engine.index.commit()
    [hit] = engine.search("cats", SearchScope("t1", ("hr",)))
    assert (hit.chunk.version, list(hit.chunk.acl)) == (2, ["hr"])
    engine.index.rewrite("t1", "cats", DocFields.of("Felines", ["hr"], {}, revision=3), 0)
    engine.index.commit()
    [hit] = engine.search("cats", SearchScope("t1", ("hr",)))
    assert (hit.chunk.title, dict(hit.chunk.metadata)) == ("Felines", {})


def test_chunk_round_trips_through_the_engine(engine):
    chunk = make_chunk("t1", "cats", acl=["public", "alice"])
    chunk.section, chunk.char_start, chunk.char_end, chunk.chunker_version = "A > B", 5, 40, "structure-v1"
    chunk.language = "en"
    chunk.metadata.update({"lang": "en", "year": "2026"})
    engine.upsert([chunk])
    engine.index.commit()
    [hit] = engine.search("cats", SearchScope("t1", ("alice",)))
    assert hit.chunk == chunk


def test_data_survives_reopen(engine, tmp_path):
    engine.upsert([make_chunk("t1", d) for d in TEXTS])
    engine.index.commit()
    engine.reopen(tmp_path)
    assert engine.index.count() == 3


def test_candidates_are_light_and_fetch_loads_whole_chunks(engine):
    chunk = make_chunk("t1", "cats", acl=["public", "alice"])
    chunk.metadata.update({"lang": "en"})
    engine.upsert([chunk, make_chunk("t1", "dogs")])
    engine.index.commit()
    query = vector_for("cats") if isinstance(engine, Dense) else TEXTS["cats"]
    candidate = engine.index.search(query, SearchScope("t1", ("alice",)), 2)[0]
    assert candidate.chunk is None
    assert (candidate.chunk_id, candidate.doc, candidate.version) == (chunk.chunk_id, doc_hash("t1", "cats"), 1)
    missing = make_chunk("t1", "never-indexed").chunk_id
    assert fetch(engine.index, "t1", [chunk.chunk_id, missing]) == {chunk.chunk_id: chunk}
    assert fetch(engine.index, "t1", []) == {}


def test_an_index_of_another_layout_is_refused_by_name(tmp_path):
    """A Tantivy folder of an older layout (one index for every tenant) is not opened as if it were this one."""
    (tmp_path / "lex").mkdir()
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("text", stored=True)
    tantivy.Index(builder.build(), path=str(tmp_path / "lex"))
    with pytest.raises(LayoutError, match="older layout"):
        TantivyIndex(tmp_path / "lex").open()


def test_export_returns_every_stored_chunk_with_its_liveness(engine):
    if not hasattr(engine.index, "export"):
        pytest.skip("this engine does not export")
    engine.upsert([make_chunk("t1", d) for d in TEXTS])
    engine.upsert([make_chunk("t1", "cats", 2, 0)], live=False)
    engine.index.commit()
    exported = [entry for batch in engine.index.export(batch=2) for entry in batch]
    assert sorted((e[0].doc_id, e[0].version, e[-1]) for e in exported) == [
        ("cats", 1, True),
        ("cats", 2, False),
        ("dogs", 1, True),
        ("k8s", 1, True),
    ]
    if isinstance(engine, Dense):
        for chunk, vector, _ in exported:
            assert vector == pytest.approx(vector_for(chunk.doc_id), abs=1e-6)


def test_destroy_removes_everything_it_stored(engine, tmp_path):
    engine.upsert([make_chunk("t1", d) for d in TEXTS])
    engine.index.commit()
    engine.index.destroy()
    engine.reopen(tmp_path)
    assert engine.index.count() == 0 and engine.search("cats", SearchScope("t1", ())) == []


def test_lexical_accepts_any_user_text(tmp_path):
    index = TantivyIndex(tmp_path / "lex")
    index.open()
    index.upsert(writes([make_chunk("t1", "cats")]))
    index.commit()
    for query in ["what's a cat?", "title:cats AND (", 'a "quoted', "-- ++ :: ''", "的猫"]:
        index.search(query, SearchScope("t1", ()), 5)
    assert ids(resolved(index, index.search("CAT'S purring", SearchScope("t1", ()), 5))) == ["cats"]
    index.close()


def test_metadata_filters_mean_the_same_in_every_engine(engine):
    colours = {"cats": "red", "dogs": "blue", "k8s": "green"}
    chunks = []
    for doc, colour in colours.items():
        chunk = make_chunk("t1", doc)
        chunk.metadata.update({"colour": colour, "Team": "Blue Sky"})
        chunks.append(chunk)
    engine.upsert(chunks)
    engine.index.commit()
    for filters, expected in [
        ((("colour", ("red",)),), {"cats"}),
        ((("colour", ("red", "blue")),), {"cats", "dogs"}),
        ((("colour", ("red",)), ("Team", ("Blue Sky",))), {"cats"}),
        ((("colour", ("RED",)),), set()),  # keyword equality: exact, case-sensitive
        ((("missing", ("x",)),), set()),
    ]:
        found = {d for q in TEXTS for d in ids(engine.search(q, SearchScope("t1", (), metadata=filters), 10))}
        assert found == expected, (filters, found)


def corpus_chunks(count: int) -> list[types_pb2.Chunk]:
    abstracts = read_jsonl(DATASETS / "dbpedia-5k" / "corpus.jsonl")[:count]
    return [make_chunk("t1", str(a["_id"]), text=f"{a['title']}. {a['text']}") for a in abstracts]


def overlap(a: list[EngineHit], b: list[EngineHit]) -> float:
    return len({h.chunk_id for h in a} & {h.chunk_id for h in b}) / max(len(a), 1)


def test_dense_engines_agree(tmp_path):
    """Qdrant Edge and qdrant-client (the Qdrant server's client path) rank the same neighbours."""
    rng = np.random.default_rng(7)
    chunks = [make_chunk("t1", f"d{i}") for i in range(1500)]
    vectors = rng.normal(size=(len(chunks), 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    engines = [QdrantEdgeIndex(tmp_path / "edge", 64), QdrantServerIndex(64, path=str(tmp_path / "local"))]
    url = os.environ.get("RAGMESH_TEST_QDRANT_URL", "")
    if url:
        engines.append(QdrantServerIndex(64, url=url, collection=f"congruence_{uuid.uuid4().hex[:8]}"))
    for engine in engines:
        engine.open()
        engine.upsert(
            [ChunkWrite(c, DocFields(), True, tuple(v)) for c, v in zip(chunks, vectors.tolist(), strict=True)]
        )
        engine.commit()
    scope = SearchScope("t1", ())
    for query in rng.normal(size=(20, 64)):
        results = [engine.search(query.tolist(), scope, 10) for engine in engines]
        for other in results[1:]:
            assert overlap(results[0], other) >= 0.9
            assert results[0][0].score == pytest.approx(other[0].score, abs=1e-4)
    for engine in engines:
        engine.close()


def test_lexical_engines_agree(tmp_path):
    """Tantivy and a real OpenSearch cluster give the same top results on real abstracts: both index
    the terms ragmesh analysed, so only BM25's details differ (length norms, per-field counts)."""
    url = os.environ.get("RAGMESH_TEST_OPENSEARCH_URL", "")
    if not url:
        pytest.skip("RAGMESH_TEST_OPENSEARCH_URL is not set (a fake's ranking proves nothing)")
    chunks = corpus_chunks(500)
    engines = [TantivyIndex(tmp_path / "tantivy"), OpenSearchIndex(url, index=f"congruence-{uuid.uuid4().hex[:8]}")]
    for engine in engines:
        engine.open()
        engine.upsert(writes(chunks))
        engine.commit()
    queries = [q["text"] for q in read_jsonl(DATASETS / "dbpedia-5k" / "queries.jsonl")]
    agreement = [overlap(*(e.search(q, SearchScope("t1", ()), 10) for e in engines)) for q in queries]
    assert np.mean(agreement) >= 0.9
    for engine in engines:
        engine.close()


def test_date_range_filters_mean_the_same_in_every_engine(engine):
    dates = {"cats": "2024-03-01", "dogs": "2025-07-15T12:30:00+02:00", "k8s": "not a date"}
    chunks = []
    for doc, value in dates.items():
        chunk = make_chunk("t1", doc)
        chunk.metadata["date"] = value
        chunks.append(chunk)
    engine.upsert(chunks)
    engine.index.commit()

    def found(start, end):
        scope = SearchScope(
            "t1",
            (),
            date_from=parse_date(start) if start else None,
            date_to=parse_date(end, end_of_day=True) if end else None,
        )
        return {d for q in TEXTS for d in ids(engine.search(q, scope, 10))}

    assert found("2024-01-01", "2024-12-31") == {"cats"}
    assert found("2024-03-01", "2024-03-01") == {"cats"}  # a bare end date covers its whole day
    assert found("2025-07-15T10:30:00Z", "") == {"dogs"}  # 12:30+02:00 is 10:30 UTC
    assert found("2025-07-15T10:30:01Z", "") == set()
    assert found("", "2030-01-01") == {"cats", "dogs"}  # undated documents never match
    engine.index.rewrite("t1", "cats", DocFields.of("", ["public"], {"date": "2031-01-01"}, 1), 0)
    engine.index.commit()
    assert found("2031-01-01", "") == {"cats"} and found("2024-01-01", "2024-12-31") == set()
