"""State of a generation whose engines several replicas share (Qdrant server, OpenSearch): in NATS
KV, where every replica and every successor of the writer sees the same thing.

Bucket `rag_index_state`: key `g<N>.<tenant>.<doc token>` holds a document's IndexDocState, key
`g<N>` the generation's IndexProgress (watermark, model, chunkers, writer). The writer stores a
batch's document states, then the progress; a crash in between leaves states ahead of the
watermark, which is harmless: applying an event again over a newer state changes nothing.
"""

import asyncio
import time
from collections.abc import Iterable

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from rag.v1 import retrieve_pb2
from services.common import natsio
from services.common.ids import token, untoken
from services.retrieve.plan import DocState, Key
from services.retrieve.state import INDEX_SCHEMA_VERSION, generation_name, state_from_proto, state_to_proto

BUCKET = "rag_index_state"


class SharedState:
    def __init__(self, js: JetStreamContext, kv: KeyValue, number: int, writer: str = "") -> None:
        self.js, self.kv, self.number, self.writer = js, kv, number, writer
        self.schema_version = INDEX_SCHEMA_VERSION
        self.watermark = 0
        self.model_id = ""
        self.chunkers: set[str] = set()

    def _key(self, key: Key) -> str:
        return f"g{self.number}.{key[0]}.{token(key[1])}"

    async def open(self) -> None:
        await self.refresh()

    async def refresh(self) -> None:
        """Read how far the writer has applied the stream (searchers follow it this way)."""
        try:
            entry = await self.kv.get(f"g{self.number}")
        except KeyNotFoundError:
            return
        progress = retrieve_pb2.IndexProgress.FromString(entry.value)
        self.watermark = max(self.watermark, progress.watermark)
        self.model_id = progress.embedding_model_id or self.model_id
        self.chunkers = set(progress.chunker_versions) or self.chunkers
        self.schema_version = progress.schema_version or self.schema_version

    async def load(self, keys: Iterable[Key]) -> dict[Key, DocState]:
        keys = list(set(keys))
        entries = await asyncio.gather(*(self._get(k) for k in keys))
        return {k: state_from_proto(e) for k, e in zip(keys, entries, strict=True) if e is not None}

    async def _get(self, key: Key) -> retrieve_pb2.IndexDocState | None:
        try:
            entry = await self.kv.get(self._key(key))
        except KeyNotFoundError:
            return None
        return retrieve_pb2.IndexDocState.FromString(entry.value) if entry.value else None

    async def commit(
        self, watermark: int, model_id: str, states: dict[Key, DocState], chunkers: Iterable[str] = ()
    ) -> None:
        await asyncio.gather(
            *(self.kv.put(self._key(k), state_to_proto(s).SerializeToString()) for k, s in states.items())
        )
        watermark = max(watermark, self.watermark)
        chunkers = self.chunkers | set(chunkers)
        progress = retrieve_pb2.IndexProgress(
            watermark=watermark,
            embedding_model_id=model_id,
            chunker_versions=sorted(chunkers),
            schema_version=self.schema_version,
            writer=self.writer,
            updated_unix_ms=int(time.time() * 1000),
        )
        await self.kv.put(f"g{self.number}", progress.SerializeToString())
        self.watermark, self.model_id, self.chunkers = watermark, model_id, chunkers

    async def all_states(self) -> dict[Key, DocState]:
        found = {}
        for key, value in await natsio.kv_items(self.js, BUCKET, f"g{self.number}.*.*"):
            _, tenant, doc = key.split(".", 2)
            found[(tenant, untoken(doc))] = state_from_proto(retrieve_pb2.IndexDocState.FromString(value))
        return found

    async def versions(self) -> dict[Key, int]:
        return {key: state.active for key, state in (await self.all_states()).items() if state.active}

    @property
    def generation(self) -> str:
        return generation_name(self.number, self.model_id, self.chunkers, self.schema_version)

    def close(self) -> None:
        """Nothing held open: the state lives in NATS."""

    async def destroy(self) -> None:
        for subject in (f"$KV.{BUCKET}.g{self.number}.>", f"$KV.{BUCKET}.g{self.number}"):
            try:
                await self.js.purge_stream(f"KV_{BUCKET}", subject=subject)
            except NotFoundError:
                pass
