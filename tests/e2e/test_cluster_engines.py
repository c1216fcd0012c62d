"""The system with its lexical engine on OpenSearch: the local REST server, or a real cluster when
RAGMESH_TEST_OPENSEARCH_URL is set. Versions replace, deletes retire, metadata updates rewrite."""

import os
import time

import pytest
from helpers import free_port_block
from opensearch_server import OpenSearchServer

from rag.v1 import gateway_pb2, types_pb2

from .system import System

pytestmark = pytest.mark.e2e
LEXICAL = types_pb2.FusionParams(method="lexical")


@pytest.fixture(scope="module")
def opensearch():
    url = os.environ.get("RAGMESH_TEST_OPENSEARCH_URL", "")
    if url:
        yield url, None
        return
    server = OpenSearchServer().start()
    yield server.url, server
    server.stop()


@pytest.fixture(scope="module")
def client(tmp_path_factory, opensearch):
    url, _ = opensearch
    index = f"e2e-{os.getpid()}"
    env = {"RAGMESH_LEXICAL_URL": url, "RAGMESH_LEXICAL_INDEX": index}
    s = System(tmp_path_factory.mktemp("opensearch"), free_port_block(), env=env).start()
    yield s.client()
    s.stop()


def lexical(client, query: str, **kwargs) -> list[types_pb2.Hit]:
    request = gateway_pb2.SearchRequest(query=query, top_k=20, fusion=LEXICAL, **kwargs)
    return list(client.stub.Search(request, metadata=client.metadata, timeout=30).hits)


def eventually(check, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.2)


def test_documents_are_searchable_replaced_updated_and_deleted(client, opensearch):
    _, fake = opensearch
    assert (
        client.ingest_and_wait("walrus.txt", b"Walruses use their tusks to haul out onto sea ice.").status
        == types_pb2.JOB_STATUS_DONE
    )
    [hit] = lexical(client, "walrus tusks")
    assert hit.chunk.doc_id == "walrus.txt" and hit.lexical_matched and hit.chunk.version == 1
    if fake:
        assert fake.indexes, "the retrieve service wrote through the OpenSearch protocol"

    job = client.ingest_and_wait("walrus.txt", b"Walruses dive for clams on the sea floor.")
    assert job.status == types_pb2.JOB_STATUS_DONE
    eventually(lambda: [h.chunk.version for h in lexical(client, "walrus")] == [2])
    assert not lexical(client, "tusks haul")

    client.ingest_and_wait("walrus.txt", b"Walruses dive for clams on the sea floor.", metadata={"zone": "arctic"})
    arctic = types_pb2.MetadataFilter(key="zone", any_of=["arctic"])
    eventually(lambda: len(lexical(client, "walrus clams", metadata_filters=[arctic])) == 1)

    client.stub.DeleteDocument(gateway_pb2.DeleteDocumentRequest(doc_id="walrus.txt"), metadata=client.metadata)
    eventually(lambda: not lexical(client, "walrus clams"))


def test_a_rebuilt_generation_gets_an_opensearch_index_of_its_own(client, opensearch):
    _, fake = opensearch
    client.ingest_and_wait("seal.txt", b"Harbour seals rest on sandbanks at low tide.")
    built = client.stub.RebuildIndex(gateway_pb2.RebuildIndexRequest(reason="e2e"), metadata=client.metadata).generation
    number = built.number

    def replayed() -> bool:
        reply = client.stub.ListIndexGenerations(gateway_pb2.ListIndexGenerationsRequest(), metadata=client.metadata)
        info = next(g for g in reply.generations if g.record.number == number)
        return info.index_watermark >= info.record.replay_until and info.lexical_documents > 0

    eventually(replayed)
    [hit] = lexical(client, "harbour seals sandbanks", generation=number)
    assert hit.chunk.doc_id == "seal.txt"
    # One index per tenant, named after the generation's own prefix.
    prefix = f"e2e-{os.getpid()}-g{number}.t-"
    if fake:
        assert len([name for name in fake.indexes if name.startswith(prefix)]) == 1
    client.stub.DropIndexGeneration(gateway_pb2.DropIndexGenerationRequest(number=number), metadata=client.metadata)
    if fake:
        assert [name for name in fake.indexes if name.startswith(prefix)] == []
