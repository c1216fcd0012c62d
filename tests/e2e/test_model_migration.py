"""A model migration with real processes and both real ONNX models: `ragmesh index rebuild --model`
embeds every stored chunk again into a new generation while the active one keeps answering every
search; documents ingested, changed and deleted meanwhile reach it; it is promoted behind the
server's evaluation, answers and searches then name the new model, and a rollback brings the old
one back. Nothing is ingested again."""

import json
import threading
import time

import grpc
import pytest
from helpers import free_port_block

from rag.v1 import gateway_pb2, types_pb2
from services.embed.catalogue import INT8, KNOWN, PACKAGED

from .system import System, cli_json

pytestmark = pytest.mark.e2e

PACKAGED_ID, INT8_ID = (f"{name}@sha256:{KNOWN[name].sha256}" for name in (PACKAGED, INT8))
CORPUS = {
    "d1": ("Red pandas", "Red pandas eat mostly bamboo leaves and live in the eastern Himalayas."),
    "d2": ("Volcanoes", "A stratovolcano is built from layers of hardened lava, ash and pumice."),
    "d3": ("Chess", "Castling moves the king two squares towards a rook, which jumps over it."),
    "d4": ("Sourdough", "A sourdough starter ferments flour and water with wild yeast and lactobacilli."),
    "d5": ("Lighthouses", "The Fresnel lens let lighthouse beams reach sailors more than twenty miles away."),
    "d6": ("Glaciers", "Glaciers carve U-shaped valleys as the moving ice grinds the bedrock below."),
}
QUERIES = {
    "q1": ("what do red pandas eat", "d1"),
    "q2": ("how is a stratovolcano formed", "d2"),
    "q3": ("castling rule in chess", "d3"),
    "q4": ("wild yeast starter for bread", "d4"),
}
# More chunks to embed again: the rebuild takes a while, and searches go on meanwhile.
FILLER = {
    f"f{i}": (
        f"Harbour log {i}",
        f"Entry {i}: the ferry number {i} left the harbour at {i % 12 + 1} o'clock carrying {i * 3} cars. "
        f"The crew checked the mooring lines, and the pilot reported a swell of {i % 5} metres.",
    )
    for i in range(60)
}


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    env = {"RAGMESH_MODELS": f"{PACKAGED},{INT8}"}
    s = System(tmp_path_factory.mktemp("migration"), free_port_block(), env=env).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("datasets") / "tiny-beir"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": t, "text": x}) + "\n" for k, (t, x) in CORPUS.items())
    )
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": text}) + "\n" for q, (text, _) in QUERIES.items())
    )
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, (_, d) in QUERIES.items())
    )
    return folder


def search(client, query: str, generation: int = 0, doc_ids=()) -> gateway_pb2.SearchResponse:
    request = gateway_pb2.SearchRequest(query=query, top_k=5, generation=generation, doc_ids=list(doc_ids))
    return client.stub.Search(request, metadata=client.metadata, timeout=30)


def generation_info(system, number: int) -> dict:
    return next(g for g in cli_json(system, "index", "list")["generations"] if g["record"]["number"] == number)


class Searching(threading.Thread):
    """Searches the active generation every 150 ms (within the key's query rate); keeps every
    answer (or error) it got."""

    def __init__(self, client) -> None:
        super().__init__(daemon=True)
        self.client, self.answers, self.errors = client, [], []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.answers.append(search(self.client, "what do red pandas eat"))
            except grpc.RpcError as exc:
                self.errors.append(f"{exc.code()}: {exc.details()}")
            self.stopping.wait(0.15)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=60)


