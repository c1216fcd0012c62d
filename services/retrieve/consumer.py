"""Applies the index stream to both engines, in stream order, idempotently, and advances the watermark."""

import asyncio
import logging

import numpy as np
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry import trace
from prometheus_client import Counter, Gauge

from rag.v1 import events_pb2, retrieve_pb2
from services.common import natsio
from services.common.chunking import CHUNK_OPS, applies_to
from services.retrieve.backends.base import DenseIndex, LexicalIndex
from services.retrieve.state import IndexState

log = logging.getLogger(__name__)
tracer = trace.get_tracer("ragmesh.retrieve")

INDEX_POINTS = Gauge("ragmesh_index_points", "Chunks in each engine.", ["engine", "generation"])
WATERMARK = Gauge("ragmesh_index_watermark", "Last index-stream sequence applied to both engines.", ["generation"])
WATERMARK_LAG = Gauge("ragmesh_index_watermark_lag", "Index events in the stream not applied yet.", ["generation"])
OBSERVE_SECONDS = 1.0  # while events flow, index sizes are counted at most this often
APPLIED = Counter("ragmesh_index_events_applied_total", "Index events applied, by operation.", ["op"])


def event_version(event: events_pb2.IndexBatch) -> int:
    """The document version an upsert or activation is about."""
    if event.WhichOneof("op") == "activate":
        return event.activate.version
    return event.upserts.chunks[0].version if event.upserts.chunks else 0


