"""Lexical index on Tantivy: BM25 over title and text with English stemming."""

import shutil
import threading
from pathlib import Path

import tantivy

from rag.v1 import types_pb2
from services.retrieve.backends.base import PUBLIC, EngineHit, SearchScope, chunk_fields, fields_chunk

ANALYZER = "ragmesh_en"
RAW = "raw"


def english_analyzer() -> tantivy.TextAnalyzer:
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


def build_schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    for name in ("chunk_id", "tenant", "doc_id", "doc_key", "acl", "chunker_version", "content_kind"):
        builder.add_text_field(name, stored=True, tokenizer_name=RAW)
    for name in ("version", "date"):
        builder.add_integer_field(name, stored=True, indexed=True, fast=True)
    for name in ("ordinal", "char_start", "char_end", "page_start", "page_end"):
        builder.add_integer_field(name, stored=True)
    builder.add_text_field("title", stored=True, tokenizer_name=ANALYZER)
    builder.add_text_field("text", stored=True, tokenizer_name=ANALYZER)
    builder.add_text_field("section", stored=True, tokenizer_name=ANALYZER)
    builder.add_json_field("meta", stored=True, tokenizer_name=RAW)
    return builder.build()


class TantivyIndex:
    def __init__(self, path: Path, field_boosts: dict[str, float] | None = None) -> None:
        self.path = Path(path)
        self.field_boosts = field_boosts or {"title": 1.0, "section": 1.0, "text": 1.0}
        self.analyzer = english_analyzer()
        self.index: tantivy.Index | None = None
        self.writer: tantivy.IndexWriter | None = None
        self._lock = threading.Lock()

    def open(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.schema = build_schema()
        try:
            self.index = tantivy.Index(self.schema, path=str(self.path), reuse=True)
        except ValueError as exc:
            if "schema does not match" not in str(exc):
                raise
            raise SystemExit(
                f"the lexical index in {self.path} was built with an older schema: remove the retrieve folder "
                "(indexes and state) and re-ingest the documents into a new index"
            ) from None
        self.index.register_tokenizer(ANALYZER, self.analyzer)
        self.writer = self.index.writer(heap_size=64_000_000, num_threads=1)
        self.index.config_reader(reload_policy="manual")
        self.index.reload()

    def _term(self, field: str, value) -> tantivy.Query:
        return tantivy.Query.term_query(self.schema, field, value)

    def _match(self, field: str, term: str, boost: float) -> tantivy.Query:
        query = self._term(field, term)
        return query if boost == 1.0 else tantivy.Query.boost_query(query, boost)

    def upsert(self, chunks: list[types_pb2.Chunk]) -> None:
        with self._lock:
            for chunk in chunks:
                self.writer.delete_documents_by_term("chunk_id", chunk.chunk_id)
                self.writer.add_document(tantivy.Document.from_dict(chunk_fields(chunk), self.schema))

    def retire(self, tenant: str, doc_id: str, keep_version: int | None) -> None:
        clauses = [(tantivy.Occur.Must, self._term("doc_key", f"{tenant}/{doc_id}"))]
        if keep_version:
            clauses.append((tantivy.Occur.MustNot, self._term("version", keep_version)))
        with self._lock:
            self.writer.delete_documents_by_query(tantivy.Query.boolean_query(clauses))

    def set_fields(self, tenant: str, doc_id: str, title: str, acl: list[str], metadata: dict[str, str]) -> None:
        """Tantivy documents are immutable: re-add every chunk of the document with the new fields.
        Sees the last commit, so callers commit pending upserts of the document first."""
        searcher = self.index.searcher()
        doc_term = self._term("doc_key", f"{tenant}/{doc_id}")
        total = searcher.search(doc_term, 1, count=True).count
        if not total:
            return
        chunks = [fields_chunk(searcher.doc(a).to_dict()) for _, a in searcher.search(doc_term, total).hits]
        for chunk in chunks:
            chunk.title = title
            del chunk.acl[:]
            chunk.acl.extend(acl or [PUBLIC])
            chunk.metadata.clear()
            chunk.metadata.update(metadata)
        self.upsert(chunks)

    def commit(self) -> None:
        with self._lock:
            self.writer.commit()
        self.index.reload()

    def query_terms(self, text: str) -> list[str]:
        """Analyzed terms of user text: no query syntax, so apostrophes and colons are just text."""
        return list(dict.fromkeys(self.analyzer.analyze(text)))

    def search(self, query: str, scope: SearchScope, limit: int) -> list[EngineHit]:
        terms = self.query_terms(query)
        if not terms:
            return []
        matches = [
            (tantivy.Occur.Should, self._match(field, term, boost))
            for term in terms
            for field, boost in self.field_boosts.items()
        ]
        filters = [
            self._term("tenant", scope.tenant),
            tantivy.Query.term_set_query(self.schema, "acl", scope.acl),
        ]
        if scope.doc_ids:
            filters.append(tantivy.Query.term_set_query(self.schema, "doc_id", list(scope.doc_ids)))
        for key, values in scope.metadata:
            filters.append(
                tantivy.Query.boolean_query(
                    [(tantivy.Occur.Should, self._term(f"meta.{key}", value)) for value in values]
                )
            )
        if scope.dated:
            low = scope.date_from if scope.date_from is not None else -(2**63)
            high = scope.date_to if scope.date_to is not None else 2**63 - 1
            filters.append(tantivy.Query.range_query(self.schema, "date", tantivy.FieldType.Integer, low, high))
        query_obj = tantivy.Query.boolean_query(
            [(tantivy.Occur.Must, tantivy.Query.boolean_query(matches))]
            + [(tantivy.Occur.Must, tantivy.Query.const_score_query(f, 0.0)) for f in filters]
        )
        searcher = self.index.searcher()
        result = searcher.search(query_obj, limit, count=False)
        return [
            EngineHit(fields_chunk(searcher.doc(address).to_dict()), float(score)) for score, address in result.hits
        ]

    def count(self, tenant: str | None = None, doc_id: str | None = None) -> int:
        searcher = self.index.searcher()
        if tenant is None:
            return searcher.num_docs
        term = self._term("doc_key", f"{tenant}/{doc_id}") if doc_id else self._term("tenant", tenant)
        return searcher.search(term, 1, count=True).count

    def destroy(self) -> None:
        self.close()
        shutil.rmtree(self.path, ignore_errors=True)

    def close(self) -> None:
        if self.writer is not None:
            with self._lock:
                self.writer.commit()
                self.writer.wait_merging_threads()
            self.writer = None
