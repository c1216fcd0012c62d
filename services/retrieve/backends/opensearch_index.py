"""Lexical index on an OpenSearch cluster through opensearch-py: BM25 over title, section and text
with the English analyser, keyword fields for every filter, bulk writes, retire by query.

OpenSearch makes writes searchable at the next refresh; `commit` refreshes, so a batch the
consumer has applied is visible to the next search, as with Tantivy."""

from opensearchpy import OpenSearch, helpers

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

KEYWORD = {"type": "keyword"}
INTEGER = {"type": "integer"}
ENGLISH = {"type": "text", "analyzer": "english"}
MAPPING = {
    "settings": {"index": {"similarity": {"default": {"type": "BM25", "k1": 1.2, "b": 0.75}}}},
    "mappings": {
        "dynamic": "strict",
        "properties": {
            **{f: KEYWORD for f in ("chunk_id", "tenant", "doc_id", "doc_key", "acl", "chunker_version")},
            **{f: KEYWORD for f in ("content_kind",)},
            **{f: INTEGER for f in ("version", "ordinal", "char_start", "char_end", "page_start", "page_end")},
            "date": {"type": "long"},  # the document date, epoch seconds
            "live": INTEGER,  # false: a version being written, not searched yet
            "text": ENGLISH,
            "title": ENGLISH,
            "section": ENGLISH,
            # Document metadata: any key, each value an exact keyword.
            "meta": {"type": "object", "dynamic": True},
        },
        "dynamic_templates": [{"meta_keywords": {"path_match": "meta.*", "mapping": KEYWORD}}],
    },
}
SET_FIELDS = "ctx._source.acl = params.acl; ctx._source.meta = params.meta; ctx._source.date = params.date;"
SET_TITLE = " ctx._source.title = params.title;"
SET_LIVE = "ctx._source.live = params.live;"


class OpenSearchIndex:
    def __init__(self, url: str, index: str = "ragmesh-chunks", field_boosts: dict[str, float] | None = None) -> None:
        self.url, self.index = url, index
        self.field_boosts = field_boosts or {"title": 1.0, "section": 1.0, "text": 1.0}
        self.client: OpenSearch | None = None

    def open(self) -> None:
        self.client = OpenSearch(hosts=[self.url], timeout=30, max_retries=3, retry_on_timeout=True)
        if not self.client.indices.exists(index=self.index):
            self.client.indices.create(index=self.index, body=MAPPING)

    def _doc(self, tenant: str, doc_id: str, *more) -> dict:
        return {"bool": {"filter": [{"term": {"doc_key": f"{tenant}/{doc_id}"}}, *more]}}

    def _live_ids(self, chunk_ids: list[str]) -> set[str]:
        query = {"bool": {"filter": [{"terms": {"chunk_id": chunk_ids}}, {"term": {"live": 1}}]}}
        body = {"size": len(chunk_ids), "_source": ["chunk_id"], "query": query}
        return {h["_source"]["chunk_id"] for h in self.client.search(index=self.index, body=body)["hits"]["hits"]}

    def upsert(self, writes: list[ChunkWrite]) -> None:
        if not writes:
            return
        pending = pending_ids(writes)
        keep_live = self._live_ids(pending) if pending else set()
        actions = [{"_index": self.index, "_id": w.chunk.chunk_id, "_source": w.stored(keep_live)} for w in writes]
        helpers.bulk(self.client, actions)

    def _update(self, query: dict, script: str, params: dict) -> None:
        body = {"query": query, "script": {"source": script, "params": params}}
        self.client.update_by_query(index=self.index, body=body, refresh=True, conflicts="proceed")

    def rewrite(self, tenant: str, doc_id: str, fields: DocFields | None, live_version: int) -> None:
        if fields is not None:
            params = fields.payload()
            self._update(self._doc(tenant, doc_id), SET_FIELDS + (SET_TITLE if fields.title else ""), params)
        if live_version:
            self._update(self._doc(tenant, doc_id, {"term": {"version": live_version}}), SET_LIVE, {"live": 1})

    def retire(self, tenant: str, doc_id: str, below_version: int) -> None:
        if below_version <= 1:
            return
        query = self._doc(tenant, doc_id, {"range": {"version": {"lt": below_version}}})
        self.client.delete_by_query(index=self.index, body={"query": query}, refresh=True, conflicts="proceed")

    def _filters(self, scope: SearchScope) -> list[dict]:
        filters = [{"term": {"tenant": scope.tenant}}, {"term": {"live": 1}}, {"terms": {"acl": scope.acl}}]
        if scope.doc_ids:
            filters.append({"terms": {"doc_id": list(scope.doc_ids)}})
        for key, values in scope.metadata:
            filters.append({"terms": {f"meta.{key}": list(values)}})
        if scope.dated:
            bounds = {"gte": scope.date_from, "lte": scope.date_to}
            filters.append({"range": {"date": {k: v for k, v in bounds.items() if v is not None}}})
        return filters

    def search(self, query: str, scope: SearchScope, limit: int) -> list[EngineHit]:
        fields = [f"{name}^{boost}" for name, boost in self.field_boosts.items()]
        body = {
            "size": limit,
            "_source": list(CANDIDATE_FIELDS),  # the whole chunks are fetched for the final hits alone
            "query": {
                "bool": {
                    "must": [{"multi_match": {"query": query, "fields": fields, "type": "most_fields"}}],
                    "filter": self._filters(scope),
                }
            },
        }
        response = self.client.search(index=self.index, body=body)
        return [EngineHit.from_fields(h["_source"], float(h["_score"])) for h in response["hits"]["hits"]]

    def fetch(self, chunk_ids: list[str]) -> dict[str, types_pb2.Chunk]:
        if not chunk_ids:
            return {}
        body = {"size": len(chunk_ids), "query": {"bool": {"filter": [{"terms": {"chunk_id": list(chunk_ids)}}]}}}
        chunks = (fields_chunk(h["_source"]) for h in self.client.search(index=self.index, body=body)["hits"]["hits"])
        return {c.chunk_id: c for c in chunks}

    def chunks_of(self, tenant: str, doc_id: str) -> list[tuple[str, int, bool]]:
        body = {"size": 10000, "_source": ["chunk_id", "version", "live"], "query": self._doc(tenant, doc_id)}
        hits = self.client.search(index=self.index, body=body)["hits"]["hits"]
        return [(h["_source"]["chunk_id"], int(h["_source"]["version"]), bool(h["_source"].get("live"))) for h in hits]

    def count(self, tenant: str | None = None, doc_id: str | None = None) -> int:
        filters = []
        if tenant:
            filters.append({"term": {"tenant": tenant}})
        if tenant and doc_id:
            filters.append({"term": {"doc_key": f"{tenant}/{doc_id}"}})
        body = {"query": {"bool": {"filter": filters}}} if filters else {"query": {"match_all": {}}}
        return int(self.client.count(index=self.index, body=body)["count"])

    def commit(self) -> None:
        self.client.indices.refresh(index=self.index)

    def destroy(self) -> None:
        if self.client is not None:
            self.client.indices.delete(index=self.index, ignore_unavailable=True)
        self.close()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
