"""The reranking stage: the client against a local server speaking each wire format (TEI, the
Cohere/Jina shape, llama.cpp) with their errors and limits, or a real service at
RAGMESH_TEST_RERANK_URL; and hybrid search over real engines keeping the fused order, flagged,
when the reranker is slow, failing or unreachable."""

import os
import socket

import numpy as np
import pytest
from rerank_server import RerankServer, overlap

from rag.v1 import types_pb2
from services.common.ids import chunk_id
from services.retrieve.backends.base import ChunkWrite, DocFields, SearchScope
from services.retrieve.backends.qdrant_edge import QdrantEdgeIndex
from services.retrieve.backends.tantivy_index import TantivyIndex
from services.retrieve.rerank import Reranker, RerankError
from services.retrieve.search import hybrid_search

APIS = ["tei", "cohere", "llamacpp"]
QUERY = "which cat breeds purr loudly"
DOCUMENTS = [
    "Dogs bark at strangers.",
    "Siamese cat breeds purr loudly and often.",
    "Some cat breeds are quiet.",
    "Kubernetes schedules pods.",
]


@pytest.fixture(params=APIS)
def server(request):
    s = RerankServer(api=request.param).start()
    yield s
    s.stop()


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "detected"])
async def test_scores_come_back_in_the_order_sent(server, declared):
    reranker = Reranker(server.url, server.api if declared else "auto", model="bge-reranker", timeout_ms=5000)
    result = await reranker.rerank(QUERY, DOCUMENTS)
    assert result.scores == [overlap(QUERY, d) for d in DOCUMENTS]
    assert result.api == server.api
    sent = server.calls[-1]
    if server.api == "tei":
        assert sent == {"query": QUERY, "texts": DOCUMENTS, "truncate": True, "raw_scores": False}
        assert result.model == "bge-reranker"  # the configured name; without one, TEI's /info says
    else:
        assert sent == {"query": QUERY, "documents": DOCUMENTS, "top_n": 4, "model": "bge-reranker"}
    await reranker.close()


async def test_errors_are_reported_in_the_services_own_words(server):
    reranker = Reranker(server.url, server.api, timeout_ms=5000)
    for status in (429, 500, 503):
        server.fail_next(status)
        with pytest.raises(RerankError, match=f"HTTP {status}: injected failure {status}"):
            await reranker.rerank(QUERY, DOCUMENTS)
    assert len((await reranker.rerank(QUERY, DOCUMENTS)).scores) == 4  # and it recovers
    await reranker.close()


async def test_the_batch_limit_is_the_services_refusal(server):
    server.max_batch = 3
    reranker = Reranker(server.url, server.api, timeout_ms=5000)
    with pytest.raises(RerankError, match="batch size 4 > maximum allowed batch size 3"):
        await reranker.rerank(QUERY, DOCUMENTS)
    await reranker.close()


async def test_llamacpp_started_without_reranking_is_an_error():
    server = RerankServer(api="llamacpp", reranking=False).start()
    reranker = Reranker(server.url, "auto", timeout_ms=5000)
    with pytest.raises(RerankError, match="HTTP 501: This server does not support reranking"):
        await reranker.rerank(QUERY, DOCUMENTS)
    assert reranker.api == "llamacpp"
    await reranker.close()
    server.stop()


async def test_a_slow_service_is_cut_at_the_budget(server):
    server.delay = 1.0
    reranker = Reranker(server.url, server.api, timeout_ms=100)
    with pytest.raises(TimeoutError):
        await reranker.rerank(QUERY, DOCUMENTS)
    with pytest.raises(TimeoutError):  # the caller's deadline is shorter still
        await Reranker(server.url, server.api, timeout_ms=5000).rerank(QUERY, DOCUMENTS, budget_s=0.05)
    await reranker.close()


async def test_an_unreachable_service_is_an_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once the socket is closed
    reranker = Reranker(f"http://127.0.0.1:{port}", "tei", timeout_ms=5000)
    with pytest.raises(RerankError, match="could not be reached"):
        await reranker.rerank(QUERY, DOCUMENTS)
    await reranker.close()


@pytest.mark.skipif(not os.environ.get("RAGMESH_TEST_RERANK_URL"), reason="RAGMESH_TEST_RERANK_URL is not set")
async def test_a_real_reranking_service():
    reranker = Reranker(
        os.environ["RAGMESH_TEST_RERANK_URL"], os.environ.get("RAGMESH_TEST_RERANK_API", "auto"), timeout_ms=30000
    )
    result = await reranker.rerank(QUERY, DOCUMENTS)
    assert len(result.scores) == 4 and max(range(4), key=lambda i: result.scores[i]) == 1
    await reranker.close()


# -- the stage inside hybrid search, over real engines ---------------------------------------------

