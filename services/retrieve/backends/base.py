"""The interface both engines of a kind implement, and the chunk <-> stored-fields mapping."""

import functools
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import NamedTuple, Protocol

from rag.v1 import types_pb2
from services.common.access import PUBLIC

DATE_KEY = "date"  # the metadata key holding a document's date


def parse_date(value: str, end_of_day: bool = False) -> int | None:
    """Epoch seconds of an ISO 8601 date or date-time (UTC without an offset); None if it is not one.
    A bare date as the end of a range means its whole day."""
    value = value.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return int(moment.timestamp()) + (86399 if end_of_day else 0)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def document_date(metadata) -> int | None:
    """A document's date for range filters: its `date` metadata value, if that is a valid date."""
    return parse_date(metadata.get(DATE_KEY, ""))


@dataclass(frozen=True)
class SearchScope:
    """Who is searching and over what: tenant is mandatory, ACL always applied."""

    tenant: str
    principals: tuple[str, ...]
    doc_ids: tuple[str, ...] = ()
    # (key, values): the chunk's document metadata `key` must equal one of `values`; all pairs must hold.
    metadata: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Inclusive epoch-second bounds on the document date; None = open.
    date_from: int | None = None
    date_to: int | None = None

    @property
    def dated(self) -> bool:
        return self.date_from is not None or self.date_to is not None

    def __post_init__(self) -> None:
        if not self.tenant:
            raise ValueError("a search needs a tenant")

    @property
    def acl(self) -> list[str]:
        return sorted({PUBLIC, *self.principals})


@functools.lru_cache(maxsize=65536)  # every candidate of every search names its document
def doc_hash(tenant: str, doc_id: str) -> int:
    """A document as one signed 64-bit integer: candidates name their document by it, so that
    engines can return it from a numeric column instead of loading stored fields."""
    digest = hashlib.blake2b(f"{tenant}\x1f{doc_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class EngineHit(NamedTuple):
    """A candidate: which chunk of which document version, and its score. `chunk` is the whole
    chunk when the engine had it at hand; otherwise it is fetched for the final hits alone
    (loading every stored field of 150 candidates costs more than the search itself). A named
    tuple: every search makes hundreds, and a frozen dataclass costs twice as much to make."""

    chunk_id: str
    doc: int  # doc_hash(tenant, doc_id)
    version: int
    score: float
    chunk: types_pb2.Chunk | None = None

    @classmethod
    def whole(cls, chunk: types_pb2.Chunk, score: float) -> "EngineHit":
        return cls(chunk.chunk_id, doc_hash(chunk.tenant, chunk.doc_id), chunk.version, score, chunk)

    @classmethod
    def from_fields(cls, fields: dict, score: float) -> "EngineHit":
        """From stored fields holding at least CANDIDATE_FIELDS (a Qdrant payload, an OpenSearch _source)."""
        return cls(fields["chunk_id"], doc_hash(fields["tenant"], fields["doc_id"]), int(fields["version"]), score)


# What ranking needs of a candidate from an engine that returns stored fields.
CANDIDATE_FIELDS = ("chunk_id", "tenant", "doc_id", "version")


@dataclass(frozen=True)
class DocFields:
    """What a document says of itself beside its content, the same on every chunk of every
    version: its ACL, metadata and (when the owner gave one) title. `revision` orders changes:
    a chunk written with older fields takes the newer ones."""

    title: str = ""  # empty: each chunk keeps the title parsed from its own version
    acl: tuple[str, ...] = ()
    metadata: tuple[tuple[str, str], ...] = ()  # sorted (key, value) pairs
    revision: int = 0

    @classmethod
    def of(cls, title: str, acl, metadata, revision: int = 0) -> "DocFields":
        return cls(title, tuple(acl), tuple(sorted(dict(metadata).items())), revision)

    @property
    def meta(self) -> dict[str, str]:
        return dict(self.metadata)

    def payload(self) -> dict:
        """The stored fields these set on every chunk of the document."""
        fields = {"acl": list(self.acl) or [PUBLIC], "meta": self.meta, "date": document_date(self.meta)}
        if self.title:
            fields["title"] = self.title
        return fields


@dataclass(frozen=True)
class ChunkWrite:
    """One chunk to store: its content, the document's fields, whether searches see it, and (for
    a dense engine) its vector."""

    chunk: types_pb2.Chunk
    fields: DocFields
    live: bool
    vector: tuple[float, ...] = ()

    def stored(self, keep_live: set[str] = frozenset()) -> dict:
        """Its stored fields; a chunk named in `keep_live` stays live (it was live before)."""
        return chunk_fields(self.chunk, self.fields, self.live or self.chunk.chunk_id in keep_live)


def pending_ids(writes: list[ChunkWrite]) -> list[str]:
    """The chunks a write stores as pending: engines check which of them are live already."""
    return [w.chunk.chunk_id for w in writes if not w.live]


def chunk_fields(chunk: types_pb2.Chunk, fields: DocFields | None = None, live: bool = True) -> dict:
    """A chunk as flat stored fields (the payload in Qdrant, stored fields in Tantivy), with the
    document's fields when given (otherwise the chunk's own) and whether searches see it."""
    stored = {
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
        "language": chunk.language,
        "meta": dict(chunk.metadata),
        "live": int(live),  # 0/1: every engine filters integers alike
    }
    moment = document_date(chunk.metadata)
    if moment is not None:
        stored["date"] = moment
    if fields is not None:
        stored |= fields.payload()
    if stored.get("date") is None:
        stored.pop("date", None)
    return stored


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
        language=one("language", ""),
        metadata=_metadata(fields.get("meta")),
    )


