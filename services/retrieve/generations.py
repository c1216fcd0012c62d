"""Index generations: each a whole index (both engines, its state, its own index-stream consumer)
living beside the others.

A new generation is built by replaying the index stream from its first event while the active one
keeps serving. Which generation serves, and which served before, is one record in NATS KV: a
promotion or rollback is a single compare-and-set on it, and every retrieve replica follows it.
"""

import asyncio
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NotFoundError
from prometheus_client import Gauge

from rag.v1 import retrieve_pb2, types_pb2
from services.common import natsio
from services.common.config import RetrieveSettings
from services.retrieve.backends.opensearch_index import OpenSearchIndex
from services.retrieve.backends.qdrant_edge import QdrantEdgeIndex
from services.retrieve.backends.qdrant_server import QdrantServerIndex
from services.retrieve.backends.tantivy_index import TantivyIndex
from services.retrieve.consumer import IndexConsumer
from services.retrieve.state import IndexState

log = logging.getLogger(__name__)

ACTIVE = Gauge("ragmesh_index_active_generation", "The index generation searches use by default.")


class GenerationError(Exception):
    """A generation request that cannot be carried out, with the gRPC status it deserves."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Generation:
    record: retrieve_pb2.GenerationRecord
    dense: object
    lexical: object
    state: IndexState
    consumer: IndexConsumer | None = None

    @property
    def number(self) -> int:
        return self.record.number

    @property
    def replayed(self) -> bool:
        """It has applied every event that existed when it was created."""
        return self.state.watermark >= self.record.replay_until


def missing_documents(reference: IndexState, candidate: IndexState) -> int:
    """Documents `reference` shows that `candidate` does not show at the same version."""
    return sum(1 for key, version in reference.active.items() if candidate.active.get(key) != version)


def suffixed(name: str, number: int, separator: str) -> str:
    """Generation 1 keeps the configured name, so an index built before generations stays in use."""
    return name if number == 1 else f"{name}{separator}g{number}"


class Generations:
    def __init__(self, settings: RetrieveSettings, index_dir: Path, dimension: int) -> None:
        self.settings, self.index_dir, self.dimension = settings, Path(index_dir), dimension
        self.open: dict[int, Generation] = {}
        self.pointer = retrieve_pb2.IndexPointer()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None

    # -- this replica's copies -------------------------------------------------------------------

    def _folder(self, number: int) -> Path:
        return self.index_dir if number == 1 else self.index_dir / f"g{number}"

    def _engines(self, number: int):
        s = self.settings
        if s.dense_url:
            dense = QdrantServerIndex(
                self.dimension,
                url=s.dense_url,
                collection=suffixed(s.dense_collection, number, "_"),
                api_key=s.dense_api_key,
            )
        else:
            dense = QdrantEdgeIndex(self._folder(number) / "dense", self.dimension, s.dense_payload_in_memory)
        if s.lexical_url:
            lexical = OpenSearchIndex(s.lexical_url, suffixed(s.lexical_index, number, "-"))
        else:
            lexical = TantivyIndex(self._folder(number) / "lexical")
        return dense, lexical

    def _durable(self, number: int) -> str:
        return suffixed(self.settings.consumer_name, number, "-")

    async def _open(self, record: retrieve_pb2.GenerationRecord) -> Generation:
        dense, lexical = self._engines(record.number)
        state = IndexState(self._folder(record.number) / "state.db", record.number)
        state.open()
        await asyncio.to_thread(dense.open)
        await asyncio.to_thread(lexical.open)
        state.schema_version = getattr(lexical, "layout", state.schema_version)
        if record.rechunk and state.watermark < record.replay_until:
            # It applies the stream from here on; what came before, its re-chunk jobs write.
            state.commit(record.replay_until, state.model_id, {})
        generation = Generation(record, dense, lexical, state)
        generation.consumer = IndexConsumer(
            self.js,
            dense,
            lexical,
            state,
            self._durable(record.number),
            replay_until=record.replay_until,
            record=record,
            linger=self.settings.index_linger_seconds,
        )
        await generation.consumer.start()
        log.info("index generation open", extra={"fields": {"generation": record.number}})
        return generation

    async def _close(self, generation: Generation, destroy: bool = False) -> None:
        await generation.consumer.stop()
        if destroy:
            await asyncio.to_thread(generation.dense.destroy)
            await asyncio.to_thread(generation.lexical.destroy)
            await asyncio.to_thread(generation.state.destroy)
            if generation.number != 1:
                await asyncio.to_thread(shutil.rmtree, self._folder(generation.number), True)
            try:
                await self.js.delete_consumer(natsio.STREAM_INDEX.name, self._durable(generation.number))
            except NotFoundError:
                pass
            log.info("index generation removed", extra={"fields": {"generation": generation.number}})
        else:
            generation.dense.close()
            generation.lexical.close()
            generation.state.close()

    async def _apply(self, pointer: retrieve_pb2.IndexPointer) -> None:
        """Make this replica hold exactly the generations the pointer lists, and serve its active one."""
        async with self._lock:
            listed = {r.number: r for r in pointer.generations}
            for number in [n for n in self.open if n not in listed]:
                await self._close(self.open.pop(number), destroy=True)
            for number, record in listed.items():
                if number not in self.open:
                    self.open[number] = await self._open(record)
            if pointer.active != self.pointer.active:
                log.info("active index generation", extra={"fields": {"generation": pointer.active}})
            self.pointer = pointer
            ACTIVE.set(pointer.active)

    # -- the shared pointer ----------------------------------------------------------------------

    async def _read(self) -> tuple[retrieve_pb2.IndexPointer | None, int]:
        try:
            entry = await self.kv.get(natsio.INDEX_POINTER_KEY)
        except KeyNotFoundError:
            return None, 0
        return retrieve_pb2.IndexPointer.FromString(entry.value), entry.revision

    async def _change(self, change) -> retrieve_pb2.IndexPointer:
        """Apply `change` to the shared pointer by compare-and-set, then follow it here at once."""
        while True:
            current, revision = await self._read()
            updated = retrieve_pb2.IndexPointer()
            updated.CopyFrom(current)
            change(updated)
            updated.updated_unix_ms = int(time.time() * 1000)
            try:
                await self.kv.update(natsio.INDEX_POINTER_KEY, updated.SerializeToString(), last=revision)
            except KeyWrongLastSequenceError:
                continue
            await self._apply(updated)
            return updated

    async def start(self, js: JetStreamContext) -> None:
        self.js = js
        self.kv = await js.key_value(natsio.KV_INDEX)
        pointer, _ = await self._read()
        if pointer is None:
            first = retrieve_pb2.IndexPointer(
                active=1,
                generations=[retrieve_pb2.GenerationRecord(number=1, created_unix_ms=int(time.time() * 1000))],
                note="first generation",
            )
            try:
                await self.kv.create(natsio.INDEX_POINTER_KEY, first.SerializeToString())
            except KeyWrongLastSequenceError:
                pass  # another replica created it first
            pointer, _ = await self._read()
        await self._apply(pointer)
        self._task = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        """Follow promotions, rollbacks and new generations made through any replica."""
        while True:
            await asyncio.sleep(self.settings.generation_poll_seconds)
            try:
                pointer, _ = await self._read()
                if pointer is not None and pointer != self.pointer:
                    await self._apply(pointer)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("index pointer not read", exc_info=True)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
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

    async def create(
        self, reason: str, rechunk: bool = False, chunking: types_pb2.Chunking | None = None
    ) -> retrieve_pb2.GenerationRecord:
        last = (await self.js.stream_info(natsio.STREAM_INDEX.name)).state.last_seq
        record = retrieve_pb2.GenerationRecord(
            created_unix_ms=int(time.time() * 1000), replay_until=last, reason=reason, rechunk=rechunk or bool(chunking)
        )
        if chunking is not None:
            record.chunking.CopyFrom(chunking)

        def change(pointer):
            record.number = max(r.number for r in pointer.generations) + 1
            pointer.generations.append(record)

        await self._change(change)
        return record

    def _check_promotable(self, number: int, expected_active: int) -> None:
        if expected_active and expected_active != self.pointer.active:
            raise GenerationError(
                grpc.StatusCode.ABORTED,
                f"generation {self.pointer.active} is active now, not {expected_active}: evaluate again",
            )
        if number == self.pointer.active:
            raise GenerationError(grpc.StatusCode.FAILED_PRECONDITION, f"generation {number} is already active")
        generation = self.get(number)
        if not generation.replayed:
            raise GenerationError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"generation {number} is still replaying the index stream "
                f"({generation.state.watermark} of {generation.record.replay_until} events)",
            )
        missing = missing_documents(self.get().state, generation.state)
        if missing:
            raise GenerationError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"generation {number} does not show {missing} of the active generation's documents yet "
                "(it is still applying events or re-chunking; failed re-chunks are in the dead-letter stream)",
            )

    async def promote(self, number: int, expected_active: int, note: str) -> retrieve_pb2.IndexPointer:
        self._check_promotable(number, expected_active)

        def change(pointer):
            if expected_active and pointer.active != expected_active:
                raise GenerationError(grpc.StatusCode.ABORTED, f"generation {pointer.active} became active meanwhile")
            pointer.previous, pointer.active, pointer.note = pointer.active, number, note or "promoted"

        return await self._change(change)

    async def rollback(self) -> retrieve_pb2.IndexPointer:
        previous = self.pointer.previous
        if not previous or previous not in {r.number for r in self.pointer.generations}:
            raise GenerationError(grpc.StatusCode.FAILED_PRECONDITION, "there is no previous generation to return to")

        def change(pointer):
            pointer.previous, pointer.active, pointer.note = pointer.active, pointer.previous, "rolled back"

        return await self._change(change)

    async def drop(self, number: int) -> retrieve_pb2.IndexPointer:
        self.get(number)
        if number == self.pointer.active:
            raise GenerationError(
                grpc.StatusCode.FAILED_PRECONDITION, f"generation {number} is active: promote another first"
            )

        def change(pointer):
            kept = [r for r in pointer.generations if r.number != number]
            del pointer.generations[:]
            pointer.generations.extend(kept)
            if pointer.previous == number:
                pointer.previous = 0

        return await self._change(change)

    async def describe(self) -> list[retrieve_pb2.GenerationInfo]:
        last = (await self.js.stream_info(natsio.STREAM_INDEX.name)).state.last_seq
        infos = []
        active = self.open.get(self.pointer.active)
        for number, g in sorted(self.open.items()):
            infos.append(
                retrieve_pb2.GenerationInfo(
                    record=g.record,
                    index_generation=g.state.generation,
                    active=number == self.pointer.active,
                    previous=number == self.pointer.previous,
                    index_watermark=g.state.watermark,
                    lag=max(0, last - g.state.watermark),
                    dense_points=await asyncio.to_thread(g.dense.count),
                    lexical_documents=await asyncio.to_thread(g.lexical.count),
                    embedding_model_id=g.state.model_id,
                    documents=len(g.state.active),
                    missing_documents=missing_documents(active.state, g.state) if active else 0,
                )
            )
        return infos
