from rag.v1 import events_pb2 as _events_pb2
from rag.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RetrieveRequest(_message.Message):
    __slots__ = ("tenant", "principals", "query", "top_k", "fusion", "doc_ids", "metadata_filters", "date_range", "generation")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    PRINCIPALS_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    FUSION_FIELD_NUMBER: _ClassVar[int]
    DOC_IDS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FILTERS_FIELD_NUMBER: _ClassVar[int]
    DATE_RANGE_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    principals: _containers.RepeatedScalarFieldContainer[str]
    query: str
    top_k: int
    fusion: _types_pb2.FusionParams
    doc_ids: _containers.RepeatedScalarFieldContainer[str]
    metadata_filters: _containers.RepeatedCompositeFieldContainer[_types_pb2.MetadataFilter]
    date_range: _types_pb2.DateRange
    generation: int
    def __init__(self, tenant: _Optional[str] = ..., principals: _Optional[_Iterable[str]] = ..., query: _Optional[str] = ..., top_k: _Optional[int] = ..., fusion: _Optional[_Union[_types_pb2.FusionParams, _Mapping]] = ..., doc_ids: _Optional[_Iterable[str]] = ..., metadata_filters: _Optional[_Iterable[_Union[_types_pb2.MetadataFilter, _Mapping]]] = ..., date_range: _Optional[_Union[_types_pb2.DateRange, _Mapping]] = ..., generation: _Optional[int] = ...) -> None: ...

class RetrieveResponse(_message.Message):
    __slots__ = ("hits", "index_watermark", "embedding_model_id", "fusion", "query_tokens", "index_generation", "generation", "dense_skipped")
    HITS_FIELD_NUMBER: _ClassVar[int]
    INDEX_WATERMARK_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    FUSION_FIELD_NUMBER: _ClassVar[int]
    QUERY_TOKENS_FIELD_NUMBER: _ClassVar[int]
    INDEX_GENERATION_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    DENSE_SKIPPED_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[_types_pb2.Hit]
    index_watermark: int
    embedding_model_id: str
    fusion: _types_pb2.FusionParams
    query_tokens: int
    index_generation: str
    generation: int
    dense_skipped: bool
    def __init__(self, hits: _Optional[_Iterable[_Union[_types_pb2.Hit, _Mapping]]] = ..., index_watermark: _Optional[int] = ..., embedding_model_id: _Optional[str] = ..., fusion: _Optional[_Union[_types_pb2.FusionParams, _Mapping]] = ..., query_tokens: _Optional[int] = ..., index_generation: _Optional[str] = ..., generation: _Optional[int] = ..., dense_skipped: _Optional[bool] = ...) -> None: ...

class GetIndexInfoRequest(_message.Message):
    __slots__ = ("tenant", "doc_id", "generation")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    doc_id: str
    generation: int
    def __init__(self, tenant: _Optional[str] = ..., doc_id: _Optional[str] = ..., generation: _Optional[int] = ...) -> None: ...

class GetIndexInfoResponse(_message.Message):
    __slots__ = ("index_watermark", "embedding_model_id", "dense_points", "lexical_documents", "index_generation", "generation")
    INDEX_WATERMARK_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DENSE_POINTS_FIELD_NUMBER: _ClassVar[int]
    LEXICAL_DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    INDEX_GENERATION_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    index_watermark: int
    embedding_model_id: str
    dense_points: int
    lexical_documents: int
    index_generation: str
    generation: int
    def __init__(self, index_watermark: _Optional[int] = ..., embedding_model_id: _Optional[str] = ..., dense_points: _Optional[int] = ..., lexical_documents: _Optional[int] = ..., index_generation: _Optional[str] = ..., generation: _Optional[int] = ...) -> None: ...

class GenerationRecord(_message.Message):
    __slots__ = ("number", "created_unix_ms", "replay_until", "reason", "rechunk", "chunking", "verdict", "embedding_model_id")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    REPLAY_UNTIL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RECHUNK_FIELD_NUMBER: _ClassVar[int]
    CHUNKING_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    number: int
    created_unix_ms: int
    replay_until: int
    reason: str
    rechunk: bool
    chunking: _types_pb2.Chunking
    verdict: Verdict
    embedding_model_id: str
    def __init__(self, number: _Optional[int] = ..., created_unix_ms: _Optional[int] = ..., replay_until: _Optional[int] = ..., reason: _Optional[str] = ..., rechunk: _Optional[bool] = ..., chunking: _Optional[_Union[_types_pb2.Chunking, _Mapping]] = ..., verdict: _Optional[_Union[Verdict, _Mapping]] = ..., embedding_model_id: _Optional[str] = ...) -> None: ...

