"""An upload cut off inside ingest, between the registry and the job queue (ingest SIGKILLed there):
the registry says the new version is queued, but no job record and no job message exist. The
caller saw an error and retries with the same bytes, as every client does; the retry must queue
the version, not answer "deduplicated" with a job that does not exist (found by the three-replica
fault suite: one document of 120 stuck queued for ever)."""

import asyncio
import json

import pytest
from helpers import free_port_block

from rag.v1 import gateway_pb2, types_pb2
from services.cli.local import Ports
from services.cli.private import private_folder
from services.common import natsio
from services.common.ids import sha256_hex
from services.ingest.registry import Registry, now_ms
from services.ingest.storage import object_name

from .system import System

pytestmark = pytest.mark.e2e

TENANT = "uploads"
FIRST = b"The lighthouse keeper logs the weather at dawn."
SECOND = b"The lighthouse keeper logs the weather at dawn and at dusk, and the ships that pass."


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    s = System(tmp_path_factory.mktemp("uploads"), free_port_block()).start()
    yield s
    s.stop()


async def cut_off_upload(system: System, content: bytes, job_id: str) -> None:
    """What Submit had done when it was killed: the bytes stored, the new version in the registry."""
    passwords = json.loads((private_folder(system.data) / "nats-users.json").read_text())
    nc = await natsio.connect(f"nats://127.0.0.1:{Ports(system.port_base).grpc('nats')}", "ingest", passwords["ingest"])
    try:
        js = nc.jetstream()
        digest = sha256_hex(content)
        await (await js.object_store(natsio.OBJECTS_RAW)).put(object_name(TENANT, "keeper.txt", digest), content)
        registry = Registry(js, await js.key_value(natsio.KV_DOCS), await js.key_value(natsio.KV_JOBS))

        def change(record):
            version = record.current_version + 1
            record.current_version, record.status = version, types_pb2.DOCUMENT_STATUS_QUEUED
            record.versions.append(
                types_pb2.DocumentVersion(
                    version=version,
                    content_sha256=digest,
                    size_bytes=len(content),
                    status=types_pb2.DOCUMENT_STATUS_QUEUED,
                    job_id=job_id,
                    created_unix_ms=now_ms(),
                )
            )
            return record

        await registry.mutate(TENANT, "keeper.txt", change)
        assert await registry.get_job(job_id) is None
    finally:
        await natsio.close(nc)


def test_a_retried_upload_queues_the_version_an_upload_cut_off_left_without_a_job(system):
    client = system.client(system.client().create_key(TENANT))
    assert client.ingest_and_wait("keeper.txt", FIRST).status == types_pb2.JOB_STATUS_DONE
    asyncio.run(cut_off_upload(system, SECOND, "cut-off-job"))

    retried = client.ingest("keeper.txt", SECOND)
    assert (retried.job_id, retried.version, retried.deduplicated) == ("cut-off-job", 2, True)
    job = client.wait("cut-off-job")
    assert (job.status, job.version) == (types_pb2.JOB_STATUS_DONE, 2)
    record = client.stub.GetDocument(
        gateway_pb2.GetDocumentRequest(doc_id="keeper.txt"), metadata=client.metadata, timeout=10
    ).document
    assert (record.status, record.current_version, record.indexed_version) == (types_pb2.DOCUMENT_STATUS_INDEXED, 2, 2)
    hits = client.search("ships that pass at dusk").hits
    assert {(h.chunk.doc_id, h.chunk.version) for h in hits} == {("keeper.txt", 2)}
