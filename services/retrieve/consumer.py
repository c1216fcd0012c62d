"""Applies the index stream to one generation's engines: in stream order, one batch at a time,
each batch planned from the documents' states (services/retrieve/plan.py) and carried out
idempotently, then the states and the watermark committed, the lifecycle events published, and
only then the batch acknowledged.

A failure retries the same batch in place, keeping its messages' ack deadline alive: nothing
later is applied first, and the watermark only grows. Events at or below the watermark (delivered
again after a crash between the commit and the acks) are not applied twice; their announcements
are made again, as the commit may have come before them.

Events whose vectors another embedding model made than the generation's own are embedded again
with its own (services/retrieve/reembed.py) before they apply; while the embed service does not
serve that model, they are refused as before.
"""

import asyncio
import contextlib
import logging
import time

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from opentelemetry import trace
from prometheus_client import Counter, Gauge

from rag.v1 import events_pb2, retrieve_pb2
from services.common import natsio
from services.common.chunking import applies_to
from services.retrieve.executor import execute
from services.retrieve.plan import Activate, DocState, Key, Op, Upsert, activated, decode, plan
from services.retrieve.reembed import ModelNotServed, Reembedder

log = logging.getLogger(__name__)
tracer = trace.get_tracer("ragmesh.retrieve")

INDEX_POINTS = Gauge("ragmesh_index_points", "Chunks in each engine.", ["engine", "generation"])
WATERMARK = Gauge("ragmesh_index_watermark", "Last index-stream sequence applied to both engines.", ["generation"])
WATERMARK_LAG = Gauge("ragmesh_index_watermark_lag", "Index events in the stream not applied yet.", ["generation"])
LAST_APPLIED = Gauge(
    "ragmesh_index_last_applied_timestamp_seconds", "When this generation last applied a batch.", ["generation"]
)
APPLIED = Counter("ragmesh_index_events_applied_total", "Index events applied, by operation.", ["op"])
APPLY_FAILURES = Counter(
    "ragmesh_index_apply_failures_total", "Attempts to apply a batch of index events that failed.", ["generation"]
)
GAPS = Counter(
    "ragmesh_index_gap_events_total",
    "Index events a generation never saw: removed from the stream (retention) before it applied them.",
    ["generation"],
)


class NotWriter(Exception):
    """The writer lease lapsed: another replica may be writing the shared engines now."""


class OutOfOrder(Exception):
    """A batch came before events the stream still holds: it is fetched again, in order."""


class EventsLost(Exception):
    """Retention removed events this generation never applied: it must start again from a snapshot."""