class ModeScore(_message.Message):
    __slots__ = ("mode", "candidate_ndcg", "baseline_ndcg")
    MODE_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_NDCG_FIELD_NUMBER: _ClassVar[int]
    BASELINE_NDCG_FIELD_NUMBER: _ClassVar[int]
    mode: str
    candidate_ndcg: float
    baseline_ndcg: float
    def __init__(self, mode: _Optional[str] = ..., candidate_ndcg: _Optional[float] = ..., baseline_ndcg: _Optional[float] = ...) -> None: ...

class Verdict(_message.Message):
    __slots__ = ("candidate", "baseline", "dataset", "dataset_sha256", "queries", "scores", "tolerance", "passed", "summary", "created_unix_ms", "candidate_watermark")
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    DATASET_SHA256_FIELD_NUMBER: _ClassVar[int]
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_WATERMARK_FIELD_NUMBER: _ClassVar[int]
    candidate: int
    baseline: int
    dataset: str
    dataset_sha256: str
    queries: int
    scores: _containers.RepeatedCompositeFieldContainer[ModeScore]
    tolerance: float
    passed: bool
    summary: str
    created_unix_ms: int
    candidate_watermark: int
    def __init__(self, candidate: _Optional[int] = ..., baseline: _Optional[int] = ..., dataset: _Optional[str] = ..., dataset_sha256: _Optional[str] = ..., queries: _Optional[int] = ..., scores: _Optional[_Iterable[_Union[ModeScore, _Mapping]]] = ..., tolerance: _Optional[float] = ..., passed: _Optional[bool] = ..., summary: _Optional[str] = ..., created_unix_ms: _Optional[int] = ..., candidate_watermark: _Optional[int] = ...) -> None: ...

class JudgedQuery(_message.Message):
    __slots__ = ("id", "text", "relevant")
    class RelevantEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    RELEVANT_FIELD_NUMBER: _ClassVar[int]
    id: str
    text: str
    relevant: _containers.ScalarMap[str, int]
    def __init__(self, id: _Optional[str] = ..., text: _Optional[str] = ..., relevant: _Optional[_Mapping[str, int]] = ...) -> None: ...

class EvaluateGenerationRequest(_message.Message):
    __slots__ = ("number", "dataset", "tenant", "principals", "queries", "modes", "tolerance")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    PRINCIPALS_FIELD_NUMBER: _ClassVar[int]
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    MODES_FIELD_NUMBER: _ClassVar[int]
    TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    number: int
    dataset: str
    tenant: str
    principals: _containers.RepeatedScalarFieldContainer[str]
    queries: _containers.RepeatedCompositeFieldContainer[JudgedQuery]
    modes: _containers.RepeatedScalarFieldContainer[str]
    tolerance: float
    def __init__(self, number: _Optional[int] = ..., dataset: _Optional[str] = ..., tenant: _Optional[str] = ..., principals: _Optional[_Iterable[str]] = ..., queries: _Optional[_Iterable[_Union[JudgedQuery, _Mapping]]] = ..., modes: _Optional[_Iterable[str]] = ..., tolerance: _Optional[float] = ...) -> None: ...

class EvaluateGenerationResponse(_message.Message):
    __slots__ = ("verdict",)
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    verdict: Verdict
    def __init__(self, verdict: _Optional[_Union[Verdict, _Mapping]] = ...) -> None: ...

class IndexProgress(_message.Message):
    __slots__ = ("watermark", "embedding_model_id", "chunker_versions", "schema_version", "writer", "updated_unix_ms")
    WATERMARK_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    CHUNKER_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    WRITER_FIELD_NUMBER: _ClassVar[int]
    UPDATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    watermark: int
    embedding_model_id: str
    chunker_versions: _containers.RepeatedScalarFieldContainer[str]
    schema_version: int
    writer: str
    updated_unix_ms: int
    def __init__(self, watermark: _Optional[int] = ..., embedding_model_id: _Optional[str] = ..., chunker_versions: _Optional[_Iterable[str]] = ..., schema_version: _Optional[int] = ..., writer: _Optional[str] = ..., updated_unix_ms: _Optional[int] = ...) -> None: ...

