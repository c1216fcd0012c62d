"""Dense index on one Qdrant Edge shard: the Qdrant engine in-process (WAL, HNSW, payload indexes).

Qdrant Edge builds its HNSW graph only when `optimize()` is called, and its binding holds the GIL
for the whole build, so this class never builds on its own: `TieredDenseIndex` (dense_tiers.py)
keeps several of these shards and builds their graphs in another process.
"""

import logging
import shutil
import time
from pathlib import Path

import qdrant_edge as qe

from rag.v1 import types_pb2
from services.retrieve.backends.base import (
    CANDIDATE_FIELDS,
    ChunkWrite,
    DocFields,
    EngineHit,
    SearchScope,
    fields_chunk,
    pending_ids,
)
from services.retrieve.backends.edge_layout import ShardConfig, open_shard

log = logging.getLogger(__name__)


def document_filter(tenant: str, doc_id: str, *more) -> qe.Filter:
    return qe.Filter(must=[qe.FieldCondition("doc_key", match=qe.MatchValue(f"{tenant}/{doc_id}")), *more])


def rewrite_operations(tenant: str, doc_id: str, fields: DocFields | None, live_version: int) -> list:
    """The updates of `Engine.rewrite`: each sets stored fields by filter, so applying it again, or
    to another shard, changes nothing more."""
    operations = []
    if fields is not None:
        operations.append(qe.UpdateOperation.set_payload_by_filter(document_filter(tenant, doc_id), fields.payload()))
    if live_version:
        version = qe.FieldCondition("version", match=qe.MatchValue(live_version))
        operations.append(
            qe.UpdateOperation.set_payload_by_filter(document_filter(tenant, doc_id, version), {"live": 1})
        )
    return operations


def retire_operations(tenant: str, doc_id: str, below_version: int) -> list:
    """The update of `Engine.retire`: a delete by filter."""
    if below_version <= 1:
        return []
    older = qe.FieldCondition("version", range=qe.RangeFloat(lt=below_version))
    return [qe.UpdateOperation.delete_points_by_filter(document_filter(tenant, doc_id, older))]


def search_filter(scope: SearchScope) -> qe.Filter:
    must = [
        qe.FieldCondition("tenant", match=qe.MatchValue(scope.tenant)),
        qe.FieldCondition("live", match=qe.MatchValue(1)),
        qe.FieldCondition("acl", match=qe.MatchAny(scope.acl)),
    ]
    if scope.doc_ids:
        must.append(qe.FieldCondition("doc_id", match=qe.MatchAny(list(scope.doc_ids))))
    for key, values in scope.metadata:
        must.append(qe.FieldCondition(f"meta.{key}", match=qe.MatchAny(list(values))))
    if scope.dated:
        must.append(qe.FieldCondition("date", range=qe.RangeFloat(gte=scope.date_from, lte=scope.date_to)))
    return qe.Filter(must=must)


def search_request(vector: list[float], scope: SearchScope, limit: int) -> qe.QueryRequest:
    return qe.QueryRequest(
        limit=limit,
        query=qe.Query.Nearest(list(vector)),
        filter=search_filter(scope),
        with_payload=qe.PayloadSelector.Include(list(CANDIDATE_FIELDS)),
    )


def count_filter(tenant: str | None, doc_id: str | None) -> qe.Filter | None:
    must = []
    if tenant:
        must.append(qe.FieldCondition("tenant", match=qe.MatchValue(tenant)))
    if tenant and doc_id:
        must.append(qe.FieldCondition("doc_key", match=qe.MatchValue(f"{tenant}/{doc_id}")))
    return qe.Filter(must=must) if must else None


