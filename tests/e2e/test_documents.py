"""Real-world documents through the whole system: a pathological PDF fails at its CPU limit while
another tenant's document is indexed; an encrypted PDF opens with the password given at upload,
which no API returns; a scanned PDF is searchable and its chunks say they were read by OCR."""

import json
import time

import pytest
from helpers import free_port_block

from benchmarks.documents import PAGES, encrypted_pdf, pdf_bomb, picture, scanned_pdf
from rag.v1 import gateway_pb2, types_pb2

from .system import System, cli_json

pytestmark = pytest.mark.e2e

LIMITS = {
    "RAGMESH_PARSE_CPU_SECONDS": "10",  # a page of OCR takes 3-5 s on these machines
    "RAGMESH_PARSE_PROCESSES": "2",
    "RAGMESH_PDF_MAX_CONTENT_BYTES": str(1 << 40),  # so the CPU limit, not the content cap, stops the bomb
}


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    s = System(tmp_path_factory.mktemp("documents"), free_port_block(), env=LIMITS).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def admin(system):
    return system.client()


def document(client, doc_id: str) -> types_pb2.DocumentRecord:
    return client.stub.GetDocument(
        gateway_pb2.GetDocumentRequest(doc_id=doc_id), metadata=client.metadata, timeout=10
    ).document


def test_a_pathological_pdf_fails_at_its_limit_while_another_tenant_is_indexed(system, admin):
    attacker = system.client(admin.create_key("attacker"))
    victim = system.client(admin.create_key("victim"))
    bomb = attacker.ingest("bomb.pdf", pdf_bomb())
    time.sleep(1.0)  # the bomb is being parsed
    indexed = victim.ingest_and_wait("notes.txt", b"The ferry to the island leaves at seven every morning.")
    assert indexed.status == types_pb2.JOB_STATUS_DONE
    failed = attacker.wait(bomb.job_id)
    assert failed.status == types_pb2.JOB_STATUS_FAILED
    assert indexed.updated_unix_ms < failed.updated_unix_ms  # not queued behind the bomb
    assert failed.error == "parsing used more than its 10 s of CPU time"
    record = document(attacker, "bomb.pdf")
    assert record.status == types_pb2.DOCUMENT_STATUS_FAILED and record.versions[-1].error == failed.error
    assert [h.chunk.doc_id for h in victim.search("ferry island morning").hits] == ["notes.txt"]


def test_an_encrypted_pdf_is_indexed_with_its_password_which_is_never_shown(system, admin):
    client = system.client(admin.create_key("vault"))
    data = encrypted_pdf(PAGES[0], user="harbour-7731")
    locked = client.ingest_and_wait("locked.pdf", data)
    assert locked.status == types_pb2.JOB_STATUS_FAILED
    assert locked.error == "the PDF is encrypted: give its password with the upload"
    opened = client.ingest_and_wait("locked.pdf", data, password="harbour-7731")
    assert opened.status == types_pb2.JOB_STATUS_DONE, opened.error
    record = document(client, "locked.pdf")
    assert [v.sealed_password for v in record.versions] == [b"", b""]
    assert b"harbour-7731" not in record.SerializeToString()
    hits = client.search("warehouse in Lyon regional distribution").hits
    assert [h.chunk.doc_id for h in hits] == ["locked.pdf"]


def test_the_cli_sends_the_pdf_password_from_its_environment(system, admin, tmp_path):
    key = admin.create_key("vault-cli")
    (tmp_path / "minutes.pdf").write_bytes(encrypted_pdf(PAGES[2], user="quay-19"))
    out = cli_json(
        system,
        "ingest",
        str(tmp_path / "minutes.pdf"),
        "--public",
        "--wait",
        key=key,
        env={"RAGMESH_PDF_PASSWORD": "quay-19"},
    )
    assert "quay-19" not in json.dumps(out)
    client = system.client(key)
    assert document(client, "minutes.pdf").status == types_pb2.DOCUMENT_STATUS_INDEXED


def test_a_scanned_pdf_is_searchable_and_marked_as_ocr(system, admin):
    client = system.client(admin.create_key("scans"))
    job = client.ingest_and_wait("scan.pdf", scanned_pdf([picture(PAGES[1])]))
    assert job.status == types_pb2.JOB_STATUS_DONE, job.error
    (hit,) = client.search("energy prices staff numbers calls").hits
    assert (hit.chunk.doc_id, hit.chunk.content_kind, hit.chunk.page_start, hit.chunk.page_end) == (
        "scan.pdf",
        "ocr",
        1,
        1,
    )


def test_a_docx_version_records_what_it_inflates_to(system, admin):
    from fixtures import docx

    client = system.client(admin.create_key("office"))
    data = docx("Manual", [("Care", ["Oil the hinges every spring. " * 500])])
    job = client.ingest_and_wait("manual.docx", data)
    assert job.status == types_pb2.JOB_STATUS_DONE, job.error
    (version,) = document(client, "manual.docx").versions
    assert version.size_bytes == len(data) and version.inflated_bytes > 3 * len(data)
