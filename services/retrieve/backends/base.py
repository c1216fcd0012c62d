"""The interface both engines of a kind implement, and the chunk <-> stored-fields mapping."""

from dataclasses import dataclass
from typing import Protocol

from rag.v1 import types_pb2

PUBLIC = "public"


@dataclass(frozen=True)
class SearchScope:
    """Who is searching and over what: tenant is mandatory, ACL always applied."""

    tenant: str
    principals: tuple[str, ...]
    doc_ids: tuple[str, ...] = ()
    # (key, values): the chunk's document metadata `key` must equal one of `values`; all pairs must hold.
    metadata: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def __post_init__(self) -> None:
        if not self.tenant:
            raise ValueError("a search needs a tenant")

    @property
    def acl(self) -> list[str]:
        return sorted({PUBLIC, *self.principals})


@dataclass(frozen=True)
class EngineHit:
    chunk: types_pb2.Chunk
    score: float


def chunk_fields(chunk: types_pb2.Chunk) -> dict:
    """A chunk as flat stored fields (the payload in Qdrant, stored fields in Tantivy)."""
    return {
        "chunk_id": chunk.chunk_id,
        "tenant": chunk.tenant,
        "doc_id": chunk.doc_id,
        "doc_key": f"{chunk.tenant}/{chunk.doc_id}",
        "version": chunk.version,
        "ordinal": chunk.ordinal,
        "text": chunk.text,
        "title": chunk.title,
        "section": chunk.section,
        "acl": list(chunk.acl) or [PUBLIC],
        "char_start": chunk.char_start,
        "char_end": chunk.char_end,
        "chunker_version": chunk.chunker_version,
        "page_start": chunk.page_start,
        "page_end": chunk.page_end,
        "content_kind": chunk.content_kind,
        "meta": dict(chunk.metadata),
    }


def fields_chunk(fields: dict) -> types_pb2.Chunk:
    def one(name, default):
        value = fields.get(name, default)
        return value[0] if isinstance(value, list) and name != "acl" else value

    return types_pb2.Chunk(
        chunk_id=one("chunk_id", ""),
        tenant=one("tenant", ""),
        doc_id=one("doc_id", ""),
        version=int(one("version", 0)),
        ordinal=int(one("ordinal", 0)),
        text=one("text", ""),
        title=one("title", ""),
        section=one("section", ""),
        acl=list(fields.get("acl", [])),
        char_start=int(one("char_start", 0)),
        char_end=int(one("char_end", 0)),
        chunker_version=one("chunker_version", ""),
        page_start=int(one("page_start", 0)),
        page_end=int(one("page_end", 0)),
        content_kind=one("content_kind", ""),
        metadata=_metadata(fields.get("meta")),
    )


def _metadata(value) -> dict[str, str]:
    """Tantivy returns a JSON field as a one-element list; Qdrant as the dict itself."""
    if isinstance(value, list):
        value = value[0] if value else {}
    return {str(k): str(v) for k, v in (value or {}).items()}


class DenseIndex(Protocol):
    def upsert(self, chunks: list[types_pb2.Chunk], vectors: list[list[float]]) -> None: ...
    def retire(self, tenant: str, doc_id: str, keep_version: int | None) -> None: ...
    def search(self, vector: list[float], scope: SearchScope, limit: int) -> list[EngineHit]: ...
    def set_fields(self, tenant: str, doc_id: str, title: str, acl: list[str], metadata: dict[str, str]) -> None: ...
    def count(self, tenant: str | None = None, doc_id: str | None = None) -> int: ...
    def commit(self) -> None: ...
    def close(self) -> None: ...


class LexicalIndex(Protocol):
    def upsert(self, chunks: list[types_pb2.Chunk]) -> None: ...
    def retire(self, tenant: str, doc_id: str, keep_version: int | None) -> None: ...
    def search(self, query: str, scope: SearchScope, limit: int) -> list[EngineHit]: ...
    def set_fields(self, tenant: str, doc_id: str, title: str, acl: list[str], metadata: dict[str, str]) -> None: ...
    def count(self, tenant: str | None = None, doc_id: str | None = None) -> int: ...
    def commit(self) -> None: ...
    def close(self) -> None: ...
