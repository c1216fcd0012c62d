"""The embed service as a real gRPC server with the real model: limits, backpressure, cache, lanes."""

import asyncio

import grpc
import numpy as np
import pytest
from helpers import embed_service

from rag.v1 import embed_pb2, embed_pb2_grpc
from services.embed.batcher import CACHE_REQUESTS

LONG = "Quantum chromodynamics describes how quarks and gluons bind into protons and neutrons. " * 12


@pytest.fixture(scope="module")
async def embed_addr():
    async with embed_service(queue_limit=300, max_texts_per_request=300, max_chars_per_text=5000) as addr:
        yield addr


async def test_vectors_and_model_id(embed_addr):
    async with grpc.aio.insecure_channel(embed_addr) as channel:
        stub = embed_pb2_grpc.EmbedServiceStub(channel)
        alone = await stub.Embed(embed_pb2.EmbedRequest(texts=["red pandas eat bamboo"]))
        mixed = await stub.Embed(
            embed_pb2.EmbedRequest(texts=[LONG, "red pandas eat bamboo", "hi"], lane=embed_pb2.EMBED_LANE_BULK)
        )
        assert alone.model_id.startswith("all-MiniLM-L6-v2@sha256:") and alone.dimension == 384
        assert np.allclose(alone.vectors[0].values, mixed.vectors[1].values, atol=1e-5)
        assert mixed.tokens > 100


@pytest.mark.parametrize(
    "texts, words",
    [([], "empty"), (["x"] * 301, "301 texts"), (["y" * 5001], "5001 characters")],
)
async def test_request_limits_are_invalid_argument(embed_addr, texts, words):
    async with grpc.aio.insecure_channel(embed_addr) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await embed_pb2_grpc.EmbedServiceStub(channel).Embed(embed_pb2.EmbedRequest(texts=texts))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and words in error.value.details()


async def test_full_queue_is_resource_exhausted_with_a_retry_hint(embed_addr):
    async with grpc.aio.insecure_channel(embed_addr) as channel:
        stub = embed_pb2_grpc.EmbedServiceStub(channel)
        load = [
            asyncio.ensure_future(
                stub.Embed(embed_pb2.EmbedRequest(texts=[LONG + str(i)] * 100, lane=embed_pb2.EMBED_LANE_BULK))
            )
            for i in range(4)
        ]
        results = await asyncio.gather(*load, return_exceptions=True)
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert refused and all(r.code() == grpc.StatusCode.RESOURCE_EXHAUSTED for r in refused)
    assert int(dict(refused[0].trailing_metadata())["retry-after-ms"]) > 0
    assert any(not isinstance(r, Exception) for r in results), "queued work still completes"


async def test_the_query_cache_is_per_tenant(embed_addr):
    """A tenant's repeated query is a hit; the same text from another tenant, or from a caller that
    names none, is embedded afresh: nobody learns by timing (or tokens) what another tenant asked."""
    hits, misses = CACHE_REQUESTS.labels("hit")._value.get(), CACHE_REQUESTS.labels("miss")._value.get()
    text = "cached question about owls"
    async with grpc.aio.insecure_channel(embed_addr) as channel:
        stub = embed_pb2_grpc.EmbedServiceStub(channel)
        first = await stub.Embed(embed_pb2.EmbedRequest(texts=[text], tenant="acme"))
        again = await stub.Embed(embed_pb2.EmbedRequest(texts=[text], tenant="acme"))
        other = await stub.Embed(embed_pb2.EmbedRequest(texts=[text], tenant="globex"))
        nobody = [await stub.Embed(embed_pb2.EmbedRequest(texts=[text])) for _ in range(2)]
    assert CACHE_REQUESTS.labels("hit")._value.get() == hits + 1
    assert CACHE_REQUESTS.labels("miss")._value.get() == misses + 2
    assert list(first.vectors[0].values) == list(again.vectors[0].values) and again.tokens == 0
    assert [first.tokens, other.tokens, nobody[0].tokens, nobody[1].tokens] == [first.tokens] * 4 and first.tokens > 0


async def test_a_query_does_not_wait_behind_bulk_work(embed_addr):
    async with grpc.aio.insecure_channel(embed_addr) as channel:
        stub = embed_pb2_grpc.EmbedServiceStub(channel)
        bulk = asyncio.ensure_future(
            stub.Embed(
                embed_pb2.EmbedRequest(texts=[f"{LONG} {i}" for i in range(120)], lane=embed_pb2.EMBED_LANE_BULK)
            )
        )
        await asyncio.sleep(0.2)
        for i in range(5):
            await stub.Embed(
                embed_pb2.EmbedRequest(texts=[f"where do owls nest {i}?"], lane=embed_pb2.EMBED_LANE_INTERACTIVE)
            )
        assert not bulk.done(), "five queries finished while the bulk request was still being embedded"
        assert len((await bulk).vectors) == 120
