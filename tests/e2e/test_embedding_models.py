"""A new deployment configured for the derived int8 model serves it end to end: its generation,
every answer and every search name that model."""

import pytest
from helpers import free_port_block

from rag.v1 import types_pb2
from services.embed.catalogue import INT8, KNOWN
from services.retrieve.state import INDEX_SCHEMA_VERSION

from .system import System

pytestmark = pytest.mark.e2e

PANDAS = b"""# Red panda
The red panda is a small mammal native to the eastern Himalayas and southwestern China.

## Diet
Red pandas eat mostly bamboo leaves, but also fruit, acorns and insects.
"""
VOLCANO = b"Mount Etna is an active stratovolcano on the east coast of Sicily, Italy. It erupts often."


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    s = System(tmp_path_factory.mktemp("ragmesh"), free_port_block(), env={"RAGMESH_MODEL_NAME": INT8}).start()
    yield s
    s.stop()


def test_a_fresh_deployment_indexes_and_answers_with_the_derived_model(system):
    client = system.client()
    for doc_id, content in [("pandas.md", PANDAS), ("etna.txt", VOLCANO)]:
        assert client.ingest_and_wait(doc_id, content, source_name=doc_id).status == types_pb2.JOB_STATUS_DONE
    model_id = f"{INT8}@sha256:{KNOWN[INT8].sha256}"

    _, final = client.ask("What do red pandas eat?")
    assert final.status == types_pb2.ANSWER_STATUS_ANSWERED and "bamboo" in final.answer
    assert final.citations[0].doc_id == "pandas.md"
    manifest = final.manifest
    assert manifest.embedding_model_id == model_id
    made_of = f"{manifest.chunker_version}/schema-{INDEX_SCHEMA_VERSION}"
    assert manifest.index_generation == f"g1/{INT8}@{KNOWN[INT8].sha256[:8]}/{made_of}"

    search = client.search("Which volcano erupts in Sicily?", top_k=2)
    assert search.hits[0].chunk.doc_id == "etna.txt"
    assert search.embedding_model_id == model_id
