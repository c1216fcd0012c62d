"""The lexical engines (Tantivy, and OpenSearch: a real cluster when RAGMESH_TEST_OPENSEARCH_URL is set,
else the local server speaking its protocol): per-tenant BM25 statistics, analysis per language,
exact identifiers, and the same terms in both."""

import os
import uuid

import pytest
from opensearch_server import OpenSearchServer

from services.retrieve.backends.base import SearchScope
from services.retrieve.backends.opensearch_index import OpenSearchIndex, tenant_index
from services.retrieve.backends.tantivy_index import TantivyIndex, tenant_folder

from .test_engines import make_chunk, writes

_fake: OpenSearchServer | None = None


def opensearch_url() -> str:
    global _fake
    url = os.environ.get("RAGMESH_TEST_OPENSEARCH_URL", "")
    if url:
        return url
    if _fake is None:
        _fake = OpenSearchServer().start()
    return _fake.url


def tantivy_engine(path):
    return TantivyIndex(path / f"lexical-{uuid.uuid4().hex[:6]}")


def opensearch_engine(path):
    return OpenSearchIndex(opensearch_url(), index=f"lexical-{uuid.uuid4().hex[:8]}")


@pytest.fixture(params=[tantivy_engine, opensearch_engine], ids=["tantivy", "opensearch"])
def make_engine(request, tmp_path):
    made = []

    def make():
        engine = request.param(tmp_path)
        engine.open()
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.destroy()


def scored(engine, query: str, tenant: str) -> list[tuple[str, float]]:
    hits = engine.search(query, SearchScope(tenant, ()), 10)
    chunks = engine.fetch(tenant, [h.chunk_id for h in hits])
    return [(chunks[h.chunk_id].doc_id, round(h.score, 5)) for h in hits]


OTHER_TENANTS_TEXTS = [f"Kubernetes operators reconcile pods, deployment {i} of the fleet." for i in range(60)]
MY_TEXTS = {
    "pods": "Kubernetes schedules pods on nodes; a pod is the smallest deployable unit.",
    "cats": "Cats are small domesticated felines that purr and chase mice.",
    "mixed": "Our fleet runs on Kubernetes; the cats in the office ignore it.",
}


def test_bm25_statistics_and_rankings_are_the_tenants_own(make_engine):
    """Another tenant's documents holding the query's terms change neither the scores nor the
    ranking of a tenant's search: term statistics are per tenant."""
    mine = [make_chunk("acme", doc, text=text) for doc, text in MY_TEXTS.items()]
    theirs = [make_chunk("globex", f"fleet-{i}", text=text) for i, text in enumerate(OTHER_TENANTS_TEXTS)]
    alone, beside = make_engine(), make_engine()
    alone.upsert(writes(mine))
    beside.upsert(writes(theirs))
    beside.commit()
    beside.upsert(writes(mine))
    alone.commit()
    beside.commit()
    for query in ("kubernetes pods", "cats", "fleet deployment kubernetes", "operators reconcile"):
        assert scored(beside, query, "acme") == scored(alone, query, "acme"), query
    assert [d for d, _ in scored(alone, "kubernetes pods", "acme")] == ["pods", "mixed"]
    assert scored(beside, "operators reconcile", "acme") == []
    assert len(scored(beside, "operators reconcile", "globex")) == 10


def test_a_search_of_a_tenant_without_documents_creates_nothing(make_engine, tmp_path):
    engine = make_engine()
    engine.upsert(writes([make_chunk("acme", "cats")]))
    engine.commit()
    assert scored(engine, "cats", "nobody") == [] and engine.fetch("nobody", ["x"]) == {}
    assert engine.count("nobody") == 0 and engine.chunks_of("nobody", "cats") == []
    assert engine.count() == 1
    if isinstance(engine, TantivyIndex):
        assert [p.name for p in (engine.path / "tenants").iterdir()] == [tenant_folder("acme")]
    else:
        assert engine._tenant_indexes() == [tenant_index(engine.index, "acme")]


MULTILINGUAL = {
    "ar": ("قَامَ مُحَمَّدٌ بِزِيَارَةِ المَدْرَسَةِ الكَبِيرَةِ فِي القَاهِرَةِ", "ar"),
    "de": ("Die Häuser der Altstadt wurden im Mittelalter gebaut.", "de"),
    "en": ("The old houses of the town were built in the Middle Ages.", "en"),
    "ja": ("東京大学は日本の国立大学です。", "ja"),
    "err": ("Payment failed with ERR-4821 after the gateway timed out.", "en"),
    "err2": ("Payment failed with ERR-4822 after the gateway timed out.", "en"),
}


def test_each_chunk_is_analysed_in_its_language(make_engine):
    engine = make_engine()
    chunks = []
    for doc, (text, language) in MULTILINGUAL.items():
        chunk = make_chunk("t1", doc, text=text)
        chunk.language = language
        chunks.append(chunk)
    engine.upsert(writes(chunks))
    engine.commit()

    def top(query):
        return [d for d, _ in scored(engine, query, "t1")][:1]

    assert top("زيارة المدرسة في القاهرة") == ["ar"]  # no diacritics in the question
    assert top("Haus") == ["de"]  # German plural stemmed to its stem
    assert top("house built") == ["en"]
    assert top("大学") == ["ja"]  # CJK bigrams
    assert top("ERR-4821") == ["err"]  # the whole identifier outranks its sibling ERR-4822
    assert [d for d, _ in scored(engine, "ERR-4821", "t1")] == ["err", "err2"]


def test_a_chunk_without_a_recorded_language_is_detected_when_indexed(make_engine):
    engine = make_engine()
    engine.upsert(writes([make_chunk("t1", "de", text="Die Häuser der Altstadt wurden im Mittelalter gebaut.")]))
    engine.commit()
    assert [d for d, _ in scored(engine, "Haus", "t1")] == ["de"]
    assert engine.fetch("t1", [make_chunk("t1", "de").chunk_id])[make_chunk("t1", "de").chunk_id].language == ""


def test_idle_tantivy_writers_are_closed_and_reopened(tmp_path):
    engine = TantivyIndex(tmp_path / "lexical", writer_idle_seconds=0.0)
    engine.open()
    engine.upsert(writes([make_chunk(f"t{i}", "cats") for i in range(5)]))
    assert engine.open_writers == 5
    engine.commit()  # written since the last commit: committed, kept open
    assert engine.open_writers == 5
    engine.upsert(writes([make_chunk("t0", "dogs")]))
    engine.commit()  # the four idle tenants let go of their writers
    assert engine.open_writers == 1
    engine.commit()
    assert engine.open_writers == 0
    engine.retire("t0", "cats", 2)
    engine.commit()
    assert engine.count("t0") == 1 and engine.count() == 5
    engine.close()


def test_dropping_an_opensearch_generation_removes_the_earlier_single_index_too():
    """Before one index per tenant, a generation was one index named by the prefix itself."""
    engine = opensearch_engine(None)
    engine.open()
    engine.client.indices.create(index=engine.index, body={"mappings": {"properties": {"text": {"type": "text"}}}})
    engine.upsert(writes([make_chunk("acme", "cats")]))
    engine.commit()
    engine.destroy()
    engine.open()
    assert not engine.client.indices.exists(index=engine.index) and engine.count() == 0
    engine.close()
