"""The models known by name: the derived int8 model is built deterministically at set-up, pinned by
its sha256, and its vectors do not depend on the batch a text is in."""

import shutil

import numpy as np
import pytest

from services.common.tokenizer import packaged_tokenizer_path
from services.embed.catalogue import INT8, KNOWN, PACKAGED, check_known_model, known_model, known_model_path
from services.embed.derive import ensure_int8
from services.embed.model import EmbeddingModel, file_sha256

TEXTS = [
    "hi",
    "The red panda is a small mammal native to the eastern Himalayas.",
    "Kubernetes schedules containers onto nodes; a pod is the smallest deployable unit. " * 12,
    "Quantum chromodynamics describes the strong interaction between quarks and gluons.",
]


def load(name: str, one_text_per_run: bool) -> EmbeddingModel:
    model = EmbeddingModel(known_model_path(name), packaged_tokenizer_path(), name, one_text_per_run=one_text_per_run)
    model.load()
    return model


@pytest.fixture(scope="module")
def derived():
    return load(INT8, one_text_per_run=True)


def test_set_up_built_the_derived_model_with_its_pinned_hash(derived):
    assert known_model_path(INT8).is_file()
    assert derived.model_id == f"{INT8}@sha256:8f94809142b62be396cf8ce4dddb821417b079165071f385586e4d7101b8e74a"
    assert derived.dimension == 384
    assert known_model(INT8).one_text_per_run and not known_model(PACKAGED).one_text_per_run


def test_derived_vectors_are_the_same_alone_and_in_any_batch(derived):
    alone = np.stack([derived.embed([t])[0] for t in TEXTS])
    assert np.array_equal(alone, derived.embed(TEXTS))
    assert np.array_equal(alone, derived.embed(TEXTS[::-1])[::-1])
    # Why each text runs alone: in one batch, the activations share one quantisation scale.
    batched = load(INT8, one_text_per_run=False).embed(TEXTS)
    assert np.abs(batched - alone).max() > 1e-3


def test_derived_vectors_stay_close_to_the_packaged_models(derived):
    packaged = load(PACKAGED, one_text_per_run=False).embed(TEXTS)
    cosine = (packaged * derived.embed(TEXTS)).sum(axis=1)
    assert cosine.min() > 0.97
    vectors = derived.embed(["What do red pandas eat?", "Red pandas eat bamboo.", "Kubernetes pods"])
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


def test_an_unknown_name_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError) as error:
        known_model_path("all-MiniLM-L6-v3")
    assert "'all-MiniLM-L6-v3' is not known" in str(error.value)
    assert PACKAGED in str(error.value) and INT8 in str(error.value)


def test_a_file_that_is_not_the_pinned_one_is_refused(tmp_path):
    altered = tmp_path / f"{INT8}.onnx"
    shutil.copyfile(known_model_path(INT8), altered)
    with open(altered, "r+b") as f:
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 1]))
    with pytest.raises(RuntimeError) as error:
        check_known_model(INT8, altered, file_sha256(altered))
    assert KNOWN[INT8].sha256 in str(error.value) and file_sha256(altered) in str(error.value)


def test_set_up_builds_the_same_bytes_again_over_a_damaged_file(tmp_path):
    damaged = tmp_path / f"{INT8}.onnx"
    damaged.write_bytes(b"not a model")
    assert ensure_int8(tmp_path) == damaged
    assert file_sha256(damaged) == KNOWN[INT8].sha256
    assert sorted(p.name for p in tmp_path.iterdir()) == [damaged.name]  # no partial file left
