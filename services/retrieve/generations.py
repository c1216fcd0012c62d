"""Index generations: each a whole index (both engines, its state, its writer's index-stream
consumer) living beside the others.

Which generation serves, and which served before, is one record in NATS KV: a promotion or
rollback is a single compare-and-set on it, and every retrieve replica follows it.

Who writes a generation:
- embedded engines (Qdrant Edge, Tantivy): every replica owns its engines and its state on its own
  disk and applies the stream itself, through a consumer of its own;
- engines shared by several replicas (a Qdrant server, OpenSearch): one replica at a time writes,
  the holder of the writer lease (services/retrieve/lease.py), with the state in NATS KV
  (services/retrieve/shared_state.py); the others only search, and follow the writer's progress.

A generation of another embedding model than the active one's starts from the active generation's
chunks re-embedded from their text (services/retrieve/seed.py), in the background: it answers
nothing until it has caught up, while the active one serves.
"""

import asyncio
import itertools
import logging
import shutil
from pathlib import Path

import grpc
from nats.js import JetStreamContext
from prometheus_client import Gauge

from rag.v1 import retrieve_pb2
from services.common import natsio
from services.common.chunking import same_chunking
from services.common.config import RetrieveSettings
from services.retrieve import pointer as index_pointer
from services.retrieve import snapshots
from services.retrieve.backends.tantivy_index import LayoutError
from services.retrieve.consumer import IndexConsumer
from services.retrieve.generation import (
    Generation,
    GenerationError,
    engines,
    folder,
    remove_local,
    suffixed,
)
from services.retrieve.lease import Lease
from services.retrieve.maintenance import Maintenance
from services.retrieve.reembed import Reembedder
from services.retrieve.seed import reembed_from, seed_from
from services.retrieve.shared_state import SharedState
from services.retrieve.state import INDEX_SCHEMA_VERSION, LocalState

log = logging.getLogger(__name__)

ACTIVE = Gauge("ragmesh_index_active_generation", "The index generation searches use by default.")
WRITING = Gauge("ragmesh_index_writer", "1 while this replica writes the index (always 1 for embedded engines).")


