"""Lexical index on an OpenSearch cluster through opensearch-py: one index per tenant, BM25 over the
terms ragmesh analyses itself (services/retrieve/analysis.py, the same as Tantivy's), keyword
fields for every filter, bulk writes, retire by query.

A tenant's index is `<index>.t-<hash of the tenant>` (one shard), made when the tenant is first
written to: BM25's statistics and a query's work stay within the tenant. No ICU or language plugin
is needed: every analysed field uses the built-in `whitespace` analyser.

OpenSearch makes writes searchable at the next refresh; `commit` refreshes the tenants written to,
so a batch the consumer has applied is visible to the next search, as with Tantivy."""

import hashlib

from opensearchpy import NotFoundError, OpenSearch, helpers

from rag.v1 import types_pb2
from services.retrieve.analysis import (
    FIELD_BOOSTS,
    PLAIN_BOOST,
    PLAIN_FIELD,
    TERM_FIELDS,
    AnalysedQuery,
    analyse_query,
    chunk_language,
    document_terms,
)
from services.retrieve.backends.base import (
    CANDIDATE_FIELDS,
    ChunkWrite,
    DocFields,
    EngineHit,
    SearchScope,
    fields_chunk,
)

KEYWORD = {"type": "keyword"}
INTEGER = {"type": "integer"}
STORED_ONLY = {"type": "text", "index": False}
TERMS = {"type": "text", "analyzer": "whitespace", "index_options": "freqs"}
MAPPING = {
    "settings": {
        "index": {
            "number_of_shards": 1,
            "similarity": {"default": {"type": "BM25", "k1": 1.2, "b": 0.75}},
        }
    },
    "mappings": {
        "dynamic": "strict",
        "properties": {
            **{f: KEYWORD for f in ("chunk_id", "tenant", "doc_id", "doc_key", "acl", "chunker_version")},
            **{f: KEYWORD for f in ("content_kind", "language")},
            **{f: INTEGER for f in ("version", "ordinal", "char_start", "char_end", "page_start", "page_end")},
            "date": {"type": "long"},  # the document date, epoch seconds
            "live": INTEGER,  # false: a version being written, not searched yet
            **{f: STORED_ONLY for f in ("text", "title", "section")},
            **{f: TERMS for f in (*TERM_FIELDS, PLAIN_FIELD)},
            # Document metadata: any key, each value an exact keyword.
            "meta": {"type": "object", "dynamic": True},
        },
        "dynamic_templates": [{"meta_keywords": {"path_match": "meta.*", "mapping": KEYWORD}}],
    },
}
# Terms are kept in _source: an update by query re-indexes a document from its _source.
SET_FIELDS = "ctx._source.acl = params.acl; ctx._source.meta = params.meta; ctx._source.date = params.date;"
SET_TITLE = " ctx._source.title = params.title; ctx._source.title_terms = params.title_terms;"
SET_LIVE = "ctx._source.live = params.live;"
TENANT_SEPARATOR = ".t-"


def tenant_index(prefix: str, tenant: str) -> str:
    return f"{prefix}{TENANT_SEPARATOR}{hashlib.blake2b(tenant.encode(), digest_size=16).hexdigest()}"