class WriterLease(_message.Message):
    __slots__ = ("holder", "expires_unix_ms")
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    holder: str
    expires_unix_ms: int
    def __init__(self, holder: _Optional[str] = ..., expires_unix_ms: _Optional[int] = ...) -> None: ...

class SnapshotHeader(_message.Message):
    __slots__ = ("record", "watermark", "embedding_model_id", "chunker_versions", "schema_version", "created_unix_ms", "documents", "chunks")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    WATERMARK_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    CHUNKER_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    record: GenerationRecord
    watermark: int
    embedding_model_id: str
    chunker_versions: _containers.RepeatedScalarFieldContainer[str]
    schema_version: int
    created_unix_ms: int
    documents: int
    chunks: int
    def __init__(self, record: _Optional[_Union[GenerationRecord, _Mapping]] = ..., watermark: _Optional[int] = ..., embedding_model_id: _Optional[str] = ..., chunker_versions: _Optional[_Iterable[str]] = ..., schema_version: _Optional[int] = ..., created_unix_ms: _Optional[int] = ..., documents: _Optional[int] = ..., chunks: _Optional[int] = ...) -> None: ...

class SnapshotDocument(_message.Message):
    __slots__ = ("tenant", "doc_id", "state")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    doc_id: str
    state: IndexDocState
    def __init__(self, tenant: _Optional[str] = ..., doc_id: _Optional[str] = ..., state: _Optional[_Union[IndexDocState, _Mapping]] = ...) -> None: ...

class SnapshotChunks(_message.Message):
    __slots__ = ("chunks", "vectors", "dimension", "live")
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    LIVE_FIELD_NUMBER: _ClassVar[int]
    chunks: _containers.RepeatedCompositeFieldContainer[_types_pb2.Chunk]
    vectors: _containers.RepeatedScalarFieldContainer[float]
    dimension: int
    live: _containers.RepeatedScalarFieldContainer[bool]
    def __init__(self, chunks: _Optional[_Iterable[_Union[_types_pb2.Chunk, _Mapping]]] = ..., vectors: _Optional[_Iterable[float]] = ..., dimension: _Optional[int] = ..., live: _Optional[_Iterable[bool]] = ...) -> None: ...

class SnapshotEntry(_message.Message):
    __slots__ = ("header", "document", "chunks")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    header: SnapshotHeader
    document: SnapshotDocument
    chunks: SnapshotChunks
    def __init__(self, header: _Optional[_Union[SnapshotHeader, _Mapping]] = ..., document: _Optional[_Union[SnapshotDocument, _Mapping]] = ..., chunks: _Optional[_Union[SnapshotChunks, _Mapping]] = ...) -> None: ...

class IndexDocState(_message.Message):
    __slots__ = ("active", "floor", "highest", "fields")
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    FLOOR_FIELD_NUMBER: _ClassVar[int]
    HIGHEST_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    active: int
    floor: int
    highest: int
    fields: _events_pb2.DocumentFields
    def __init__(self, active: _Optional[int] = ..., floor: _Optional[int] = ..., highest: _Optional[int] = ..., fields: _Optional[_Union[_events_pb2.DocumentFields, _Mapping]] = ...) -> None: ...

class IndexPointer(_message.Message):
    __slots__ = ("active", "previous", "generations", "updated_unix_ms", "note", "last_number")
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    GENERATIONS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    LAST_NUMBER_FIELD_NUMBER: _ClassVar[int]
    active: int
    previous: int
    generations: _containers.RepeatedCompositeFieldContainer[GenerationRecord]
    updated_unix_ms: int
    note: str
    last_number: int
    def __init__(self, active: _Optional[int] = ..., previous: _Optional[int] = ..., generations: _Optional[_Iterable[_Union[GenerationRecord, _Mapping]]] = ..., updated_unix_ms: _Optional[int] = ..., note: _Optional[str] = ..., last_number: _Optional[int] = ...) -> None: ...