class Generations:
    def __init__(
        self,
        settings: RetrieveSettings,
        index_dir: Path,
        dimension: int,
        holder: str = "",
        reembedder: Reembedder | None = None,
        dimensions: dict[str, int] | None = None,
    ) -> None:
        self.settings, self.index_dir, self.dimension = settings, Path(index_dir), dimension
        # Embeds chunks again with a generation's own model; None: events of another model are refused.
        self.reembedder = reembedder
        self.dimensions = dict(dimensions or {})  # of every model the embed service serves, by model id
        self.holder = holder or settings.instance or "retrieve"
        # Any engine on a server is shared by every replica: one writer, state in NATS KV.
        self.shared = bool(settings.dense_url or settings.lexical_url)
        self.open: dict[int, Generation] = {}
        self.pointer = retrieve_pb2.IndexPointer()
        self.lease: Lease | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None

    @property
    def writing(self) -> bool:
        return not self.shared or (self.lease is not None and self.lease.held)

    # -- this replica's copies -------------------------------------------------------------------

    def _folder(self, number: int) -> Path:
        return folder(self.index_dir, number)

    def _engines(self, record: retrieve_pb2.GenerationRecord):
        return engines(self.settings, folder(self.index_dir, record.number), record, self.dimensions, self.dimension)

    def _durable(self, number: int) -> str:
        # Shared engines: one consumer per generation, used by whichever replica writes.
        name = "retrieve-writer" if self.shared else self.settings.consumer_name
        return suffixed(name, number, "-")

    def _state(self, number: int):
        if self.shared:
            return SharedState(self.js, self.state_kv, number, writer=self.holder)
        return LocalState(self._folder(number) / "state.db", number)

    async def _open_local(self, record: retrieve_pb2.GenerationRecord) -> Generation:
        dense, lexical = self._engines(record)
        state = self._state(record.number)
        if isinstance(state, SharedState):
            await state.open()
        else:
            state.open()
            try:
                await asyncio.to_thread(lexical.open)
                older = bool(state.watermark) and state.schema_version < INDEX_SCHEMA_VERSION
                if older:
                    lexical.close()
            except LayoutError:
                older = True
            if older:
                # Built by an earlier release: rebuilt from the index stream (or a snapshot).
                log.warning(
                    "index generation of an older layout rebuilt", extra={"fields": {"generation": record.number}}
                )
                state.close()
                await asyncio.to_thread(self._remove_local, record.number)
                return await self._open_local(record)
        await asyncio.to_thread(dense.open)
        if isinstance(state, SharedState):
            await asyncio.to_thread(lexical.open)
        generation = Generation(record, dense, lexical, state, ready_lag=self.settings.ready_max_lag)
        generation.stream_last = await self.stream_last()
        return generation

    async def _open(self, record: retrieve_pb2.GenerationRecord) -> Generation:
        generation = await self._open_local(record)
        watermark = generation.state.watermark
        if not self.shared and watermark and await self.stream_first() > watermark + 1:
            # Away for longer than the stream keeps events: start again from a snapshot.
            log.warning("index generation behind the stream's retention", extra={"fields": {"watermark": watermark}})
            await self._destroy(generation)
            generation = await self._open_local(record)
        if self.writing:
            await self._write(generation)
        log.info("index generation open", extra={"fields": {"generation": record.number, "shared": self.shared}})
        return generation

    async def _write(self, generation: Generation) -> None:
        """Start applying the stream to `generation` from where its state says it is; a generation
        whose events the stream no longer holds starts from a snapshot or a copy first."""
        if generation.consumer is not None or generation.filling is not None:
            return
        state, record = generation.state, generation.record
        if isinstance(state, SharedState):
            await state.refresh()  # the previous writer may have got further than this replica saw
        if self._reembedding(generation):
            generation.filling = asyncio.create_task(self._reembed_then_write(generation))
            return
        if record.rechunk and state.watermark < record.replay_until:
            # It applies the stream from here on; what came before, its re-chunk jobs write.
            await state.commit(record.replay_until, state.model_id, {})
        if await self.stream_first() > state.watermark + 1:
            await self._fill(generation)
        generation.consumer = IndexConsumer(
            self.js,
            generation.dense,
            generation.lexical,
            state,
            self._durable(record.number),
            replay_until=record.replay_until,
            record=record,
            linger=self.settings.index_linger_seconds,
            ready_lag=self.settings.ready_max_lag,
            may_write=lambda: self.writing,
            reembedder=self.reembedder,
        )
        await generation.consumer.start()

    def _reembedding(self, generation: Generation) -> bool:
        """A new generation of another model than the active one's, which holds chunks: it starts
        from them, embedded again."""
        model, source = generation.record.embedding_model_id, self.open.get(self.pointer.active)
        if not model or generation.state.watermark or generation.record.rechunk or self.reembedder is None:
            return False
        if source is None or source is generation or source.consumer is None:
            return False
        return bool(source.state.watermark) and source.state.model_id != model

    async def _reembed_then_write(self, generation: Generation) -> None:
        """Fill `generation` from the active one, re-embedded, then apply the stream from there.
        A failed attempt (the embed service away) starts again from empty engines."""
        number, model = generation.number, generation.record.embedding_model_id
        for attempt in itertools.count():
            source = self.open.get(self.pointer.active)
            try:
                if await asyncio.to_thread(generation.dense.count) or await asyncio.to_thread(generation.lexical.count):
                    # Left by an attempt that stopped half way: documents deleted since must not stay.
                    await self._empty(generation)
                await reembed_from(source, generation, self.reembedder, model, may_write=lambda: self.writing)
                break
            except asyncio.CancelledError:
                raise
            except Exception:
                delay = 0.5 * 2 ** min(attempt, 6)
                log.exception(
                    "re-embedding chunks into a new index generation failed; trying again",
                    extra={"fields": {"generation": number, "in_s": delay}},
                )
                await asyncio.sleep(delay)
        async with self._lock:
            generation.filling = None
            if self.open.get(number) is generation and self.writing:
                await self._write(generation)

    async def _empty(self, generation: Generation) -> None:
        """Remove what `generation`'s engines hold and open them again, empty."""
        await asyncio.to_thread(generation.dense.destroy)
        await asyncio.to_thread(generation.lexical.destroy)
        generation.dense, generation.lexical = self._engines(generation.record)
        if not isinstance(generation.state, SharedState):
            await asyncio.to_thread(generation.lexical.open)
        await asyncio.to_thread(generation.dense.open)
        if isinstance(generation.state, SharedState):
            await asyncio.to_thread(generation.lexical.open)

    async def _fill(self, generation: Generation) -> None:
        """The stream's first events are gone: start from this generation's newest snapshot, or
        from a copy of the active generation (a new generation holding the same chunking)."""
        if not self.shared and await snapshots.restore(self.maintenance.objects, generation):
            return
        source = self.open.get(self.pointer.active)
        fresh = not generation.state.watermark or generation.record.rechunk
        if fresh and source is not None and source is not generation and source.consumer is not None:
            # Copied vectors serve only a generation of the same model (another is re-embedded).
            if same_chunking(source.record, generation.record) and source.model_id == generation.model_id:
                await seed_from(source, generation)
                return
        log.error(
            "index events this generation needs are gone from the stream and nothing holds them",
            extra={"fields": {"generation": generation.number, "watermark": generation.state.watermark}},
        )

    async def _stop_writing(self) -> None:
        async with self._lock:
            for generation in self.open.values():
                await self._stop_filling(generation)
                if generation.consumer is not None:
                    await generation.consumer.stop()
                    generation.consumer = None
        WRITING.set(0)

    async def _start_writing(self) -> None:
        async with self._lock:
            for generation in self.open.values():
                await self._write(generation)
        WRITING.set(1)

    async def _stop_filling(self, generation: Generation) -> None:
        if generation.filling is not None:
            generation.filling.cancel()
            await asyncio.gather(generation.filling, return_exceptions=True)
            generation.filling = None

    async def _close(self, generation: Generation, destroy: bool = False) -> None:
        await self._stop_filling(generation)
        if generation.consumer is not None:
            await generation.consumer.stop()
            generation.consumer = None
        if destroy:
            await self._destroy(generation)
            log.info("index generation removed", extra={"fields": {"generation": generation.number}})
        else:
            generation.dense.close()
            generation.lexical.close()
            generation.state.close()

    def _remove_local(self, number: int) -> None:
        remove_local(self._folder(number))

    async def _destroy(self, generation: Generation) -> None:
        """Remove everything a generation stored: engines, state, its stream consumer."""
        await asyncio.to_thread(generation.dense.destroy)
        await asyncio.to_thread(generation.lexical.destroy)
        await generation.state.destroy()
        if generation.number != 1:
            await asyncio.to_thread(shutil.rmtree, self._folder(generation.number), True)
        await natsio.delete_consumer(self.js, natsio.STREAM_INDEX.name, self._durable(generation.number))

    async def _recover(self, generation: Generation) -> None:
        """A consumer that found events gone (retention) before it applied them."""
        reason = generation.consumer.lost
        await generation.consumer.stop()
        generation.consumer = None
        if self.shared:
            # Nothing holds the missing events: go on from what the stream has, loudly.
            first = await self.stream_first()
            await generation.state.commit(first - 1, generation.state.model_id, {})
            log.error("index generation skipped events retention removed", extra={"fields": {"reason": reason}})
            await self._write(generation)
            return
        await self._destroy(generation)
        self.open[generation.number] = await self._open(generation.record)

    async def _apply(self, pointer: retrieve_pb2.IndexPointer) -> None:
        """Make this replica hold exactly the generations the pointer lists, and serve its active one."""
        async with self._lock:
            listed = {r.number: r for r in pointer.generations}
            for number in [n for n in self.open if n not in listed]:
                # Shared engines are removed by the writer alone; other replicas only let go.
                await self._close(self.open.pop(number), destroy=self.writing)
            if pointer.active != self.pointer.active:
                log.info("active index generation", extra={"fields": {"generation": pointer.active}})
            self.pointer = pointer
            for number in sorted(listed, key=lambda n: n != pointer.active):  # the active one first
                if number not in self.open:
                    self.open[number] = await self._open(listed[number])
                else:
                    self.open[number].record = listed[number]
            ACTIVE.set(pointer.active)

    # -- the shared pointer ----------------------------------------------------------------------

    async def change(self, change) -> retrieve_pb2.IndexPointer:
        """Apply `change` to the shared pointer by compare-and-set, then follow it here at once."""
        updated = await index_pointer.change(self.kv, change)
        await self._apply(updated)
        return updated

    async def stream_last(self) -> int:
        return (await self.js.stream_info(natsio.STREAM_INDEX.name)).state.last_seq

    async def stream_first(self) -> int:
        return (await self.js.stream_info(natsio.STREAM_INDEX.name)).state.first_seq

    async def start(self, js: JetStreamContext) -> None:
        self.js = js
        self.kv = await js.key_value(natsio.KV_INDEX)
        if self.shared:
            self.state_kv = await js.key_value(natsio.KV_INDEX_STATE)
            self.lease = Lease(self.kv, natsio.WRITER_LEASE_KEY, self.holder, self.settings.writer_lease_seconds)
            if self.settings.index_writer:
                await self.lease.try_acquire()
        WRITING.set(int(self.writing))
        pointer = await index_pointer.ensure(self.kv)
        self.maintenance = Maintenance(self, self.settings)
        await self.maintenance.start(js)
        await self._apply(pointer)
        if self.lease is not None and self.settings.index_writer:
            self.lease.run(self._start_writing, self._stop_writing)
        self._task = asyncio.create_task(self._follow())

    async def wait_caught_up(self) -> None:
        """Until the active generation serves what the stream says (readiness)."""
        while True:
            generation = self.open.get(self.pointer.active)
            if generation is not None and generation.caught_up:
                return
            await asyncio.sleep(0.2)

    async def _follow(self) -> None:
        """Follow promotions, rollbacks and new generations made through any replica, the stream's
        length and (shared engines) the writer's progress."""
        while True:
            await asyncio.sleep(self.settings.generation_poll_seconds)
            try:
                pointer, _ = await index_pointer.read(self.kv)
                if pointer is not None and pointer != self.pointer:
                    await self._apply(pointer)
                last = await self.stream_last()
                for generation in list(self.open.values()):
                    generation.stream_last = last
                    if isinstance(generation.state, SharedState) and generation.consumer is None:
                        await generation.state.refresh()
                    if generation.consumer is not None and generation.consumer.lost:
                        async with self._lock:
                            await self._recover(generation)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("index pointer or progress not read", exc_info=True)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        await self.maintenance.stop()
        if self.lease is not None:
            await self.lease.stop()
        async with self._lock:
            for generation in self.open.values():
                await self._close(generation)
            self.open.clear()

    # -- what searches and the admin commands use -------------------------------------------------

    def get(self, number: int = 0) -> Generation:
        """The generation `number`, or the active one for 0."""
        generation = self.open.get(number or self.pointer.active)
        if generation is None:
            raise GenerationError(grpc.StatusCode.NOT_FOUND, f"no index generation {number}")
        return generation

    def searchable(self, number: int = 0) -> Generation:
        """The generation `number` (0: the active one), refused while it is still catching up:
        documents deleted or narrowed since would still be visible in it."""
        generation = self.get(number)
        if not generation.caught_up:
            raise GenerationError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"index generation {generation.number} is still applying the index stream "
                f"({generation.progress()}); it answers searches once it has caught up",
            )
        return generation