def _metadata(value) -> dict[str, str]:
    """Tantivy returns a JSON field as a one-element list; Qdrant as the dict itself."""
    if isinstance(value, list):
        value = value[0] if value else {}
    return {str(k): str(v) for k, v in (value or {}).items()}


class Engine(Protocol):
    """What both kinds of engine store and how it changes. A chunk is stored *live* (searches see
    it) or *pending* (a version being written, not searchable until its activation). Every change
    is idempotent: applying it again leaves the same engine state."""

    def open(self) -> None: ...
    def rewrite(self, tenant: str, doc_id: str, fields: DocFields | None, live_version: int) -> None:
        """Every stored chunk of the document takes `fields` (when given); the chunks of
        `live_version` (when not 0) become live."""

    def retire(self, tenant: str, doc_id: str, below_version: int) -> None:
        """Delete the document's chunks of every version below `below_version`."""

    def fetch(self, chunk_ids: list[str]) -> dict[str, types_pb2.Chunk]: ...  # whole chunks, by id
    def chunks_of(self, tenant: str, doc_id: str) -> list[tuple[str, int, bool]]:
        """(chunk id, version, live) of every stored chunk of the document, in no set order."""

    def count(self, tenant: str | None = None, doc_id: str | None = None) -> int: ...  # stored chunks
    def commit(self) -> None: ...  # make every change so far visible to searches (and durable)
    def close(self) -> None: ...
    def destroy(self) -> None: ...  # close, then remove everything it stored


class DenseIndex(Engine, Protocol):
    def upsert(self, writes: list[ChunkWrite]) -> None:
        """Store chunks with their vectors. A pending write never hides a chunk already stored
        live: a redelivered upsert cannot take a visible chunk away."""

    def search(self, vector: list[float], scope: SearchScope, limit: int) -> list[EngineHit]: ...  # live only
    def export(self, batch: int = 512) -> Iterator[list[tuple[types_pb2.Chunk, list[float], bool]]]:
        """Every stored chunk with its vector and whether it is live, in batches."""


class LexicalIndex(Engine, Protocol):
    def upsert(self, writes: list[ChunkWrite]) -> None: ...  # as DenseIndex.upsert, vectors unused
    def search(self, query: str, scope: SearchScope, limit: int) -> list[EngineHit]: ...  # live only
