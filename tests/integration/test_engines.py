"""One conformance suite for every engine of a kind, on real Qdrant Edge and Tantivy in temp dirs."""

import numpy as np
import pytest

from rag.v1 import types_pb2
from services.common.ids import chunk_id
from services.retrieve.backends.base import SearchScope
from services.retrieve.backends.qdrant_edge import QdrantEdgeIndex
from services.retrieve.backends.tantivy_index import TantivyIndex

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


def vector_for(doc_id: str) -> list[float]:
    rng = np.random.default_rng(abs(hash(doc_id)) % (2**32))
    v = rng.normal(size=DIM)
    return (v / np.linalg.norm(v)).tolist()


class Dense:
    def __init__(self, path):
        self.index = QdrantEdgeIndex(path / "dense", DIM)
        self.index.open()

    def upsert(self, chunks):
        self.index.upsert(chunks, [vector_for(c.doc_id) for c in chunks])

    def search(self, doc_id_as_query, scope, limit=10):
        return self.index.search(vector_for(doc_id_as_query), scope, limit)

    def reopen(self, path):
        self.index.close()
        self.__init__(path)


class Lexical:
    def __init__(self, path):
        self.index = TantivyIndex(path / "lexical")
        self.index.open()

    def upsert(self, chunks):
        self.index.upsert(chunks)

    def search(self, doc_id_as_query, scope, limit=10):
        return self.index.search(TEXTS.get(doc_id_as_query, doc_id_as_query), scope, limit)

    def reopen(self, path):
        self.index.close()
        self.__init__(path)


@pytest.fixture(params=[Dense, Lexical], ids=["qdrant_edge", "tantivy"])
def engine(request, tmp_path):
    e = request.param(tmp_path)
    yield e
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
    assert set(ids(engine.search("cats", SearchScope("t1", (), doc_ids=("dogs",))))) <= {"dogs"}


def test_upsert_is_idempotent_and_retire_keeps_one_version(engine):
    v1 = [make_chunk("t1", "cats", 1, i) for i in range(3)]
    engine.upsert(v1)
    engine.upsert(v1)
    engine.index.commit()
    assert engine.index.count("t1") == 3
    engine.upsert([make_chunk("t1", "cats", 2, i) for i in range(2)])
    engine.index.retire("t1", "cats", keep_version=2)
    engine.index.commit()
    assert engine.index.count("t1") == 2
    assert {h.chunk.version for h in engine.search("cats", SearchScope("t1", ()))} == {2}
    engine.index.retire("t1", "cats", keep_version=None)
    engine.index.commit()
    assert engine.index.count("t1") == 0


def test_chunk_round_trips_through_the_engine(engine):
    chunk = make_chunk("t1", "cats", acl=["public", "alice"])
    chunk.section, chunk.char_start, chunk.char_end, chunk.chunker_version = "A > B", 5, 40, "structure-v1"
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


def test_lexical_accepts_any_user_text(tmp_path):
    index = TantivyIndex(tmp_path / "lex")
    index.open()
    index.upsert([make_chunk("t1", "cats")])
    index.commit()
    for query in ["what's a cat?", "title:cats AND (", 'a "quoted', "-- ++ :: ''", "的猫"]:
        index.search(query, SearchScope("t1", ()), 5)
    assert ids(index.search("CAT'S purring", SearchScope("t1", ()), 5)) == ["cats"]
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
        assert set(ids(engine.search("cats", SearchScope("t1", (), metadata=filters), 10))) <= expected
        if expected:
            found = set(ids(engine.search(next(iter(expected)), SearchScope("t1", (), metadata=filters), 10)))
            assert found and found <= expected, (filters, found)