DIM = 8
TEXTS = {
    f"doc{i}": text
    for i, text in enumerate(
        [
            "Cats sleep most of the day.",
            "Cat breeds differ in size.",
            "Siamese cat breeds purr loudly and often.",
            "Which dogs bark loudly?",
            "Cats purr when content.",
        ]
    )
}


@pytest.fixture
def engines(tmp_path):
    dense, lexical = QdrantEdgeIndex(tmp_path / "dense", DIM), TantivyIndex(tmp_path / "lexical")
    dense.open()
    lexical.open()
    rng = np.random.default_rng(3)
    writes = []
    for doc, text in TEXTS.items():
        chunk = types_pb2.Chunk(
            chunk_id=chunk_id("t1", doc, 1, 0), tenant="t1", doc_id=doc, version=1, ordinal=0, text=text, acl=["public"]
        )
        vector = rng.normal(size=DIM)
        writes.append(ChunkWrite(chunk, DocFields.of("", ["public"], {}), True, tuple(vector / np.linalg.norm(vector))))
    dense.upsert(writes)
    lexical.upsert(writes)
    dense.commit()
    lexical.commit()
    yield dense, lexical
    dense.close()
    lexical.close()


async def search(engines, reranker, budget_s=None):
    fusion = types_pb2.FusionParams(method="auto", dense_depth=10, lexical_depth=10)
    query_vector = [1.0] + [0.0] * (DIM - 1)
    return await hybrid_search(
        *engines, QUERY, query_vector, SearchScope("t1", ()), fusion, 3, reranker=reranker, budget_s=budget_s
    )


async def test_reranked_hits_carry_their_rerank_scores_and_ranks(engines):
    server = RerankServer("tei").start()
    fused = await search(engines, None)
    reranker = Reranker(server.url, "tei", top_n=5, timeout_ms=5000)
    result = await search(engines, reranker)
    assert result.rerank.status == "reranked" and result.rerank.candidates == 5
    assert (result.rerank.api, result.rerank.model) == ("tei", "BAAI/bge-reranker-base")
    assert len(server.calls[-1]["texts"]) == 5  # top_n in, though top_k is 3
    hits = [f.hit(rank) for rank, f in enumerate(result.found, start=1)]
    assert [h.chunk.doc_id for h in hits] == ["doc2", *[h.chunk.doc_id for h in hits[1:]]]
    assert [h.rerank_rank for h in hits] == [1, 2, 3] and all(h.reranked for h in hits)
    assert hits[0].rerank_score == overlap(QUERY, TEXTS["doc2"])
    assert [h.rerank_score for h in hits] == sorted((h.rerank_score for h in hits), reverse=True)
    assert {h.chunk.doc_id for h in hits} <= set(TEXTS) and len(fused.found) == 3
    assert fused.rerank.status == "off"
    await reranker.close()
    server.stop()


@pytest.mark.parametrize("trouble", ["timeout", "error", "unreachable"])
async def test_trouble_with_the_reranker_returns_the_fused_order_flagged(engines, trouble):
    server = RerankServer("cohere").start()
    if trouble == "timeout":
        server.delay = 1.0
    elif trouble == "error":
        server.fail_next(503)
    else:
        server.stop()
    # Only the timeout case needs a short budget: a refused connection or an HTTP error answers at
    # once, but on a loaded machine "at once" can take longer than 150 ms.
    reranker = Reranker(server.url, "cohere", top_n=5, timeout_ms=150 if trouble == "timeout" else 5000)
    fused = await search(engines, None)
    result = await search(engines, reranker)
    assert [f.chunk.chunk_id for f in result.found] == [f.chunk.chunk_id for f in fused.found]
    assert all(f.rerank_score is None and not f.hit(1).reranked for f in result.found)
    expected = {"timeout": "timeout", "error": "error", "unreachable": "error"}[trouble]
    assert result.rerank.status == expected and result.rerank.candidates == 5
    assert (
        result.rerank.error
        == {
            "timeout": "no answer within 150 ms",
            "error": "the cohere reranker answered HTTP 503: injected failure 503",
            "unreachable": f"the reranker at {server.url} could not be reached: ConnectError",
        }[trouble]
    )
    await reranker.close()
    if trouble != "unreachable":
        server.stop()


async def test_a_request_may_skip_the_stage(engines):
    server = RerankServer("tei").start()
    reranker = Reranker(server.url, "tei", timeout_ms=5000)
    fusion = types_pb2.FusionParams(method="auto", dense_depth=10, lexical_depth=10, no_rerank=True)
    result = await hybrid_search(*engines, QUERY, [1.0] * DIM, SearchScope("t1", ()), fusion, 3, reranker=reranker)
    assert result.rerank.status == "off" and server.calls == []
    await reranker.close()
    server.stop()