def test_a_model_migration_without_reingesting_or_downtime(system, dataset):
    admin = system.client()
    client = system.client(admin.create_key("shelf"))
    operator = system.client(admin.create_key("shelf", role=gateway_pb2.ROLE_OPERATOR))
    jobs = [client.ingest(d, text.encode(), title=title).job_id for d, (title, text) in {**CORPUS, **FILLER}.items()]
    assert {client.wait(job).status for job in jobs} == {types_pb2.JOB_STATUS_DONE}
    first = search(client, "what do red pandas eat")
    assert (first.generation, first.embedding_model_id, first.hits[0].chunk.doc_id) == (1, PACKAGED_ID, "d1")
    chunks = int(generation_info(system, 1)["dense_points"])
    assert chunks == len(CORPUS) + len(FILLER)

    with pytest.raises(grpc.RpcError) as refused:
        admin.stub.RebuildIndex(
            gateway_pb2.RebuildIndexRequest(embedding_model="all-MiniLM-L12-v2"), metadata=admin.metadata, timeout=10
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() == (
        f"embedding model 'all-MiniLM-L12-v2' is not served by the embed service; it serves {PACKAGED_ID}, {INT8_ID}"
    )

    searching = Searching(client)
    searching.start()
    built = cli_json(system, "index", "rebuild", "--model", INT8, "--reason", "quantised model")
    assert (built["number"], built["embedding_model_id"]) == (2, INT8_ID)
    # Meanwhile: a new document, a changed one and a deleted one (ingestion embeds with the default model).
    added = client.ingest_and_wait("d7", b"Narwhal tusks are teeth that grow in a spiral through the upper lip.")
    changed = client.ingest_and_wait("d5", b"Lighthouse keepers wound the clockwork that turned the lens every night.")
    assert added.status == changed.status == types_pb2.JOB_STATUS_DONE
    client.stub.DeleteDocument(gateway_pb2.DeleteDocumentRequest(doc_id="d6"), metadata=client.metadata, timeout=10)

    deadline = time.monotonic() + 300
    while True:
        info = generation_info(system, 2)
        if info.get("caught_up") and not int(info.get("missing_documents", 0)):
            break
        assert time.monotonic() < deadline, info
        time.sleep(0.5)
    assert info["embedding_model_id"] == INT8_ID and info["index_generation"].startswith(f"g2/{INT8}@8f948091/")
    for generation in (1, 2):  # what happened during the rebuild reached both generations
        for _ in range(300):
            narwhal = search(operator, "narwhal tusk spiral", generation)
            keeper = search(operator, "lighthouse keepers clockwork", generation, doc_ids=["d5"])
            glaciers = search(operator, "glaciers carve valleys", generation, doc_ids=["d6"])
            if narwhal.hits[0].chunk.doc_id == "d7" and keeper.hits[0].chunk.version == 2 and not glaciers.hits:
                break
            time.sleep(0.1)
        assert narwhal.hits[0].chunk.doc_id == "d7" and narwhal.generation == generation
        assert [h.chunk.version for h in keeper.hits] == [2] and not glaciers.hits
        assert narwhal.embedding_model_id == (PACKAGED_ID if generation == 1 else INT8_ID)

    promoted = cli_json(system, "index", "promote", "2", "--dataset", str(dataset), "--tolerance", "0.05")
    assert promoted["promoted"] and promoted["pointer"]["active"] == 2 and promoted["verdict"]["passed"]
    [hybrid] = promoted["verdict"]["scores"]
    assert hybrid["candidate_ndcg"] > 0.9 and hybrid["baseline_ndcg"] > 0.9
    time.sleep(1.0)  # a few searches of the new generation
    searching.stop()

    # Every search during the rebuild and the switch answered, with the red pandas first.
    assert searching.errors == []
    assert len(searching.answers) > 20
    assert all(a.hits and a.hits[0].chunk.doc_id == "d1" for a in searching.answers)
    models = [(a.generation, a.embedding_model_id) for a in searching.answers]
    assert models[0] == (1, PACKAGED_ID) and models[-1] == (2, INT8_ID)
    assert set(models) == {(1, PACKAGED_ID), (2, INT8_ID)}
    switched = models.index((2, INT8_ID))
    assert set(models[switched:]) == {(2, INT8_ID)}  # never back to the old model once switched

    now = search(client, "what do red pandas eat")
    assert now.embedding_model_id == INT8_ID and now.index_generation.startswith(f"g2/{INT8}@8f948091/")
    _, answer = client.ask("What do red pandas eat?", no_cache=True)
    assert answer.status == types_pb2.ANSWER_STATUS_ANSWERED and answer.citations[0].doc_id == "d1"
    assert answer.manifest.embedding_model_id == INT8_ID and answer.manifest.index_generation.startswith("g2/")
    # Nothing was ingested again: the registry still holds each document's first (or only) version.
    assert (
        client.stub.GetDocument(
            gateway_pb2.GetDocumentRequest(doc_id="d1"), metadata=client.metadata, timeout=10
        ).document.current_version
        == 1
    )

    assert cli_json(system, "index", "rollback")["active"] == 1
    back = search(client, "what do red pandas eat")
    assert (back.generation, back.embedding_model_id, back.hits[0].chunk.doc_id) == (1, PACKAGED_ID, "d1")
    _, answer = client.ask("What do red pandas eat?", no_cache=True)
    assert answer.manifest.embedding_model_id == PACKAGED_ID and answer.manifest.index_generation.startswith("g1/")
    log = (system.data / "logs" / "retrieve.log").read_text()
    reembedded = [json.loads(line) for line in log.splitlines() if "started from re-embedded chunks" in line]
    assert [(r["to"], r["model"], r["chunks"]) for r in reembedded] == [(2, INT8_ID, chunks)]
