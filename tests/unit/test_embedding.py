"""The real ONNX model: vectors are independent of batch composition and carry the model id."""

import numpy as np
import pytest

from services.common.tokenizer import packaged_model_path, packaged_tokenizer_path
from services.embed.model import EmbeddingModel

TEXTS = [
    "hi",
    "The red panda is a small mammal native to the eastern Himalayas.",
    "Kubernetes schedules containers onto nodes; a pod is the smallest deployable unit. " * 12,
    "Quantum chromodynamics describes the strong interaction between quarks and gluons.",
]


@pytest.fixture(scope="module")
def model():
    m = EmbeddingModel(packaged_model_path(), packaged_tokenizer_path(), "all-MiniLM-L6-v2")
    m.load()
    return m


def test_model_id_names_the_file_hash(model):
    assert model.model_id == (
        "all-MiniLM-L6-v2@sha256:8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
    )
    assert model.dimension == 384


def test_vector_is_the_same_alone_and_in_any_batch(model):
    alone = np.stack([model.embed([t])[0] for t in TEXTS])
    together = model.embed(TEXTS)
    reversed_batch = model.embed(TEXTS[::-1])[::-1]
    assert np.allclose(alone, together, atol=1e-5)
    assert np.allclose(alone, reversed_batch, atol=1e-5)


def test_vectors_are_normalised_and_meaningful(model):
    vectors = model.embed(["What do red pandas eat?", "Red pandas eat bamboo.", "Kubernetes pods"])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


def test_tokenizer_has_no_fixed_padding_and_truncates_at_256(model):
    short, long = model.tokenize(["hi", "word " * 1000])
    assert len(short.ids) == 3
    assert len(long.ids) == 256


async def test_bulk_workers_side_by_side_serve_every_request_and_stay_alive(model):
    """Two single-threaded bulk workers share one queue. Requests of one text each, arriving in
    waves, make a worker wait for more texts while the other takes them all; neither may stop,
    and every vector equals the one computed alone."""
    import asyncio

    from services.embed.batcher import BULK, Batcher

    batcher = Batcher(model, token_budget=1024, queue_limit=4096, bulk_linger_s=0.005, bulk_workers=2)
    batcher.start()
    try:
        expected = model.embed(TEXTS)
        for wave in range(40):
            results = await asyncio.gather(*(batcher.embed([text], BULK) for text in TEXTS[: 1 + wave % 4]))
            for (vectors, tokens), text in zip(results, TEXTS, strict=False):
                assert tokens > 0
                assert np.allclose(vectors[0], expected[TEXTS.index(text)], atol=1e-5)
            await asyncio.sleep(0.003 * (wave % 3))
        assert len(batcher._tasks) == 3 and not any(task.done() for task in batcher._tasks)
    finally:
        await batcher.stop()


def test_the_embed_benchmark_plans_its_ideal_batches_with_the_service_planner(model):
    from benchmarks.bench_embed import raw_rates

    naive, ideal, tokens = raw_rates(model, TEXTS, 1024)
    assert tokens == sum(len(e.ids) for e in model.tokenize(TEXTS))
    assert naive > 0 and ideal > 0