class IndexConsumer:
    def __init__(
        self,
        js: JetStreamContext,
        dense: DenseIndex,
        lexical: LexicalIndex,
        state: IndexState,
        durable: str,
        batch: int = 128,
        replay_until: int = 0,
        record: retrieve_pb2.GenerationRecord | None = None,
        linger: float = 0.0,
    ) -> None:
        self.js, self.dense, self.lexical, self.state = js, dense, lexical, state
        self.durable, self.batch = durable, batch
        # Events trickle in one document at a time while ingestion flows; waiting a moment for more
        # lets one Tantivy commit (and one state write) serve many of them.
        self.linger = linger
        # A new generation replaying the stream up to here must not announce documents as newly
        # indexed; from there on every generation announces (the event ids collapse the repeats).
        self.replay_until = replay_until
        # Which chunking this generation holds; a re-chunked one starts after the events that were
        # in the stream when it was made (its re-chunk jobs write what they held).
        self.record = record or retrieve_pb2.GenerationRecord()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._counted_at: int | None = None  # the watermark the index sizes were last counted at
        self._observed = 0.0

    async def start(self) -> None:
        deliver = DeliverPolicy.BY_START_SEQUENCE if self.record.rechunk else DeliverPolicy.ALL
        config = ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=deliver,
            opt_start_seq=self.replay_until + 1 if self.record.rechunk else None,
            ack_wait=120.0,
            max_ack_pending=4 * self.batch,
            # A replica that is gone for a day (a rescheduled pod with a new name) leaves no consumer behind.
            inactive_threshold=86400.0,
        )
        self.sub = await self.js.pull_subscribe(
            "rag.index.>", durable=self.durable, stream=natsio.STREAM_INDEX.name, config=config
        )
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Finish the batch in hand, then stop fetching."""
        self._stopping.set()
        if self._task:
            await self._task

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                msgs = await self.sub.fetch(batch=self.batch, timeout=1.0)
                msgs += await self._more(len(msgs))
            except TimeoutError:
                await self._observe()
                continue
            except Exception:
                log.exception("index fetch failed")
                await asyncio.sleep(1.0)
                continue
            try:
                await self.apply(msgs)
            except Exception:
                log.exception("applying index events failed; they will be redelivered")
                for msg in msgs:
                    try:
                        await msg.nak(delay=2.0)
                    except Exception:
                        break  # NATS unreachable: the ack wait redelivers them
                await asyncio.sleep(0.5)
            if asyncio.get_running_loop().time() - self._observed >= OBSERVE_SECONDS:
                await self._observe()

    async def _more(self, have: int) -> list:
        """Events that arrive within the linger after a short fetch, up to a full batch."""
        more: list = []
        deadline = asyncio.get_running_loop().time() + self.linger
        while have + len(more) < self.batch:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0.001:
                break
            try:
                more += await self.sub.fetch(batch=self.batch - have - len(more), timeout=left)
            except TimeoutError:
                break
        return more

    async def _observe(self) -> None:
        """Index size and how far the watermark trails the stream, for dashboards and alerts."""
        self._observed = asyncio.get_running_loop().time()
        try:
            last = (await self.js.stream_info(natsio.STREAM_INDEX.name)).state.last_seq
            generation = str(self.state.number)
            WATERMARK.labels(generation).set(self.state.watermark)
            WATERMARK_LAG.labels(generation).set(max(0, last - self.state.watermark))
            if self._counted_at != self.state.watermark:  # sizes change only when events are applied
                INDEX_POINTS.labels("dense", generation).set(await asyncio.to_thread(self.dense.count))
                INDEX_POINTS.labels("lexical", generation).set(await asyncio.to_thread(self.lexical.count))
                self._counted_at = self.state.watermark
        except Exception:
            log.debug("index metrics not refreshed", exc_info=True)

    async def apply(self, msgs) -> None:
        events = []
        for msg in msgs:
            try:
                events.append((msg, events_pb2.IndexBatch.FromString(msg.data)))
            except Exception:
                log.error("undecodable index event dropped", extra={"fields": {"subject": msg.subject}})
                await msg.term()
        if not events:
            return
        with natsio.consume_span("rag.retrieve.apply_index_batch", events[0][0], [m for m, _ in events]) as span:
            span.set_attribute("rag.batch.size", len(events))
            changes, indexed, failed, model_id, chunkers = await asyncio.to_thread(self._apply_engines, events)
            watermark = max(msg.metadata.sequence.stream for msg, _ in events)
            self.state.commit(watermark, model_id, changes, chunkers)
            span.set_attribute("rag.index.watermark", watermark)
            # Lifecycle events go out before the acks: if either fails the batch is redelivered and
            # re-applied (a no-op), and the events' ids collapse the repeats.
            indexed = [(m, e) for m, e in indexed if m.metadata.sequence.stream > self.replay_until]
            failed = [e for m, e in failed if m.metadata.sequence.stream > self.replay_until]
            # All in flight at once: their writes share round trips.
            await asyncio.gather(
                *(self._announce(msg, event, watermark) for msg, event in indexed),
                *(natsio.publish(self.js, f"rag.events.failed.{e.tenant}", e.SerializeToString()) for e in failed),
            )
            for msg, _ in events:
                await msg.ack()

    async def _announce(self, msg, event: events_pb2.DocumentIndexed, watermark: int) -> None:
        event.index_watermark = watermark
        # Published in the trace of that document's own ingestion, whatever the batch held.
        with natsio.continued(msg):
            await natsio.publish(
                self.js,
                f"rag.events.indexed.{event.tenant}",
                event.SerializeToString(),
                msg_id=f"indexed/{event.tenant}/{event.doc_id}/{event.version}",
            )

    def _apply_engines(self, events):
        changes: dict[tuple[str, str], int | None] = {}
        indexed: list[events_pb2.DocumentIndexed] = []
        failed: list[tuple[object, events_pb2.DocumentFailed]] = []
        chunkers: set[str] = set()
        model_id = self.state.model_id
        for msg, event in events:
            if not applies_to(self.record, event):
                APPLIED.labels("other_chunking").inc()
                continue
            key = (event.tenant, event.doc_id)
            shown = changes[key] if key in changes else self.state.active.get(key)
            if event.WhichOneof("op") in CHUNK_OPS and shown and event_version(event) < shown:
                # A re-chunk of a version replaced meanwhile: versions only grow, never go back.
                APPLIED.labels("stale").inc()
                continue
            if event.embedding_model_id and model_id and event.embedding_model_id != model_id:
                log.error(
                    "index event from another embedding model refused",
                    extra={"fields": {"index_model": model_id, "event_model": event.embedding_model_id}},
                )
                failed.append(
                    (
                        msg,
                        events_pb2.DocumentFailed(
                            tenant=event.tenant,
                            doc_id=event.doc_id,
                            job_id=event.job_id,
                            error=f"embedded by {event.embedding_model_id}, the index holds {model_id}",
                        ),
                    )
                )
                continue
            model_id = model_id or event.embedding_model_id
            op = event.WhichOneof("op")
            APPLIED.labels(op or "none").inc()
            if op == "upserts":
                chunks = list(event.upserts.chunks)
                chunkers.update(c.chunker_version for c in chunks if c.chunker_version)
                vectors = np.asarray(event.upserts.vectors, dtype=np.float32).reshape(
                    len(chunks), event.upserts.dimension
                )
                self.dense.upsert(chunks, vectors.tolist())
                self.lexical.upsert(chunks)
            elif op == "activate":
                announce = not event.activate.rechunk  # a re-chunk's version was announced when first indexed
                self.dense.retire(event.tenant, event.doc_id, keep_version=event.activate.version)
                self.lexical.retire(event.tenant, event.doc_id, keep_version=event.activate.version)
                changes[(event.tenant, event.doc_id)] = event.activate.version
                if announce:
                    indexed.append(
                        (
                            msg,
                            events_pb2.DocumentIndexed(
                                tenant=event.tenant,
                                doc_id=event.doc_id,
                                version=event.activate.version,
                                chunk_count=event.activate.chunk_count,
                                job_id=event.job_id,
                            ),
                        )
                    )
            elif op == "update_metadata":
                update = event.update_metadata
                self.lexical.commit()  # earlier upserts of this batch must be visible to be rewritten
                fields = (update.title, list(update.acl), dict(update.metadata))
                self.dense.set_fields(event.tenant, event.doc_id, *fields)
                self.lexical.set_fields(event.tenant, event.doc_id, *fields)
            elif op == "remove":
                self.dense.retire(event.tenant, event.doc_id, keep_version=None)
                self.lexical.retire(event.tenant, event.doc_id, keep_version=None)
                changes[(event.tenant, event.doc_id)] = None
        self.lexical.commit()
        self.dense.commit()
        return changes, indexed, failed, model_id, chunkers
