"""The query audit: every answer goes to the RAG_AUDIT stream (rag.audit.<tenant>, for consumers)
and to the rag_answers bucket under its query id (for replay and feedback), both kept for the
audit retention.

Nothing published may exceed the server's max_payload (1 MiB on a NATS cluster by default). An
event that would is stored whole in the rag_audit object store under its query id, and what goes
to the stream and the bucket is its reference: the event without its manifest and answer, with a
`Rag-Audit-Object` header naming the object on the stream. (Every answer has a manifest, so an
entry without one is a reference.)

A rating is a record of its own (`<query id>.feedback` in the bucket, and rag.audit.feedback.<tenant>
on the stream): the answer's entry is never rewritten, so rating it does not extend its life.
"""

import dataclasses
import logging
import time

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, ObjectStoreConfig, StorageType
from nats.js.errors import KeyNotFoundError, NotFoundError, ObjectNotFoundError
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore

from rag.v1 import events_pb2, gateway_pb2
from services.common import natsio

log = logging.getLogger(__name__)

REFERENCE_HEADER = "Rag-Audit-Object"
# Subject, headers (trace context, message id, the reference) and protocol framing share max_payload.
HEADROOM = 16 * 1024
DAY = 86400.0


def reference(event: events_pb2.QueryAudit) -> events_pb2.QueryAudit:
    """The event without its unbounded parts (manifest with the retrieved chunks, answer)."""
    small = events_pb2.QueryAudit()
    small.CopyFrom(event)
    small.ClearField("manifest")
    small.ClearField("answer")
    return small


def valid_query_id(query_id: str) -> bool:
    return 0 < len(query_id) <= 64 and query_id.isascii() and query_id.isalnum()


class AuditLog:
    def __init__(self, js: JetStreamContext, answers: KeyValue, objects: ObjectStore, max_payload: int) -> None:
        self.js, self.answers, self.objects = js, answers, objects
        self.inline_limit = max_payload - HEADROOM

    @classmethod
    async def open(cls, js: JetStreamContext, max_payload: int, retention_days: float, replicas: int) -> "AuditLog":
        """Declare the stream, bucket and object store (the gateway owns them) with the retention."""
        retention = retention_days * DAY
        await natsio.ensure_stream(
            js, dataclasses.replace(natsio.STREAM_AUDIT, max_age=retention, num_replicas=replicas)
        )
        answers = await natsio.ensure_bucket(
            js,
            KeyValueConfig(bucket=natsio.KV_ANSWERS, ttl=retention, storage=StorageType.FILE, replicas=replicas),
        )
        try:
            objects = await js.create_object_store(
                natsio.OBJECTS_AUDIT,
                config=ObjectStoreConfig(ttl=retention, storage=StorageType.FILE, replicas=replicas),
            )
        except Exception:  # declared before with another retention: keep it, with this one
            objects = await js.object_store(natsio.OBJECTS_AUDIT)
            stream = (await js.stream_info(f"OBJ_{natsio.OBJECTS_AUDIT}")).config
            await js.update_stream(dataclasses.replace(stream, max_age=retention))
        return cls(js, answers, objects, max_payload)

    async def record(self, event: events_pb2.QueryAudit) -> None:
        """Publish and keep one answer's event. A failure is logged loudly, never returned: the
        answer has been given already."""
        try:
            payload, headers = event.SerializeToString(), {}
            if len(payload) > self.inline_limit:
                await self.objects.put(event.query_id, payload)
                payload, headers = reference(event).SerializeToString(), {REFERENCE_HEADER: event.query_id}
            await natsio.publish(self.js, f"rag.audit.{event.tenant}", payload, msg_id=event.query_id, headers=headers)
            await self.answers.put(event.query_id, payload)
        except Exception:
            log.exception("query audit not recorded", extra={"fields": {"query_id": event.query_id}})

    async def logged(self, query_id: str) -> events_pb2.QueryAudit | None:
        """The whole logged event (its latest rating included), or None."""
        if not valid_query_id(query_id):
            return None
        try:
            audit = events_pb2.QueryAudit.FromString((await self.answers.get(query_id)).value)
        except KeyNotFoundError:
            return None
        if not audit.HasField("manifest"):
            try:
                audit = events_pb2.QueryAudit.FromString((await self.objects.get(query_id)).data)
            except (ObjectNotFoundError, NotFoundError):
                log.warning("audit object missing", extra={"fields": {"query_id": query_id}})
                return None
        try:
            rating = events_pb2.QueryAudit.FromString((await self.answers.get(f"{query_id}.feedback")).value)
            audit.feedback_rating, audit.feedback_comment = rating.feedback_rating, rating.feedback_comment
        except KeyNotFoundError:
            pass
        return audit

    async def rate(self, audit: events_pb2.QueryAudit, rater: gateway_pb2.ApiKeyRecord, rating: int, comment: str):
        note = events_pb2.QueryAudit(
            query_id=audit.query_id,
            tenant=audit.tenant,
            key_id=rater.key_id,
            method="Feedback",
            principals=list(rater.principals),
            created_unix_ms=int(time.time() * 1000),
            feedback_rating=rating,
            feedback_comment=comment,
        )
        await self.answers.put(f"{audit.query_id}.feedback", note.SerializeToString())
        await natsio.publish(self.js, f"rag.audit.feedback.{audit.tenant}", note.SerializeToString())
