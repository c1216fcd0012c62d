"""Ingestion under real faults, with real processes: a worker SIGKILLed mid-job, nats-server
killed during a bulk import, metadata-only updates, retries, every format end to end."""

import asyncio
import json
import os
import signal
import time

import grpc
import pytest
from fixtures import docx, pdf
from helpers import free_port_block
from nats.js.errors import ObjectNotFoundError

from rag.v1 import gateway_pb2, retrieve_pb2, retrieve_pb2_grpc, types_pb2
from services.cli.local import nats_passwords
from services.common import natsio
from services.common.ids import sha256_hex
from services.ingest.storage import object_name

from .system import System

pytestmark = pytest.mark.e2e

FAST_FAULTS = {
    "RAGMESH_JOB_ACK_WAIT_SECONDS": "2",
    "RAGMESH_EMBED_BATCH_SIZE": "8",
    "RAGMESH_CHUNK_TARGET_TOKENS": "64",
    "RAGMESH_CHUNK_OVERLAP_TOKENS": "0",
    # The long document is read back from the object store, the short ones travel in their jobs.
    "RAGMESH_INLINE_JOB_BYTES": "20000",
}


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    s = System(tmp_path_factory.mktemp("faults"), free_port_block(), env=FAST_FAULTS).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(system):
    return system.client(system.client().create_key("faults", principals=["alice"]))


def pids(system) -> dict[str, int]:
    return json.loads((system.data / "pids.json").read_text())


def index_counts(system, tenant: str, doc_id: str) -> tuple[int, int]:
    with grpc.insecure_channel(f"127.0.0.1:{system.port_base + 4}") as channel:
        info = retrieve_pb2_grpc.RetrieveServiceStub(channel).GetIndexInfo(
            retrieve_pb2.GetIndexInfoRequest(tenant=tenant, doc_id=doc_id), timeout=10
        )
    return info.dense_points, info.lexical_documents


def long_document(paragraphs: int) -> bytes:
    return "\n\n".join(
        f"Paragraph {i} records observation {i * 7} of the glacier survey: ice thickness, melt rate "
        f"and the colour of meltwater pool number {i} were measured twice on day {i % 30}."
        for i in range(paragraphs)
    ).encode()


def document(client, doc_id: str) -> types_pb2.DocumentRecord:
    for _ in range(50):
        try:
            return client.stub.GetDocument(
                gateway_pb2.GetDocumentRequest(doc_id=doc_id), metadata=client.metadata, timeout=10
            ).document
        except grpc.RpcError as exc:  # a service or NATS restarting: retry, as any client would
            if exc.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            time.sleep(0.2)
    raise TimeoutError(doc_id)


def test_worker_killed_mid_job_resumes_and_indexes_exactly_once(system, client):
    response = client.ingest("glacier.txt", long_document(400), title="Glacier survey")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = client.stub.GetJob(gateway_pb2.GetJobRequest(job_id=response.job_id), metadata=client.metadata).job
        if 0 < job.chunks_embedded < job.chunks_total:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the job never showed partial progress")
    os.kill(pids(system)["ingest"], signal.SIGKILL)
    job = client.wait(response.job_id, timeout=240)
    assert job.status == types_pb2.JOB_STATUS_DONE
    assert job.chunks_embedded == job.chunks_total > 100
    record = document(client, "glacier.txt")
    assert record.status == types_pb2.DOCUMENT_STATUS_INDEXED
    assert record.versions[-1].chunk_count == job.chunks_total
    assert index_counts(system, "faults", "glacier.txt") == (job.chunks_total, job.chunks_total)
    log = (system.data / "logs" / "ingest.log").read_text()
    assert '"resuming job"' in log
    # Its embedding cost counts the batches of both deliveries, as a job never cut off would.
    whole = client.ingest_and_wait("glacier-copy.txt", long_document(400), title="Glacier survey")
    assert job.embedding_tokens == whole.embedding_tokens > 10 * job.chunks_total


def test_nats_killed_during_bulk_import_loses_no_document(system, client):
    jobs = [client.ingest(f"bulk-{i}.txt", long_document(8 + i % 5) + f" Bulk {i}.".encode()).job_id for i in range(30)]
    time.sleep(0.5)
    os.kill(pids(system)["nats"], signal.SIGKILL)
    finished = [client.wait(job_id, timeout=300) for job_id in jobs]
    assert all(j.status == types_pb2.JOB_STATUS_DONE for j in finished), [j.error for j in finished]
    for i in range(30):
        record = document(client, f"bulk-{i}.txt")
        assert record.status == types_pb2.DOCUMENT_STATUS_INDEXED
        assert index_counts(system, "faults", f"bulk-{i}.txt")[0] == record.versions[-1].chunk_count


def test_metadata_only_update_does_not_reembed(system, client):
    bob = system.client(system.client().create_key("faults", principals=["bob"]))  # may read and so replace it
    first = bob.ingest_and_wait("memo.txt", b"The orchard harvest ends in late October this year.", acl=["bob"])
    assert "memo.txt" not in {h.chunk.doc_id for h in client.search("orchard harvest October").hits}
    update = bob.ingest("memo.txt", b"The orchard harvest ends in late October this year.", acl=["alice"])
    assert update.deduplicated and update.metadata_updated and update.version == first.version
    for _ in range(100):
        hits = [h for h in client.search("orchard harvest October").hits if h.chunk.doc_id == "memo.txt"]
        if hits:
            break
        time.sleep(0.1)
    assert hits and list(hits[0].chunk.acl) == ["alice"] and hits[0].chunk.version == 1
    assert [v.version for v in document(client, "memo.txt").versions] == [1]