class GenerationInfo(_message.Message):
    __slots__ = ("record", "index_generation", "active", "previous", "index_watermark", "lag", "dense_points", "lexical_documents", "embedding_model_id", "documents", "missing_documents", "caught_up", "writer")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    INDEX_GENERATION_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    INDEX_WATERMARK_FIELD_NUMBER: _ClassVar[int]
    LAG_FIELD_NUMBER: _ClassVar[int]
    DENSE_POINTS_FIELD_NUMBER: _ClassVar[int]
    LEXICAL_DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    MISSING_DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    CAUGHT_UP_FIELD_NUMBER: _ClassVar[int]
    WRITER_FIELD_NUMBER: _ClassVar[int]
    record: GenerationRecord
    index_generation: str
    active: bool
    previous: bool
    index_watermark: int
    lag: int
    dense_points: int
    lexical_documents: int
    embedding_model_id: str
    documents: int
    missing_documents: int
    caught_up: bool
    writer: str
    def __init__(self, record: _Optional[_Union[GenerationRecord, _Mapping]] = ..., index_generation: _Optional[str] = ..., active: _Optional[bool] = ..., previous: _Optional[bool] = ..., index_watermark: _Optional[int] = ..., lag: _Optional[int] = ..., dense_points: _Optional[int] = ..., lexical_documents: _Optional[int] = ..., embedding_model_id: _Optional[str] = ..., documents: _Optional[int] = ..., missing_documents: _Optional[int] = ..., caught_up: _Optional[bool] = ..., writer: _Optional[str] = ...) -> None: ...

class ListGenerationsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListGenerationsResponse(_message.Message):
    __slots__ = ("generations", "pointer")
    GENERATIONS_FIELD_NUMBER: _ClassVar[int]
    POINTER_FIELD_NUMBER: _ClassVar[int]
    generations: _containers.RepeatedCompositeFieldContainer[GenerationInfo]
    pointer: IndexPointer
    def __init__(self, generations: _Optional[_Iterable[_Union[GenerationInfo, _Mapping]]] = ..., pointer: _Optional[_Union[IndexPointer, _Mapping]] = ...) -> None: ...

class CreateGenerationRequest(_message.Message):
    __slots__ = ("reason", "rechunk", "chunking", "embedding_model")
    REASON_FIELD_NUMBER: _ClassVar[int]
    RECHUNK_FIELD_NUMBER: _ClassVar[int]
    CHUNKING_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_FIELD_NUMBER: _ClassVar[int]
    reason: str
    rechunk: bool
    chunking: _types_pb2.Chunking
    embedding_model: str
    def __init__(self, reason: _Optional[str] = ..., rechunk: _Optional[bool] = ..., chunking: _Optional[_Union[_types_pb2.Chunking, _Mapping]] = ..., embedding_model: _Optional[str] = ...) -> None: ...

class CreateGenerationResponse(_message.Message):
    __slots__ = ("generation",)
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    generation: GenerationRecord
    def __init__(self, generation: _Optional[_Union[GenerationRecord, _Mapping]] = ...) -> None: ...

class PromoteGenerationRequest(_message.Message):
    __slots__ = ("number", "expected_active", "note", "force", "actor")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_ACTIVE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    number: int
    expected_active: int
    note: str
    force: bool
    actor: str
    def __init__(self, number: _Optional[int] = ..., expected_active: _Optional[int] = ..., note: _Optional[str] = ..., force: _Optional[bool] = ..., actor: _Optional[str] = ...) -> None: ...

class PromoteGenerationResponse(_message.Message):
    __slots__ = ("pointer",)
    POINTER_FIELD_NUMBER: _ClassVar[int]
    pointer: IndexPointer
    def __init__(self, pointer: _Optional[_Union[IndexPointer, _Mapping]] = ...) -> None: ...

class RollbackGenerationRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RollbackGenerationResponse(_message.Message):
    __slots__ = ("pointer",)
    POINTER_FIELD_NUMBER: _ClassVar[int]
    pointer: IndexPointer
    def __init__(self, pointer: _Optional[_Union[IndexPointer, _Mapping]] = ...) -> None: ...

class DropGenerationRequest(_message.Message):
    __slots__ = ("number",)
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    number: int
    def __init__(self, number: _Optional[int] = ...) -> None: ...

class DropGenerationResponse(_message.Message):
    __slots__ = ("pointer",)
    POINTER_FIELD_NUMBER: _ClassVar[int]
    pointer: IndexPointer
    def __init__(self, pointer: _Optional[_Union[IndexPointer, _Mapping]] = ...) -> None: ...
