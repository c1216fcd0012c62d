"""Index generations with real processes: a rebuild replays the index stream beside the active
generation, follows new documents, is promoted only behind an evaluation the server made itself
(or an operator's recorded force), survives a restart of retrieve, rolls back and is dropped.
Only an operator searches a generation other than the active one."""

import json
import os
import signal
import subprocess
import sys
import time

import grpc
import pytest
from helpers import free_port_block

from rag.v1 import gateway_pb2, retrieve_pb2, retrieve_pb2_grpc, types_pb2
from services.cli.local import Ports

from .system import System, cli_json

pytestmark = pytest.mark.e2e

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


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    env = {"RAGMESH_RECHUNK_POLL_SECONDS": "1"}
    s = System(tmp_path_factory.mktemp("generations"), free_port_block(), env=env).start()
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


@pytest.fixture(scope="module")
def client(system):
    key = system.client().create_key("shelf")
    c = system.client(key)
    for doc_id, (title, text) in CORPUS.items():
        c.ingest_and_wait(doc_id, text.encode(), title=title)
    return c


@pytest.fixture(scope="module")
def operator(system, client):
    """The same tenant's documents, seen by an operator's key: it may search any generation."""
    return system.client(system.client().create_key("shelf", role=gateway_pb2.ROLE_OPERATOR))