class QdrantEdgeIndex:
    def __init__(
        self, path: Path, dimension: int, payload_in_memory: bool = True, config: ShardConfig | None = None
    ) -> None:
        self.path = Path(path)
        self.dimension = dimension
        self.config = config or ShardConfig(dimension, payload_in_memory)
        self.shard: qe.EdgeShard | None = None

    def open(self) -> None:
        self.shard = open_shard(self.path, self.config)

    def optimize(self) -> None:
        """Build the HNSW graph of every segment past the indexing threshold. Holds the GIL for the
        whole build (seconds per 10k points): only a process that serves nothing calls it."""
        info = self.shard.info()
        started = time.monotonic()
        self.shard.optimize()
        fields = {
            "points": info.points_count,
            "indexed": self.shard.info().indexed_vectors_count,
            "seconds": round(time.monotonic() - started, 1),
        }
        log.info("dense shard optimised", extra={"fields": fields})

    def apply(self, operation) -> None:
        self.shard.update(operation)

    def stored_liveness(self, chunk_ids: list[str]) -> dict[str, bool]:
        """Which of the chunks this shard stores, and whether each is live."""
        records = self.shard.retrieve(list(chunk_ids), qe.PayloadSelector.Include(["live"]), False)
        return {str(r.id): bool((r.payload or {}).get("live")) for r in records}

    def points(self, writes: list[ChunkWrite], keep_live: set[str]) -> list[qe.Point]:
        return [qe.Point(w.chunk.chunk_id, list(w.vector), w.stored(keep_live)) for w in writes]

    def upsert(self, writes: list[ChunkWrite]) -> None:
        if not writes:
            return
        pending = pending_ids(writes)
        stored = self.stored_liveness(pending) if pending else {}
        keep_live = {chunk_id for chunk_id, live in stored.items() if live}
        self.shard.update(qe.UpdateOperation.upsert_points(self.points(writes, keep_live)))

    def rewrite(self, tenant: str, doc_id: str, fields: DocFields | None, live_version: int) -> None:
        for operation in rewrite_operations(tenant, doc_id, fields, live_version):
            self.shard.update(operation)

    def retire(self, tenant: str, doc_id: str, below_version: int) -> None:
        for operation in retire_operations(tenant, doc_id, below_version):
            self.shard.update(operation)

    def query(self, request: qe.QueryRequest) -> list[EngineHit]:
        return [EngineHit.from_fields(p.payload, float(p.score)) for p in self.shard.query(request)]

    def search(self, vector: list[float], scope: SearchScope, limit: int) -> list[EngineHit]:
        return self.query(search_request(vector, scope, limit))

    def fetch(self, chunk_ids: list[str]) -> dict[str, types_pb2.Chunk]:
        if not chunk_ids:
            return {}
        records = self.shard.retrieve(list(chunk_ids), True, False)
        chunks = (fields_chunk(r.payload) for r in records)
        return {c.chunk_id: c for c in chunks}

    def chunks_of(self, tenant: str, doc_id: str) -> list[tuple[str, int, bool]]:
        return [
            (str(r.id), int(r.payload["version"]), bool(r.payload.get("live")))
            for batch in self._scroll(document_filter(tenant, doc_id), ["version", "live"], False)
            for r in batch
        ]

    def _scroll(self, flt: qe.Filter | None, payload, with_vector: bool, batch: int = 512):
        offset = None
        while True:
            records, offset = self.shard.scroll(
                qe.ScrollRequest(
                    offset=offset,
                    limit=batch,
                    filter=flt,
                    with_payload=qe.PayloadSelector.Include(payload) if isinstance(payload, list) else payload,
                    with_vector=with_vector,
                )
            )
            if records:
                yield records
            if offset is None:
                return

    def export(self, batch: int = 512):
        for records in self._scroll(None, True, True, batch):
            yield [(fields_chunk(r.payload), list(r.vector), bool(r.payload.get("live"))) for r in records]

    def count(self, tenant: str | None = None, doc_id: str | None = None) -> int:
        return self.shard.count(qe.CountRequest(exact=True, filter=count_filter(tenant, doc_id)))

    def info(self):
        return self.shard.info()

    def commit(self) -> None:
        """Durable through the WAL already; flushing is left to Qdrant's own cadence."""

    def flush(self) -> None:
        self.shard.flush()

    def close(self) -> None:
        if self.shard is not None:
            self.shard.flush()
            self.shard.close()
            self.shard = None

    def destroy(self) -> None:
        self.close()
        shutil.rmtree(self.path, ignore_errors=True)
