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


async def test_the_derived_model_is_served_by_name_each_text_as_alone():
    from services.common.tokenizer import packaged_tokenizer_path
    from services.embed.catalogue import INT8, KNOWN, known_model_path
    from services.embed.model import EmbeddingModel

    texts = [LONG, "red pandas eat bamboo", "hi"]
    async with embed_service(model_name=INT8) as addr:
        async with grpc.aio.insecure_channel(addr) as channel:
            stub = embed_pb2_grpc.EmbedServiceStub(channel)
            info = await stub.GetModelInfo(embed_pb2.GetModelInfoRequest())
            reply = await stub.Embed(embed_pb2.EmbedRequest(texts=texts, lane=embed_pb2.EMBED_LANE_BULK))
    assert info.model_id == f"{INT8}@sha256:{KNOWN[INT8].sha256}" and info.dimension == 384
    assert reply.model_id == info.model_id
    model = EmbeddingModel(known_model_path(INT8), packaged_tokenizer_path(), INT8)
    model.load()
    alone = np.stack([model.embed([text])[0] for text in texts])
    assert np.allclose([v.values for v in reply.vectors], alone, atol=1e-6)


async def test_an_unknown_or_altered_model_is_not_served(tmp_path):

    from services.embed.catalogue import INT8, KNOWN, known_model_path

    with pytest.raises(ValueError, match="'all-MiniLM-L6-v3' is not known"):
        async with embed_service(model_name="all-MiniLM-L6-v3"):
            pass
    with pytest.raises(RuntimeError, match="does not exist: run `make setup`"):
        async with embed_service(model_name=INT8, derived_models_dir=tmp_path):
            pass
    altered = tmp_path / f"{INT8}.onnx"
    data = bytearray(known_model_path(INT8).read_bytes())
    data[-1] ^= 1
    altered.write_bytes(bytes(data))
    with pytest.raises(RuntimeError) as error:
        async with embed_service(model_name=INT8, derived_models_dir=tmp_path):
            pass
    assert f"{INT8} is pinned to {KNOWN[INT8].sha256}" in str(error.value)


async def test_several_models_are_served_at_once_each_picked_by_id_or_name():
    """Each request is embedded by the model it names (by id or name), the default for none; every
    model's vectors are that model's own; GetModelInfo lists them all, the default first."""
    from services.common.tokenizer import packaged_tokenizer_path
    from services.embed.catalogue import INT8, KNOWN, PACKAGED, known_model_path
    from services.embed.model import EmbeddingModel

    texts = ["red pandas eat bamboo", LONG]
    default_id, int8_id = (f"{n}@sha256:{KNOWN[n].sha256}" for n in (PACKAGED, INT8))
    async with embed_service(models=f"{PACKAGED}, {INT8}") as addr:
        async with grpc.aio.insecure_channel(addr) as channel:
            stub = embed_pb2_grpc.EmbedServiceStub(channel)
            info = await stub.GetModelInfo(embed_pb2.GetModelInfoRequest())
            default = await stub.Embed(embed_pb2.EmbedRequest(texts=texts, lane=embed_pb2.EMBED_LANE_BULK))
            by_name = await stub.Embed(embed_pb2.EmbedRequest(texts=texts, model_id=INT8, tenant="acme"))
            by_id = await stub.Embed(embed_pb2.EmbedRequest(texts=texts, model_id=int8_id, tenant="acme"))
            named_default = await stub.Embed(embed_pb2.EmbedRequest(texts=texts, model_id=default_id))
            with pytest.raises(grpc.aio.AioRpcError) as unknown:
                await stub.Embed(embed_pb2.EmbedRequest(texts=texts, model_id="all-MiniLM-L12-v2"))
    assert (info.model_id, info.dimension) == (default_id, 384)
    assert [(m.model_id, m.name, m.dimension, m.max_tokens) for m in info.models] == [
        (default_id, PACKAGED, 384, 256),
        (int8_id, INT8, 384, 256),
    ]
    assert (default.model_id, named_default.model_id, by_name.model_id, by_id.model_id) == (
        default_id,
        default_id,
        int8_id,
        int8_id,
    )
    assert unknown.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert unknown.value.details() == (
        f"embedding model 'all-MiniLM-L12-v2' is not served here; this service serves {default_id} (default), {int8_id}"
    )
    for name, reply in ((PACKAGED, default), (PACKAGED, named_default), (INT8, by_name), (INT8, by_id)):
        model = EmbeddingModel(known_model_path(name), packaged_tokenizer_path(), name, one_text_per_run=name == INT8)
        model.load()
        assert np.allclose([v.values for v in reply.vectors], model.embed(texts), atol=1e-5), name
    # The two models' vectors differ: a query must be embedded by the model of the index it searches.
    assert not np.allclose(default.vectors[0].values, by_name.vectors[0].values, atol=1e-3)


async def test_models_named_twice_or_beside_a_model_file_are_refused():
    from services.embed.catalogue import PACKAGED, known_model_path

    with pytest.raises(ValueError, match=f"embedding models named more than once: {PACKAGED}"):
        async with embed_service(models=f"{PACKAGED},{PACKAGED}"):
            pass
    with pytest.raises(ValueError, match="'all-MiniLM-L12-v2' is not known"):
        async with embed_service(models=f"{PACKAGED},all-MiniLM-L12-v2"):
            pass
    with pytest.raises(ValueError, match="RAGMESH_MODEL_PATH serves that one file"):
        async with embed_service(models=PACKAGED, model_path=known_model_path(PACKAGED)):
            pass