def ragmesh(system, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAGMESH_DATA_DIR": str(system.data)}
    return subprocess.run([sys.executable, "-m", "services.cli", *args], env=env, capture_output=True, text=True)


def generations(system) -> dict:
    return cli_json(system, "index", "list")


def search(client, query: str, generation: int = 0) -> gateway_pb2.SearchResponse:
    request = gateway_pb2.SearchRequest(query=query, top_k=5, generation=generation)
    return client.stub.Search(request, metadata=client.metadata, timeout=30)


def rpc_error(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        call()
    return error.value


def test_a_rebuild_replays_the_stream_beside_the_active_generation(system, client, operator):
    first = generations(system)
    assert first["pointer"]["active"] == 1 and [g["record"]["number"] for g in first["generations"]] == [1]
    before = search(client, "red pandas bamboo")
    assert before.generation == 1 and before.index_generation.startswith("g1/all-MiniLM-L6-v2@")

    built = cli_json(system, "index", "rebuild", "--reason", "schema check", "--wait")
    assert built["number"] == 2 and int(built["replay_until"]) > 0
    listed = {g["record"]["number"]: g for g in generations(system)["generations"]}
    assert int(listed[2]["dense_points"]) == int(listed[1]["dense_points"]) == len(CORPUS)
    assert int(listed[2]["lexical_documents"]) == int(listed[1]["lexical_documents"]) == len(CORPUS)
    assert listed[1]["active"] and not listed[2].get("active")
    assert (system.data / "retrieve" / "g2" / "lexical").is_dir()

    rebuilt = search(operator, "red pandas bamboo", generation=2)
    assert rebuilt.generation == 2 and rebuilt.index_generation.startswith("g2/")
    assert [h.chunk.chunk_id for h in rebuilt.hits] == [h.chunk.chunk_id for h in before.hits]
    assert search(client, "red pandas bamboo").generation == 1  # the active one still serves
    denied = rpc_error(lambda: search(client, "red pandas bamboo", generation=2))
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED

    # A document ingested after the rebuild reaches both generations.
    client.ingest_and_wait("d7", b"Narwhal tusks are teeth that grow in a spiral through the upper lip.")
    for generation in (1, 2):
        for _ in range(100):
            hits = search(operator, "narwhal tusk spiral", generation=generation).hits
            if hits and hits[0].chunk.doc_id == "d7":
                break
            time.sleep(0.1)
        assert hits[0].chunk.doc_id == "d7", generation


def test_promotion_is_gated_by_an_evaluation_the_server_made(system, client, dataset):
    admin = system.client()
    unevaluated = rpc_error(
        lambda: admin.stub.PromoteIndex(
            gateway_pb2.PromoteIndexRequest(number=2, expected_active=1, note="trust me: it is better"),
            metadata=admin.metadata,
            timeout=10,
        )
    )
    assert unevaluated.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "no evaluation against the active generation 1" in unevaluated.details()
    refused = ragmesh(system, "index", "promote", "2")
    assert refused.returncode == 2 and "FAILED_PRECONDITION" in refused.stderr

    # A negative tolerance demands an improvement; an identical rebuild is not one.
    demanding = ragmesh(system, "index", "promote", "2", "--dataset", str(dataset), "--tolerance", "-0.5", "--json")
    assert demanding.returncode == 1
    report = json.loads(demanding.stdout)
    assert report["promoted"] is False and report["note"].startswith("failed: tiny-beir (4 queries): hybrid ndcg@10")
    failed = next(g for g in generations(system)["generations"] if g["record"]["number"] == 2)["record"]["verdict"]
    assert failed["baseline"] == 1 and failed.get("passed", False) is False and len(failed["dataset_sha256"]) == 64
    assert generations(system)["pointer"]["active"] == 1
    still = rpc_error(
        lambda: admin.stub.PromoteIndex(
            gateway_pb2.PromoteIndexRequest(number=2, expected_active=1), metadata=admin.metadata, timeout=10
        )
    )
    assert still.code() == grpc.StatusCode.FAILED_PRECONDITION and "failed its evaluation" in still.details()

    promoted = cli_json(system, "index", "promote", "2", "--dataset", str(dataset))
    assert promoted["promoted"] and promoted["pointer"]["active"] == 2 and promoted["pointer"]["previous"] == 1
    [hybrid] = promoted["verdict"]["scores"]
    assert hybrid["candidate_ndcg"] == hybrid["baseline_ndcg"] > 0.9 and promoted["verdict"]["passed"]
    assert promoted["note"].startswith("evaluation passed: tiny-beir (4 queries): hybrid ndcg@10")
    assert search(client, "red pandas bamboo").generation == 2
    assert generations(system)["pointer"]["note"] == promoted["note"]

    stale = rpc_error(
        lambda: admin.stub.PromoteIndex(
            gateway_pb2.PromoteIndexRequest(number=1, expected_active=1), metadata=admin.metadata, timeout=10
        )
    )
    assert stale.code() == grpc.StatusCode.ABORTED and "generation 2 is active" in stale.details()
    again = rpc_error(
        lambda: admin.stub.PromoteIndex(gateway_pb2.PromoteIndexRequest(number=2), metadata=admin.metadata, timeout=10)
    )
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION
    admin_of_shelf = system.client(admin.create_key("shelf", role=gateway_pb2.ROLE_ADMIN))
    denied = rpc_error(
        lambda: admin_of_shelf.stub.RebuildIndex(
            gateway_pb2.RebuildIndexRequest(), metadata=admin_of_shelf.metadata, timeout=10
        )
    )
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED  # generations are an operator's


def test_the_active_generation_survives_a_restart_of_retrieve(system, client):
    pids = json.loads((system.data / "pids.json").read_text())
    os.kill(pids["retrieve"], signal.SIGKILL)
    for _ in range(300):
        try:
            response = search(client, "narwhal tusk spiral")
            break
        except grpc.RpcError as exc:
            assert exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
            time.sleep(0.2)
    assert response.generation == 2 and response.hits[0].chunk.doc_id == "d7"


def test_rollback_then_drop(system, client, operator):
    assert cli_json(system, "index", "rollback")["active"] == 1
    assert search(client, "red pandas bamboo").generation == 1

    in_use = ragmesh(system, "index", "drop", "1")
    assert in_use.returncode == 2 and "FAILED_PRECONDITION" in in_use.stderr
    pointer = cli_json(system, "index", "drop", "2")
    assert pointer["active"] == 1 and pointer["previous"] == 0
    assert [g["record"]["number"] for g in generations(system)["generations"]] == [1]
    assert not (system.data / "retrieve" / "g2").exists()
    gone = rpc_error(lambda: search(operator, "red pandas", generation=2))
    assert gone.code() == grpc.StatusCode.NOT_FOUND
    no_previous = ragmesh(system, "index", "rollback")
    assert no_previous.returncode == 2 and "no previous generation" in no_previous.stderr


LONG = "\n\n".join(
    f"Paragraph {i} about tidal energy: the turbine number {i} sits on the seabed where currents run "
    f"fastest, and its blades turn slowly so that fish swim through unharmed. Engineers measured "
    f"{i * 7} kilowatts from it during spring tides, and maintenance happens every {i + 2} months."
    for i in range(1, 13)
)


def ordinals(client, doc_id: str, generation: int) -> list[tuple[int, int]]:
    """(version, ordinal) of every chunk of `doc_id` that generation shows."""
    request = gateway_pb2.SearchRequest(
        query="tidal turbine narwhal volcano chess",
        top_k=100,
        doc_ids=[doc_id],
        generation=generation,
        fusion=types_pb2.FusionParams(method="dense", candidate_depth=100),
    )
    hits = client.stub.Search(request, metadata=client.metadata, timeout=30).hits
    return sorted((h.chunk.version, h.chunk.ordinal) for h in hits)


def document(client, doc_id: str) -> types_pb2.DocumentRecord:
    request = gateway_pb2.GetDocumentRequest(doc_id=doc_id)
    return client.stub.GetDocument(request, metadata=client.metadata, timeout=10).document


def eventually(check, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_a_rechunk_rebuild_cuts_every_stored_document_again(system, client, operator):
    """Other chunk sizes: every document of every tenant is chunked and embedded again from its
    stored bytes into a new generation; documents changed meanwhile reach both chunkings; the
    registry keeps describing the live ingestion."""
    admin = system.client()
    other = system.client(admin.create_key("other-shelf"))
    other_operator = system.client(admin.create_key("other-shelf", role=gateway_pb2.ROLE_OPERATOR))
    other.ingest_and_wait("o1", b"Tidal turbines of another tenant, for a re-chunk across tenants.")
    client.ingest_and_wait("long", LONG.encode(), title="Tidal energy")
    record_before = document(client, "long")

    bad = rpc_error(
        lambda: admin.stub.RebuildIndex(
            gateway_pb2.RebuildIndexRequest(chunking=types_pb2.Chunking(target_tokens=1000, overlap_tokens=8)),
            metadata=admin.metadata,
            timeout=10,
        )
    )
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT and "target_tokens" in bad.details()

    built = cli_json(system, "index", "rebuild", "--chunk-tokens", "48", "--chunk-overlap", "8", "--wait")
    number = built["number"]
    live = {g["record"]["number"]: g for g in generations(system)["generations"]}
    assert built["rechunk"] and built["documents_queued"] == int(live[1]["documents"]) >= len(CORPUS) + 3
    assert int(live[number].get("documents", 0)) == int(live[1]["documents"])
    assert int(live[number].get("missing_documents", 0)) == 0
    assert int(live[number]["dense_points"]) > int(live[1]["dense_points"])

    configured, small = ordinals(operator, "long", 1), ordinals(operator, "long", number)
    assert configured == [(1, i) for i in range(len(configured))]
    assert small == [(1, i) for i in range(len(small))] and len(small) > 2 * len(configured)
    assert ordinals(other_operator, "o1", number) == [(1, 0)]  # the other tenant's too, in its tenant only
    assert ordinals(operator, "o1", number) == []

    # After the rebuild: a new document, a changed one and a deletion reach both chunkings.
    job = client.ingest_and_wait("long2", LONG.replace("tidal", "wave").encode(), title="Wave energy")
    client.ingest_and_wait("long", (LONG + "\n\nA closing paragraph about cables to shore.").encode())
    client.stub.DeleteDocument(gateway_pb2.DeleteDocumentRequest(doc_id="d2"), metadata=client.metadata, timeout=10)
    for generation in (1, number):

        def changed(generation=generation):
            assert {v for v, _ in ordinals(operator, "long", generation)} == {2}
            assert ordinals(operator, "long2", generation)
            assert ordinals(operator, "d2", generation) == []

        eventually(changed)
    # Written once per chunking, in one job.
    assert job.chunks_total == len(ordinals(operator, "long2", 1)) + len(ordinals(operator, "long2", number))
    assert len(ordinals(operator, "long2", number)) > 2 * len(ordinals(operator, "long2", 1))

    # The registry describes the live ingestion, untouched by the re-chunk.
    assert record_before.versions[0].chunk_count == len(configured)
    assert document(client, "long").versions[0].chunk_count == len(configured)

    # Promoted, with the configured generation dropped, only the new chunking is written.
    cli_json(system, "index", "promote", str(number), "--force")
    cli_json(system, "index", "drop", "1")
    job = client.ingest_and_wait("long3", LONG.replace("tidal", "river").encode())

    def only_small_chunks():
        assert job.chunks_total == len(ordinals(client, "long3", 0)) > 2 * len(configured)

    eventually(only_small_chunks)


def filled_then_dropped(system, operator, number: int, active: int) -> None:
    """Generation `number` comes to show every document `active` shows; then it is dropped."""

    def filled():
        live = {g["record"]["number"]: g for g in generations(system)["generations"]}
        assert int(live[number].get("documents", 0)) == int(live[active]["documents"]) > 0
        assert int(live[number].get("missing_documents", 0)) == 0

    eventually(filled, timeout=180)
    assert ordinals(operator, "d1", number) == [(1, 0)]
    cli_json(system, "index", "drop", str(number))


def test_a_rechunk_generation_a_dead_gateway_left_unqueued_is_filled_by_ingest(system, client, operator):
    """A rebuild records the generation in retrieve, then asks ingest to queue the documents. A
    gateway killed between the two steps leaves the first done and the second not: ingest finds
    the recorded generation itself and fills it."""
    before = {g["record"]["number"]: g for g in generations(system)["generations"]}
    active = generations(system)["pointer"]["active"]
    with grpc.insecure_channel(Ports(system.port_base).addr("retrieve")) as channel:
        created = retrieve_pb2_grpc.RetrieveServiceStub(channel).CreateGeneration(
            retrieve_pb2.CreateGenerationRequest(
                reason="its gateway died", rechunk=True, chunking=types_pb2.Chunking(target_tokens=64, overlap_tokens=8)
            ),
            timeout=30,
        )
    number = created.generation.number
    assert number not in before

    filled_then_dropped(system, operator, number, active)


def test_a_rebuild_while_ingest_is_down_is_recorded_and_queued_when_it_returns(system, client, operator):
    active = generations(system)["pointer"]["active"]
    os.kill(system.proc.pid, signal.SIGSTOP)  # the supervisor holds still: ingest stays down
    try:
        os.kill(system.pids["ingest"], signal.SIGKILL)
        time.sleep(0.5)
        # Without chunk sizes: checking them would need ingest, and the rebuild would be refused.
        done = ragmesh(system, "index", "rebuild", "--rechunk", "--json")
    finally:
        os.kill(system.proc.pid, signal.SIGCONT)
    assert done.returncode == 0, done.stderr
    built = json.loads(done.stdout)
    number = built["number"]
    assert built["rechunk"] and built["queued_later"] is True and built["documents_queued"] == 0

    filled_then_dropped(system, operator, number, active)