def test_failed_document_reports_a_reason_and_can_be_retried(client):
    failed = client.ingest_and_wait("empty-scan.pdf", pdf([["x"]], blank_pages=(1,)))
    assert failed.status == types_pb2.JOB_STATUS_FAILED
    assert failed.error == "no page has text, not even by OCR (1 page)"
    retry = client.stub.RetryDocument(
        gateway_pb2.RetryDocumentRequest(doc_id="empty-scan.pdf"), metadata=client.metadata
    )
    assert retry.job_id != failed.job_id and retry.version == failed.version
    again = client.wait(retry.job_id)
    assert again.status == types_pb2.JOB_STATUS_FAILED and again.error == failed.error
    with pytest.raises(grpc.RpcError) as error:
        client.stub.RetryDocument(gateway_pb2.RetryDocumentRequest(doc_id="glacier.txt"), metadata=client.metadata)
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_every_format_ends_indexed_and_bad_input_fails_alone(client):
    report = pdf(
        [["The turbine blades were replaced in March."], ["Vibration fell by half after the repair."], []],
        header="Plant log",
        footer="Page {n}",
        blank_pages=(3,),
    )
    handbook = docx(
        "Handbook",
        [("Safety", ["Helmets are required on the turbine deck."])],
        table=[["Zone", "Rule"], ["Deck", "Helmet"]],
    )
    good = {
        "report.pdf": report,
        "handbook.docx": handbook,
        "notes.md": b"# Notes\n\n```\nrun()\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
        "page.html": b"<html><body><nav>x</nav><h1>Wind</h1><p>Wind farms need calm seas.</p></body></html>",
        "cities.csv": b"city,country\nLyon,France\n",
    }
    bad = {
        "empty.txt": b"",
        "noise.bin": os.urandom(4096),
        "broken.pdf": report[: len(report) // 3],
        "latin1.txt": "caf\xe9 cr\xe8me".encode("latin-1"),
    }
    jobs = {name: client.ingest(name, content) for name, content in {**good, **bad}.items() if content}
    with pytest.raises(grpc.RpcError) as error:
        client.ingest("empty.txt", b"")
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    results = {name: client.wait(r.job_id) for name, r in jobs.items()}
    for name in good:
        assert results[name].status == types_pb2.JOB_STATUS_DONE, (name, results[name].error)
    for name in ["noise.bin", "broken.pdf", "latin1.txt"]:
        assert results[name].status == types_pb2.JOB_STATUS_FAILED and results[name].error, name
    assert list(document(client, "report.pdf").versions[-1].warnings) == ["pages without text: 3"]
    hit = [h for h in client.search("turbine vibration repair").hits if h.chunk.doc_id == "report.pdf"][0]
    assert hit.chunk.page_start >= 1 and hit.chunk.content_kind == "prose"


def test_oversized_upload_is_refused_before_it_completes(system, client):
    limit = 50 * 1024 * 1024
    pieces = iter(
        [gateway_pb2.IngestDocumentRequest(header=gateway_pb2.DocumentHeader(doc_id="huge.txt"))]
        + [gateway_pb2.IngestDocumentRequest(data=b"a" * (4 << 20)) for _ in range(limit // (4 << 20) + 2)]
    )
    with pytest.raises(grpc.RpcError) as error:
        client.stub.IngestDocument(pieces, metadata=client.metadata, timeout=60)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "limit" in error.value.details()


def raw_objects(system, tenant: str, doc_id: str, contents: list[bytes]) -> list[bool]:
    """Whether the object store still holds each content's raw bytes for the document."""

    async def look() -> list[bool]:
        password = nats_passwords(system.data)["ingest"]  # the raw bytes are ingest's
        nc = await natsio.connect(f"nats://127.0.0.1:{system.port_base}", "ingest", password)
        try:
            store = await nc.jetstream().object_store(natsio.OBJECTS_RAW)
            found = []
            for content in contents:
                try:
                    await store.get_info(object_name(tenant, doc_id, sha256_hex(content)))
                    found.append(True)
                except ObjectNotFoundError:
                    found.append(False)
            return found
        finally:
            await nc.close()

    return asyncio.run(look())


def test_replaced_and_deleted_documents_keep_no_raw_bytes(system, client):
    first, second = b"The ferry leaves at nine from pier four.", b"The ferry now leaves at ten from pier two."
    client.ingest_and_wait("ferry.txt", first)
    assert raw_objects(system, "faults", "ferry.txt", [first]) == [True]
    client.ingest_and_wait("ferry.txt", second)
    for _ in range(50):  # removed once the newer version is indexed
        if raw_objects(system, "faults", "ferry.txt", [first, second]) == [False, True]:
            break
        time.sleep(0.2)
    assert raw_objects(system, "faults", "ferry.txt", [first, second]) == [False, True]
    client.stub.DeleteDocument(gateway_pb2.DeleteDocumentRequest(doc_id="ferry.txt"), metadata=client.metadata)
    assert raw_objects(system, "faults", "ferry.txt", [first, second]) == [False, False]
