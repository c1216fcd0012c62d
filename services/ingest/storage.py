"""Where a document's raw bytes live (the NATS Object Store), and their removal once nothing needs
them: when the document is deleted, and for older versions once a newer one is indexed."""

import logging

from nats.js.errors import NotFoundError, ObjectNotFoundError
from nats.js.object_store import ObjectStore

from rag.v1 import types_pb2
from services.common.ids import token

log = logging.getLogger(__name__)


def object_name(tenant: str, doc_id: str, digest: str) -> str:
    """Object Store key of a document's raw bytes."""
    return f"{tenant}/{token(doc_id)}/{digest}"


async def delete_raw(objects: ObjectStore, record: types_pb2.DocumentRecord, versions: list[int]) -> int:
    """Delete the raw bytes of these versions (a digest shared with a version kept stays); how many."""
    kept = {v.content_sha256 for v in record.versions if v.version not in versions}
    if record.status == types_pb2.DOCUMENT_STATUS_DELETED:
        kept = set()
    digests = {v.content_sha256 for v in record.versions if v.version in versions} - kept
    deleted = 0
    for digest in digests:
        try:
            await objects.delete(object_name(record.tenant, record.doc_id, digest))
            deleted += 1
        except (ObjectNotFoundError, NotFoundError):
            pass
    return deleted
