"""What ingest tells the index about a document besides its chunks: changed fields (title, ACL,
metadata) and removal. Each names what it concerns: fields by the record's metadata_revision,
a removal by the newest version the registry knows, so that nothing older can undo it."""

from nats.js import JetStreamContext

from rag.v1 import events_pb2, types_pb2
from services.common import natsio
from services.common.ids import token
from services.ingest.document import DocumentError


def document_fields(record: types_pb2.DocumentRecord) -> events_pb2.DocumentFields:
    return events_pb2.DocumentFields(
        title=record.title, acl=list(record.acl), metadata=dict(record.metadata), revision=record.metadata_revision
    )


def set_fields(record: types_pb2.DocumentRecord, title: str, acl: list[str], metadata: dict[str, str]) -> bool:
    """Give the record these fields; whether they changed (then its metadata_revision grows)."""
    if (record.title, list(record.acl), dict(record.metadata)) == (title, acl, metadata):
        return False
    record.title = title
    del record.acl[:]
    record.acl.extend(acl)
    record.metadata.clear()
    record.metadata.update(metadata)
    record.metadata_revision += 1
    return True


def latest_version(record: types_pb2.DocumentRecord) -> int:
    return max([v.version for v in record.versions], default=record.current_version)


async def publish_fields(js: JetStreamContext, record: types_pb2.DocumentRecord) -> None:
    """Every chunk of the document takes the record's fields, versions still being written included."""
    fields = document_fields(record)
    event = events_pb2.IndexBatch(
        tenant=record.tenant,
        doc_id=record.doc_id,
        update_metadata=events_pb2.UpdateMetadata(
            title=fields.title, acl=fields.acl, metadata=fields.metadata, revision=fields.revision
        ),
    )
    msg_id = f"{record.tenant}/{token(record.doc_id)}/metadata/{record.metadata_revision}"
    await natsio.publish(js, f"rag.index.{record.tenant}", event.SerializeToString(), msg_id=msg_id)


async def publish_removal(js: JetStreamContext, record: types_pb2.DocumentRecord) -> None:
    """Every version up to the newest the registry knows is gone from the index for good."""
    through = latest_version(record)
    event = events_pb2.IndexBatch(
        tenant=record.tenant, doc_id=record.doc_id, remove=events_pb2.RemoveDocumentChunks(through_version=through)
    )
    msg_id = f"{record.tenant}/{token(record.doc_id)}/remove/{through}"
    await natsio.publish(js, f"rag.index.{record.tenant}", event.SerializeToString(), msg_id=msg_id)


HEADROOM = 4096  # bytes kept free for the message headers (trace context, message id)


def fitting(
    event: events_pb2.IndexBatch,
    chunks: list[types_pb2.Chunk],
    vectors: list[list[float]],
    dimension: int,
    fields: events_pb2.DocumentFields,
    max_payload: int,
) -> list[events_pb2.IndexBatch]:
    """Chunk upserts as events of at most `max_payload` bytes (NATS refuses larger messages): one
    event when they fit, otherwise the chunks split in halves until every part fits."""

    def build(part: slice) -> events_pb2.IndexBatch:
        piece = events_pb2.IndexBatch()
        piece.CopyFrom(event)
        upserts = piece.upserts
        upserts.chunks.extend(chunks[part])
        upserts.vectors.extend(x for v in vectors[part] for x in v)
        upserts.dimension, upserts.version = dimension, chunks[0].version
        upserts.fields.CopyFrom(fields)
        return piece

    def split(start: int, stop: int) -> list[events_pb2.IndexBatch]:
        piece = build(slice(start, stop))
        if piece.ByteSize() <= max_payload - HEADROOM:
            return [piece]
        if stop - start == 1:
            raise DocumentError(
                f"one chunk with the document's metadata takes {piece.ByteSize()} bytes, more than a message "
                f"may carry ({max_payload}): make the metadata smaller"
            )
        middle = (start + stop) // 2
        return split(start, middle) + split(middle, stop)

    return split(0, len(chunks))