OBSERVE_SECONDS = 1.0  # while events flow, index sizes are counted at most this often
RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class IndexConsumer:
    def __init__(
        self,
        js: JetStreamContext,
        dense,
        lexical,
        state,
        durable: str,
        batch: int = 128,
        replay_until: int = 0,
        record: retrieve_pb2.GenerationRecord | None = None,
        linger: float = 0.0,
        ready_lag: int = 64,
        ack_wait: float = 120.0,
        may_write=lambda: True,
        reembedder: Reembedder | None = None,
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
        self.ready_lag, self.ack_wait = ready_lag, ack_wait
        # Shared engines: whether this replica still holds the writer lease, asked before every write.
        self.may_write = may_write
        self.reembedder = reembedder
        self.stream_last = None  # the stream's last sequence when last looked at; None: not yet
        self.failing = ""  # why the batch in hand does not apply, while it does not
        self.lost = ""  # set when retention removed events before they were applied
        self._stopping = asyncio.Event()
        self._gate = asyncio.Lock()  # held while a batch applies; pause() takes it between batches
        self._task: asyncio.Task | None = None
        self._counted_at: int | None = None  # the watermark the index sizes were last counted at
        self._observed = 0.0

    @property
    def label(self) -> str:
        return str(self.record.number or self.state.number)

    @property
    def model_id(self) -> str:
        """The embedding model of this generation's vectors: named when it was made, or the first
        one its events brought; "" before either."""
        return self.record.embedding_model_id or self.state.model_id

    @property
    def lag(self) -> int | None:
        """Index events in the stream this generation has not applied; None before it looked."""
        return None if self.stream_last is None else max(0, self.stream_last - self.state.watermark)

    @property
    def caught_up(self) -> bool:
        """It applied what existed when it was created and trails the stream by at most ready_lag."""
        lag = self.lag
        return lag is not None and lag <= self.ready_lag and self.state.watermark >= self.replay_until

    async def start(self) -> None:
        await self._subscribe()
        await self._observe()
        self._task = asyncio.create_task(self._run())

    async def _subscribe(self) -> None:
        """A consumer made afresh that delivers from the first event not acknowledged. A consumer
        left with messages delivered but not acknowledged (a crash, a previous writer) would hand
        out newer events before those come round again, out of order. Events between that point
        and the watermark were applied and are only announced again."""
        start = self.state.watermark + 1
        try:
            info = await self.js.consumer_info(natsio.STREAM_INDEX.name, self.durable)
            start = min(info.ack_floor.stream_seq, self.state.watermark) + 1
        except NotFoundError:
            pass
        await natsio.delete_consumer(self.js, natsio.STREAM_INDEX.name, self.durable)
        config = ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=start,
            ack_wait=self.ack_wait,
            max_ack_pending=4 * self.batch,
            # A replica that is gone for a day (a rescheduled pod with a new name) leaves no consumer behind.
            inactive_threshold=86400.0,
        )
        self.sub = await self.js.pull_subscribe(
            "rag.index.>", durable=self.durable, stream=natsio.STREAM_INDEX.name, config=config
        )

    async def _resubscribe(self) -> None:
        try:
            await self.sub.unsubscribe()
        except Exception:
            pass
        await self._subscribe()

    async def stop(self) -> None:
        """Finish the batch in hand (or give up retrying it: it is delivered again), then stop."""
        self._stopping.set()
        if self._task:
            await self._task

    @contextlib.asynccontextmanager
    async def paused(self):
        """No batch applies inside: the engines and the state hold still (e.g. for an export)."""
        async with self._gate:
            yield

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                msgs = await self.sub.fetch(batch=self.batch, timeout=1.0)
                msgs += await self._more(len(msgs))
            except TimeoutError:
                await self._observe()
                continue
            except Exception:
                # NATS away, or the consumer gone (removed while nothing fetched): make it again.
                log.warning("index fetch failed; subscribing again", exc_info=True)
                await asyncio.sleep(1.0)
                try:
                    await self._resubscribe()
                except Exception:
                    log.debug("index consumer not made again yet", exc_info=True)
                continue
            await self._apply_in_place(msgs)
            if asyncio.get_running_loop().time() - self._observed >= OBSERVE_SECONDS:
                await self._observe()

    async def _apply_in_place(self, msgs) -> None:
        """Apply the batch, retrying it until it applies: never fetch past it. Its messages' ack
        deadline is kept alive meanwhile; stopping leaves it unacknowledged for the next start."""
        attempt = 0
        while True:
            try:
                async with self._gate:
                    await self.apply(msgs)
                self.failing = ""
                return
            except OutOfOrder as exc:
                log.warning("index events out of order; fetching again from the watermark: %s", exc)
                return
            except EventsLost as exc:
                log.error("index generation behind the stream's retention: %s", exc)
                self.lost = str(exc)
                self._stopping.set()
                return
            except Exception as exc:
                APPLY_FAILURES.labels(self.label).inc()
                self.failing = f"{type(exc).__name__}: {exc}"[:500]
                delay = RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)]
                log.exception(
                    "applying index events failed; retrying the same batch", extra={"fields": {"in_s": delay}}
                )
                attempt += 1
            await self._keep_alive(msgs)
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
                return
            except TimeoutError:
                pass

    async def _keep_alive(self, msgs) -> None:
        for msg in msgs:
            try:
                await msg.in_progress()
            except Exception:
                return  # NATS unreachable: the batch is delivered again later, in order

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
        """How far the watermark trails the stream (readiness, dashboards, alerts), and index sizes."""
        self._observed = asyncio.get_running_loop().time()
        try:
            self.stream_last = (await self.js.stream_info(natsio.STREAM_INDEX.name)).state.last_seq
            WATERMARK.labels(self.label).set(self.state.watermark)
            WATERMARK_LAG.labels(self.label).set(self.lag)
            if self._counted_at != self.state.watermark:  # sizes change only when events are applied
                INDEX_POINTS.labels("dense", self.label).set(await asyncio.to_thread(self.dense.count))
                INDEX_POINTS.labels("lexical", self.label).set(await asyncio.to_thread(self.lexical.count))
                self._counted_at = self.state.watermark
        except Exception:
            log.debug("index metrics not refreshed", exc_info=True)

    # -- one batch -----------------------------------------------------------------------------

    async def apply(self, msgs) -> None:
        events = []
        for msg in msgs:
            try:
                events.append((msg, events_pb2.IndexBatch.FromString(msg.data)))
            except Exception:
                log.error("undecodable index event terminated", extra={"fields": {"subject": msg.subject}})
                await msg.term()
        if not events:
            return
        with natsio.consume_span("rag.retrieve.apply_index_batch", events[0][0], [m for m, _ in events]) as span:
            span.set_attribute("rag.batch.size", len(events))
            announcements = await self._apply_events(events)
            span.set_attribute("rag.index.watermark", self.state.watermark)
            # All in flight at once: their writes share round trips. A failure retries the batch,
            # which is committed by now: its events are only announced again.
            await asyncio.gather(*(self._publish(msg, subject, event) for msg, subject, event in announcements))
            for msg, _ in events:
                with contextlib.suppress(Exception):  # unacknowledged: delivered again, not applied twice
                    await msg.ack()
        LAST_APPLIED.labels(self.label).set(time.time())

    async def _apply_events(self, events) -> list:
        """Plan and carry out the events above the watermark, commit, and say what to announce."""
        watermark = self.state.watermark
        fresh = [(m, e) for m, e in events if m.metadata.sequence.stream > watermark]
        again = [(m, e) for m, e in events if m.metadata.sequence.stream <= watermark]
        first = min((m.metadata.sequence.stream for m, _ in fresh), default=watermark + 1)
        if first > watermark + 1:
            await self._check_gap(watermark, first)
        if not self.may_write():
            raise NotWriter("this replica no longer holds the writer lease")
        fresh = await self._in_own_model(fresh, embed=True)
        again = await self._in_own_model(again, embed=False)
        if not self.may_write():  # re-embedding can take long: the lease may have passed meanwhile
            raise NotWriter("this replica no longer holds the writer lease")
        ops, refused, model_id, chunkers = self._admit(fresh)
        repeated, _, _, _ = self._admit(again)
        states = await self.state.load(key for _, key, _ in ops + repeated)
        result = plan(states, [(key, op) for _, key, op in ops])
        if result.writes:
            await asyncio.to_thread(execute, result.writes, self.dense, self.lexical)
        if not self.may_write():  # written, not committed: the next writer applies these events again
            raise NotWriter("this replica no longer holds the writer lease")
        last = max(m.metadata.sequence.stream for m, _ in events)
        await self.state.commit(last, model_id, result.states, chunkers)
        for _, _, op in ops:
            APPLIED.labels(type(op).__name__.lower()).inc()
        # Activations in effect are announced, including those applied before a crash that came
        # between the commit and the announcements (their ids collapse the repeats).
        current = {**states, **result.states}
        in_effect = [ops[i] for i in result.in_effect]
        in_effect += [
            (m, k, op)
            for m, k, op in repeated
            if isinstance(op, Activate) and current.get(k, DocState()).active == op.version
        ]
        announcements = [
            (msg, f"rag.events.indexed.{key[0]}", self._indexed(key, op))
            for msg, key, op in in_effect
            if not op.rechunk and msg.metadata.sequence.stream > self.replay_until
        ]
        return announcements + [(msg, f"rag.events.failed.{e.tenant}", e) for msg, e in refused]

    def _indexed(self, key: Key, op: Activate) -> events_pb2.DocumentIndexed:
        return events_pb2.DocumentIndexed(
            tenant=key[0],
            doc_id=key[1],
            version=op.version,
            chunk_count=op.chunk_count,
            job_id=op.job_id,
            index_watermark=self.state.watermark,
            records=op.records,
        )

    async def _check_gap(self, watermark: int, first: int) -> None:
        """Events between the watermark and this batch were not delivered. If the stream still
        holds them, they are pending elsewhere (a delivery lost on the way): start again from the
        watermark. If retention removed them, they are gone: count them and go on."""
        stream_first = (await self.js.stream_info(natsio.STREAM_INDEX.name)).state.first_seq
        if stream_first <= watermark + 1:
            await self._resubscribe()
            raise OutOfOrder(f"events {watermark + 1}..{first - 1} were not delivered before {first}")
        GAPS.labels(self.label).inc(min(first, stream_first) - watermark - 1)
        raise EventsLost(
            f"events {watermark + 1}..{min(first, stream_first) - 1} were removed before they were applied"
        )

    async def _in_own_model(self, events, embed: bool) -> list:
        """The events, those of another embedding model (and this generation's chunking) taken into
        this generation's own: their upserts embedded again (`embed`; otherwise only relabelled, for
        events applied already). Unchanged while the embed service does not serve the model."""
        own = self.model_id
        foreign = [
            i
            for i, (_, e) in enumerate(events)
            if own and e.embedding_model_id and e.embedding_model_id != own and applies_to(self.record, e)
        ]
        if not foreign or self.reembedder is None:
            return events
        try:
            moved = await self.reembedder.events([events[i][1] for i in foreign], own, embed)
        except ModelNotServed as exc:
            log.error("index events of another embedding model not re-embedded", extra={"fields": {"error": str(exc)}})
            return events
        taken = list(events)
        for i, event in zip(foreign, moved, strict=True):
            taken[i] = (events[i][0], event)
        return taken

    def _admit(self, events) -> tuple[list[tuple[object, Key, Op]], list, str, set[str]]:
        """This generation's operations, in order: its chunking's, from its embedding model (the
        one it was made with, or else the first model seen; events of another are refused,
        announced failed)."""
        ops, refused, model_id, chunkers = [], [], self.model_id, set()
        for msg, event in events:
            if not applies_to(self.record, event):
                APPLIED.labels("other_chunking").inc()
                continue
            if event.embedding_model_id and model_id and event.embedding_model_id != model_id:
                if (activation := activated(event)) is not None:
                    error = f"embedded by {event.embedding_model_id}, the index holds {model_id}"
                    log.error("index event from another embedding model refused", extra={"fields": {"error": error}})
                    failed = events_pb2.DocumentFailed(
                        tenant=event.tenant, doc_id=event.doc_id, job_id=event.job_id, error=error
                    )
                    failed.version = activation.version
                    refused.append((msg, failed))
                continue
            decoded = decode(event)
            if decoded:
                model_id = model_id or event.embedding_model_id
            for key, op in decoded:
                if isinstance(op, Upsert):
                    chunkers.update(c.chunker_version for c in op.chunks if c.chunker_version)
                ops.append((msg, key, op))
        return ops, refused, model_id, chunkers

    async def _publish(self, msg, subject: str, event) -> None:
        # Published in the trace of that document's own ingestion, whatever the batch held.
        with natsio.continued(msg):
            msg_id = None
            if isinstance(event, events_pb2.DocumentIndexed):
                msg_id = f"indexed/{event.tenant}/{event.doc_id}/{event.version}"
            await natsio.publish(self.js, subject, event.SerializeToString(), msg_id=msg_id)