class OpenSearchIndex:
    def __init__(self, url: str, index: str = "ragmesh-chunks") -> None:
        self.url, self.index = url, index
        self.client: OpenSearch | None = None
        self._made: set[str] = set()  # tenant indexes known to exist
        self._written: set[str] = set()  # tenant indexes written to since the last commit

    def open(self) -> None:
        self.client = OpenSearch(hosts=[self.url], timeout=30, max_retries=3, retry_on_timeout=True)

    def _name(self, tenant: str) -> str:
        return tenant_index(self.index, tenant)

    def _exists(self, tenant: str) -> bool:
        name = self._name(tenant)
        if name not in self._made and self.client.indices.exists(index=name):
            self._made.add(name)
        return name in self._made

    def _ensure(self, tenant: str) -> str:
        name = self._name(tenant)
        if not self._exists(tenant):
            try:
                self.client.indices.create(index=name, body=MAPPING)
            except Exception as exc:  # made meanwhile by another writer (resource_already_exists)
                if "already_exists" not in str(exc):
                    raise
            self._made.add(name)
        return name

    def _tenant_indexes(self) -> list[str]:
        """Every tenant index of this generation."""
        try:
            found = self.client.indices.get(index=f"{self.index}{TENANT_SEPARATOR}*")
        except NotFoundError:
            return []
        return sorted(found)

    def _doc(self, tenant: str, doc_id: str, *more) -> dict:
        return {"bool": {"filter": [{"term": {"doc_key": f"{tenant}/{doc_id}"}}, *more]}}

    def _live_ids(self, tenant: str, chunk_ids: list[str]) -> set[str]:
        if not self._exists(tenant):
            return set()
        query = {"bool": {"filter": [{"terms": {"chunk_id": chunk_ids}}, {"term": {"live": 1}}]}}
        body = {"size": len(chunk_ids), "_source": ["chunk_id"], "query": query}
        hits = self.client.search(index=self._name(tenant), body=body)["hits"]["hits"]
        return {h["_source"]["chunk_id"] for h in hits}

    @staticmethod
    def _source(fields: dict) -> dict:
        language = chunk_language(fields["language"], fields["title"], fields["text"])
        return fields | document_terms(fields["title"], fields["section"], fields["text"], language)

    def upsert(self, writes: list[ChunkWrite]) -> None:
        if not writes:
            return
        keep_live: set[str] = set()
        pending: dict[str, list[str]] = {}
        for w in writes:
            if not w.live:
                pending.setdefault(w.chunk.tenant, []).append(w.chunk.chunk_id)
        for tenant, ids in pending.items():
            keep_live |= self._live_ids(tenant, ids)
        actions = []
        for w in writes:
            name = self._ensure(w.chunk.tenant)
            self._written.add(name)
            actions.append({"_index": name, "_id": w.chunk.chunk_id, "_source": self._source(w.stored(keep_live))})
        helpers.bulk(self.client, actions)

    def _update(self, tenant: str, query: dict, script: str, params: dict) -> None:
        body = {"query": query, "script": {"source": script, "params": params}}
        self.client.update_by_query(index=self._name(tenant), body=body, refresh=True, conflicts="proceed")

    def rewrite(self, tenant: str, doc_id: str, fields: DocFields | None, live_version: int) -> None:
        if not self._exists(tenant):
            return
        if fields is not None:
            params = fields.payload()
            script = SET_FIELDS
            if fields.title:
                # The title's terms in the document's language, as its chunks were analysed.
                language = self._language(tenant, doc_id)
                params["title_terms"] = document_terms(fields.title, "", "", language)["title_terms"]
                script += SET_TITLE
            self._update(tenant, self._doc(tenant, doc_id), script, params)
        if live_version:
            self._update(tenant, self._doc(tenant, doc_id, {"term": {"version": live_version}}), SET_LIVE, {"live": 1})

    def _language(self, tenant: str, doc_id: str) -> str:
        body = {"size": 1, "_source": ["language", "title", "text"], "query": self._doc(tenant, doc_id)}
        hits = self.client.search(index=self._name(tenant), body=body)["hits"]["hits"]
        if not hits:
            return ""
        s = hits[0]["_source"]
        return chunk_language(s.get("language", ""), s.get("title", ""), s.get("text", ""))

    def retire(self, tenant: str, doc_id: str, below_version: int) -> None:
        if below_version <= 1 or not self._exists(tenant):
            return
        query = self._doc(tenant, doc_id, {"range": {"version": {"lt": below_version}}})
        self.client.delete_by_query(index=self._name(tenant), body={"query": query}, refresh=True, conflicts="proceed")

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

    def search(self, query: str | AnalysedQuery, scope: SearchScope, limit: int) -> list[EngineHit]:
        analysed = query if isinstance(query, AnalysedQuery) else analyse_query(query)
        should = []
        if analysed.stemmed:
            fields = [f"{name}^{boost}" for name, boost in FIELD_BOOSTS.items()]
            text = " ".join(analysed.stemmed)
            should.append({"multi_match": {"query": text, "fields": fields, "type": "most_fields"}})
        if analysed.plain:
            text = " ".join(analysed.plain)
            should.append({"multi_match": {"query": text, "fields": [f"{PLAIN_FIELD}^{PLAIN_BOOST}"]}})
        if not should or not self._exists(scope.tenant):
            return []
        body = {
            "size": limit,
            "_source": list(CANDIDATE_FIELDS),  # the whole chunks are fetched for the final hits alone
            "query": {"bool": {"should": should, "minimum_should_match": 1, "filter": self._filters(scope)}},
        }
        response = self.client.search(index=self._name(scope.tenant), body=body)
        return [EngineHit.from_fields(h["_source"], float(h["_score"])) for h in response["hits"]["hits"]]

    def fetch(self, tenant: str, chunk_ids: list[str]) -> dict[str, types_pb2.Chunk]:
        if not chunk_ids or not self._exists(tenant):
            return {}
        body = {"size": len(chunk_ids), "query": {"bool": {"filter": [{"terms": {"chunk_id": list(chunk_ids)}}]}}}
        hits = self.client.search(index=self._name(tenant), body=body)["hits"]["hits"]
        chunks = (fields_chunk(h["_source"]) for h in hits)
        return {c.chunk_id: c for c in chunks}

    def chunks_of(self, tenant: str, doc_id: str) -> list[tuple[str, int, bool]]:
        if not self._exists(tenant):
            return []
        body = {"size": 10000, "_source": ["chunk_id", "version", "live"], "query": self._doc(tenant, doc_id)}
        hits = self.client.search(index=self._name(tenant), body=body)["hits"]["hits"]
        return [(h["_source"]["chunk_id"], int(h["_source"]["version"]), bool(h["_source"].get("live"))) for h in hits]

    def count(self, tenant: str | None = None, doc_id: str | None = None) -> int:
        if tenant is None:
            indexes = self._tenant_indexes()
            return sum(int(self.client.count(index=name)["count"]) for name in indexes)
        if not self._exists(tenant):
            return 0
        body = {"query": self._doc(tenant, doc_id)} if doc_id else {"query": {"match_all": {}}}
        return int(self.client.count(index=self._name(tenant), body=body)["count"])

    def commit(self) -> None:
        for name in sorted(self._written):
            self.client.indices.refresh(index=name)
            self._written.discard(name)  # a refresh that failed is made again by the retried batch

    def destroy(self) -> None:
        if self.client is not None:
            # The tenants' indexes, and the single index an earlier release kept under the prefix itself.
            for name in [*self._tenant_indexes(), self.index]:
                self.client.indices.delete(index=name, ignore_unavailable=True)
            self._made.clear()
        self.close()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
