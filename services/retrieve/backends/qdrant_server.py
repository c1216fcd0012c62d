"""Dense index on a Qdrant server through qdrant-client (or qdrant-client's local mode, which runs
the same client code path in-process, for tests and tools)."""

from qdrant_client import QdrantClient, models

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

KEYWORD_FIELDS = ("tenant", "doc_id", "doc_key", "acl")


class QdrantServerIndex:
    def __init__(
        self, dimension: int, url: str = "", path: str = "", collection: str = "ragmesh_chunks", api_key: str = ""
    ) -> None:
        if bool(url) == bool(path):
            raise ValueError("give a Qdrant url or a local path, not both")
        self.dimension, self.url, self.path, self.collection, self.api_key = dimension, url, path, collection, api_key
        self.client: QdrantClient | None = None

    def open(self) -> None:
        if self.url:
            self.client = QdrantClient(url=self.url, api_key=self.api_key or None, timeout=30)
        else:
            self.client = QdrantClient(path=self.path)
        if not self.client.collection_exists(self.collection):
            self.client.create_collection(
                self.collection,
                vectors_config=models.VectorParams(size=self.dimension, distance=models.Distance.COSINE),
            )
        existing = self.client.get_collection(self.collection).config.params.vectors
        if existing.size != self.dimension:
            raise ValueError(f"collection {self.collection} holds {existing.size}-d vectors, not {self.dimension}-d")
        if self.path:
            return  # local mode has no payload indexes
        # Payload indexes keep filtered search fast: every search filters on tenant and acl.
        for field in KEYWORD_FIELDS:
            self.client.create_payload_index(self.collection, field, models.PayloadSchemaType.KEYWORD)
        for field in ("version", "date", "live"):
            self.client.create_payload_index(self.collection, field, models.PayloadSchemaType.INTEGER)

    def _doc(self, tenant: str, doc_id: str, *more) -> models.Filter:
        doc = models.FieldCondition(key="doc_key", match=models.MatchValue(value=f"{tenant}/{doc_id}"))
        return models.Filter(must=[doc, *more])

    def _live_ids(self, chunk_ids: list[str]) -> set[str]:
        records = self.client.retrieve(self.collection, chunk_ids, with_payload=["live"], with_vectors=False)
        return {str(r.id) for r in records if (r.payload or {}).get("live")}

    def upsert(self, writes: list[ChunkWrite]) -> None:
        if not writes:
            return
        pending = pending_ids(writes)
        keep_live = self._live_ids(pending) if pending else set()
        points = [
            models.PointStruct(id=w.chunk.chunk_id, vector=list(w.vector), payload=w.stored(keep_live)) for w in writes
        ]
        self.client.upsert(self.collection, points, wait=True)

    def rewrite(self, tenant: str, doc_id: str, fields: DocFields | None, live_version: int) -> None:
        if fields is not None:
            self.client.set_payload(self.collection, fields.payload(), points=self._doc(tenant, doc_id), wait=True)
        if live_version:
            version = models.FieldCondition(key="version", match=models.MatchValue(value=live_version))
            self.client.set_payload(self.collection, {"live": 1}, points=self._doc(tenant, doc_id, version), wait=True)

    def retire(self, tenant: str, doc_id: str, below_version: int) -> None:
        if below_version <= 1:
            return
        older = models.FieldCondition(key="version", range=models.Range(lt=below_version))
        self.client.delete(self.collection, models.FilterSelector(filter=self._doc(tenant, doc_id, older)), wait=True)

    def _filter(self, scope: SearchScope) -> models.Filter:
        must = [
            models.FieldCondition(key="tenant", match=models.MatchValue(value=scope.tenant)),
            models.FieldCondition(key="live", match=models.MatchValue(value=1)),
            models.FieldCondition(key="acl", match=models.MatchAny(any=scope.acl)),
        ]
        if scope.doc_ids:
            must.append(models.FieldCondition(key="doc_id", match=models.MatchAny(any=list(scope.doc_ids))))
        for key, values in scope.metadata:
            must.append(models.FieldCondition(key=f"meta.{key}", match=models.MatchAny(any=list(values))))
        if scope.dated:
            must.append(models.FieldCondition(key="date", range=models.Range(gte=scope.date_from, lte=scope.date_to)))
        return models.Filter(must=must)

    def search(self, vector: list[float], scope: SearchScope, limit: int) -> list[EngineHit]:
        result = self.client.query_points(
            self.collection,
            query=list(vector),
            query_filter=self._filter(scope),
            limit=limit,
            with_payload=models.PayloadSelectorInclude(include=list(CANDIDATE_FIELDS)),
        )
        return [EngineHit.from_fields(p.payload, float(p.score)) for p in result.points]

    def fetch(self, chunk_ids: list[str]) -> dict[str, types_pb2.Chunk]:
        if not chunk_ids:
            return {}
        records = self.client.retrieve(self.collection, list(chunk_ids), with_payload=True, with_vectors=False)
        chunks = (fields_chunk(r.payload) for r in records)
        return {c.chunk_id: c for c in chunks}

    def _scroll(self, flt: models.Filter | None, payload, with_vectors: bool, batch: int = 512):
        offset = None
        while True:
            records, offset = self.client.scroll(
                self.collection,
                scroll_filter=flt,
                limit=batch,
                offset=offset,
                with_payload=payload,
                with_vectors=with_vectors,
            )
            if records:
                yield records
            if offset is None:
                return

    def chunks_of(self, tenant: str, doc_id: str) -> list[tuple[str, int, bool]]:
        return [
            (str(r.id), int(r.payload["version"]), bool(r.payload.get("live")))
            for batch in self._scroll(self._doc(tenant, doc_id), ["version", "live"], False)
            for r in batch
        ]

    def export(self, batch: int = 512):
        for records in self._scroll(None, True, True, batch):
            yield [(fields_chunk(r.payload), list(r.vector), bool(r.payload.get("live"))) for r in records]

    def count(self, tenant: str | None = None, doc_id: str | None = None) -> int:
        must = []
        if tenant:
            must.append(models.FieldCondition(key="tenant", match=models.MatchValue(value=tenant)))
        if tenant and doc_id:
            must.append(models.FieldCondition(key="doc_key", match=models.MatchValue(value=f"{tenant}/{doc_id}")))
        flt = models.Filter(must=must) if must else None
        return self.client.count(self.collection, count_filter=flt, exact=True).count

    def commit(self) -> None:
        """Writes wait for Qdrant's acknowledgement (wait=True): nothing is buffered here."""

    def destroy(self) -> None:
        if self.client is not None:
            self.client.delete_collection(self.collection)
        self.close()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
