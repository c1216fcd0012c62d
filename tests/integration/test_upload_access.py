"""An upload may replace a document only if its uploader may read it: checked by ingest on the
record the upload writes over (a real nats-server), so an ACL changed between the read and the
write is seen, and a refused upload leaves the document and the job queue as they were (refused
at its read, it stores no bytes either)."""

import grpc
import pytest
from nats.js.errors import NotFoundError, ObjectNotFoundError

from rag.v1 import ingest_pb2, types_pb2
from services.common import natsio
from services.common.config import IngestSettings
from services.common.ids import sha256_hex
from services.ingest.registry import Registry
from services.ingest.sealing import Sealer
from services.ingest.server import IngestService, NotReplaceable, check_replaceable
from services.ingest.storage import object_name

TENANT = "acme"
TAKEN = "doc_id 'plan.txt' is taken by a document this key may not read; upload under another doc_id"


class Aborted(Exception):
    pass


class Context:
    async def abort(self, code, details):
        raise Aborted(code, details)


def upload(content: bytes, principals=None, acl=("alice",), title="") -> ingest_pb2.SubmitRequest:
    request = ingest_pb2.SubmitRequest(
        tenant=TENANT, doc_id="plan.txt", content=content, content_type="text/plain", acl=list(acl), title=title
    )
    if principals is not None:
        request.uploader.principals[:] = principals
    return request


@pytest.fixture
async def service(nats_server, tmp_path):
    nc = await natsio.connect(nats_server.url, "upload")
    js = nc.jetstream()
    await natsio.ensure_all(js)
    service = IngestService(IngestSettings(data_dir=str(tmp_path)))
    service.js = js
    service.registry = Registry(js, await js.key_value(natsio.KV_DOCS), await js.key_value(natsio.KV_JOBS))
    service.objects = await js.object_store(natsio.OBJECTS_RAW)
    service.sealer = Sealer(b"k" * 32)
    yield service
    await natsio.close(nc)


async def stored(service, content: bytes) -> bool:
    try:
        await service.objects.get_info(object_name(TENANT, "plan.txt", sha256_hex(content)))
        return True
    except (ObjectNotFoundError, NotFoundError):
        return False


async def jobs_queued(service) -> int:
    info = await service.js.stream_info(natsio.STREAM_JOBS.name)
    return info.state.messages


async def refused(service, request) -> tuple:
    with pytest.raises(Aborted) as aborted:
        await service.Submit(request, Context())
    return aborted.value.args


def acl_changes_after_the_next_read(service) -> None:
    """Ingest's next registry read returns the record, then its ACL is changed to ["bob"]: the
    upload goes on with the record as it was when read."""
    read = service.registry.get

    async def read_then_acl_changes(tenant, doc_id):
        seen = await read(tenant, doc_id)
        service.registry.get = read  # once: the compare-and-set's read again sees the change

        def to_bob(record):
            record.acl[:] = ["bob"]
            return record

        await service.registry.mutate(tenant, doc_id, to_bob)
        return seen

    service.registry.get = read_then_acl_changes


def test_the_rule_shows_only_that_the_id_is_taken():
    record = types_pb2.DocumentRecord(tenant=TENANT, doc_id="plan.txt", acl=["bob"])
    check_replaceable(upload(b"x", ["alice"]), None)  # a new document
    check_replaceable(upload(b"x", ["alice"]), types_pb2.DocumentRecord(acl=["alice"]))
    check_replaceable(upload(b"x", []), types_pb2.DocumentRecord(acl=["public"]))
    check_replaceable(upload(b"x"), record)  # the system's own callers name no uploader
    with pytest.raises(NotReplaceable) as taken:
        check_replaceable(upload(b"x", ["alice"]), record)
    assert str(taken.value) == TAKEN and "bob" not in str(taken.value)


async def test_a_document_the_uploader_cannot_read_is_left_as_it_was(service):
    await service.Submit(upload(b"bob's plan", ["bob"], acl=["bob"]), Context())
    before, _ = await service.registry.get(TENANT, "plan.txt")
    queued = await jobs_queued(service)

    assert await refused(service, upload(b"alice's plan", ["alice"])) == (grpc.StatusCode.ALREADY_EXISTS, TAKEN)
    # The same bytes with another title and ACL (a metadata change, no new version): refused too.
    same = upload(b"bob's plan", ["alice"], acl=["alice"], title="mine")
    assert await refused(service, same) == (grpc.StatusCode.ALREADY_EXISTS, TAKEN)

    after, _ = await service.registry.get(TENANT, "plan.txt")
    assert after == before and list(after.acl) == ["bob"] and len(after.versions) == 1
    assert await jobs_queued(service) == queued
    assert not await stored(service, b"alice's plan") and await stored(service, b"bob's plan")
    # Bob, and the system's own callers, still replace it.
    assert (await service.Submit(upload(b"bob's plan v2", ["bob"], acl=["bob"]), Context())).version == 2
    assert (await service.Submit(upload(b"plan v3", acl=["bob"]), Context())).version == 3


async def test_an_acl_changed_between_the_read_and_the_write_refuses_the_upload(service):
    await service.Submit(upload(b"shared plan", ["alice"], acl=["alice"]), Context())
    acl_changes_after_the_next_read(service)
    assert await refused(service, upload(b"alice's new plan", ["alice"])) == (grpc.StatusCode.ALREADY_EXISTS, TAKEN)
    record, _ = await service.registry.get(TENANT, "plan.txt")
    assert list(record.acl) == ["bob"] and [v.version for v in record.versions] == [1]
    assert record.versions[0].content_sha256 == sha256_hex(b"shared plan")
    assert await stored(service, b"shared plan")
    assert await jobs_queued(service) == 1  # the first version's job alone


async def test_the_same_bytes_again_refused_in_that_race_queue_nothing(service):
    """A version still queued whose job was cut off (the registry written, the job record and
    message not) is queued again by a retried upload of the same bytes; refused because the ACL
    changed meanwhile, that upload queues nothing."""
    await service.Submit(upload(b"shared plan", ["alice"], acl=["alice"]), Context())
    record, _ = await service.registry.get(TENANT, "plan.txt")
    await service.js.purge_stream(natsio.STREAM_JOBS.name)
    await service.registry.jobs.delete(record.versions[0].job_id)
    acl_changes_after_the_next_read(service)
    assert await refused(service, upload(b"shared plan", ["alice"])) == (grpc.StatusCode.ALREADY_EXISTS, TAKEN)
    assert await jobs_queued(service) == 0
    assert await service.registry.get_job(record.versions[0].job_id) is None
