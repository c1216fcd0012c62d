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
