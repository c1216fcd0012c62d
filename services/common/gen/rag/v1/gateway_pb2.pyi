from rag.v1 import events_pb2 as _events_pb2
from rag.v1 import retrieve_pb2 as _retrieve_pb2
from rag.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_READER: _ClassVar[Role]
    ROLE_WRITER: _ClassVar[Role]
    ROLE_ADMIN: _ClassVar[Role]
    ROLE_OPERATOR: _ClassVar[Role]
ROLE_UNSPECIFIED: Role
ROLE_READER: Role
ROLE_WRITER: Role
ROLE_ADMIN: Role
ROLE_OPERATOR: Role

class DocumentHeader(_message.Message):
    __slots__ = ("doc_id", "title", "source_name", "content_type", "acl", "metadata", "password")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    ACL_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    doc_id: str
    title: str
    source_name: str
    content_type: str
    acl: _containers.RepeatedScalarFieldContainer[str]
    metadata: _containers.ScalarMap[str, str]
    password: str
    def __init__(self, doc_id: _Optional[str] = ..., title: _Optional[str] = ..., source_name: _Optional[str] = ..., content_type: _Optional[str] = ..., acl: _Optional[_Iterable[str]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., password: _Optional[str] = ...) -> None: ...

class IngestDocumentRequest(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: DocumentHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[DocumentHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class IngestDocumentResponse(_message.Message):
    __slots__ = ("job_id", "doc_id", "version", "deduplicated", "content_sha256", "metadata_updated")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DEDUPLICATED_FIELD_NUMBER: _ClassVar[int]
    CONTENT_SHA256_FIELD_NUMBER: _ClassVar[int]
    METADATA_UPDATED_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    doc_id: str
    version: int
    deduplicated: bool
    content_sha256: str
    metadata_updated: bool
    def __init__(self, job_id: _Optional[str] = ..., doc_id: _Optional[str] = ..., version: _Optional[int] = ..., deduplicated: _Optional[bool] = ..., content_sha256: _Optional[str] = ..., metadata_updated: _Optional[bool] = ...) -> None: ...

class RetryDocumentRequest(_message.Message):
    __slots__ = ("doc_id",)
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    doc_id: str
    def __init__(self, doc_id: _Optional[str] = ...) -> None: ...

class RetryDocumentResponse(_message.Message):
    __slots__ = ("job_id", "version")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    version: int
    def __init__(self, job_id: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class GetJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _types_pb2.JobRecord
    def __init__(self, job: _Optional[_Union[_types_pb2.JobRecord, _Mapping]] = ...) -> None: ...

class GetDocumentRequest(_message.Message):
    __slots__ = ("doc_id",)
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    doc_id: str
    def __init__(self, doc_id: _Optional[str] = ...) -> None: ...

class GetDocumentResponse(_message.Message):
    __slots__ = ("document",)
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    document: _types_pb2.DocumentRecord
    def __init__(self, document: _Optional[_Union[_types_pb2.DocumentRecord, _Mapping]] = ...) -> None: ...

class ListDocumentsRequest(_message.Message):
    __slots__ = ("include_deleted",)
    INCLUDE_DELETED_FIELD_NUMBER: _ClassVar[int]
    include_deleted: bool
    def __init__(self, include_deleted: _Optional[bool] = ...) -> None: ...

class ListDocumentsResponse(_message.Message):
    __slots__ = ("documents",)
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    documents: _containers.RepeatedCompositeFieldContainer[_types_pb2.DocumentRecord]
    def __init__(self, documents: _Optional[_Iterable[_Union[_types_pb2.DocumentRecord, _Mapping]]] = ...) -> None: ...

class DeleteDocumentRequest(_message.Message):
    __slots__ = ("doc_id",)
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    doc_id: str
    def __init__(self, doc_id: _Optional[str] = ...) -> None: ...

class DeleteDocumentResponse(_message.Message):
    __slots__ = ("document",)
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    document: _types_pb2.DocumentRecord
    def __init__(self, document: _Optional[_Union[_types_pb2.DocumentRecord, _Mapping]] = ...) -> None: ...

class SearchRequest(_message.Message):
    __slots__ = ("query", "top_k", "fusion", "doc_ids", "metadata_filters", "date_range", "generation")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    FUSION_FIELD_NUMBER: _ClassVar[int]
    DOC_IDS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FILTERS_FIELD_NUMBER: _ClassVar[int]
    DATE_RANGE_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    query: str
    top_k: int
    fusion: _types_pb2.FusionParams
    doc_ids: _containers.RepeatedScalarFieldContainer[str]
    metadata_filters: _containers.RepeatedCompositeFieldContainer[_types_pb2.MetadataFilter]
    date_range: _types_pb2.DateRange
    generation: int
    def __init__(self, query: _Optional[str] = ..., top_k: _Optional[int] = ..., fusion: _Optional[_Union[_types_pb2.FusionParams, _Mapping]] = ..., doc_ids: _Optional[_Iterable[str]] = ..., metadata_filters: _Optional[_Iterable[_Union[_types_pb2.MetadataFilter, _Mapping]]] = ..., date_range: _Optional[_Union[_types_pb2.DateRange, _Mapping]] = ..., generation: _Optional[int] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("query_id", "hits", "index_watermark", "embedding_model_id", "fusion", "index_generation", "generation", "dense_skipped")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    HITS_FIELD_NUMBER: _ClassVar[int]
    INDEX_WATERMARK_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    FUSION_FIELD_NUMBER: _ClassVar[int]
    INDEX_GENERATION_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    DENSE_SKIPPED_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    hits: _containers.RepeatedCompositeFieldContainer[_types_pb2.Hit]
    index_watermark: int
    embedding_model_id: str
    fusion: _types_pb2.FusionParams
    index_generation: str
    generation: int
    dense_skipped: bool
    def __init__(self, query_id: _Optional[str] = ..., hits: _Optional[_Iterable[_Union[_types_pb2.Hit, _Mapping]]] = ..., index_watermark: _Optional[int] = ..., embedding_model_id: _Optional[str] = ..., fusion: _Optional[_Union[_types_pb2.FusionParams, _Mapping]] = ..., index_generation: _Optional[str] = ..., generation: _Optional[int] = ..., dense_skipped: _Optional[bool] = ...) -> None: ...

class AskRequest(_message.Message):
    __slots__ = ("question", "top_k", "fusion", "no_cache", "min_retrieval_score", "history", "conversation_id")
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    FUSION_FIELD_NUMBER: _ClassVar[int]
    NO_CACHE_FIELD_NUMBER: _ClassVar[int]
    MIN_RETRIEVAL_SCORE_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    question: str
    top_k: int
    fusion: _types_pb2.FusionParams
    no_cache: bool
    min_retrieval_score: float
    history: _containers.RepeatedCompositeFieldContainer[_types_pb2.Turn]
    conversation_id: str
    def __init__(self, question: _Optional[str] = ..., top_k: _Optional[int] = ..., fusion: _Optional[_Union[_types_pb2.FusionParams, _Mapping]] = ..., no_cache: _Optional[bool] = ..., min_retrieval_score: _Optional[float] = ..., history: _Optional[_Iterable[_Union[_types_pb2.Turn, _Mapping]]] = ..., conversation_id: _Optional[str] = ...) -> None: ...

class AskFinal(_message.Message):
    __slots__ = ("answer", "status", "abstain_reason", "confidence", "citations", "manifest", "cached", "notes")
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ABSTAIN_REASON_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    answer: str
    status: _types_pb2.AnswerStatus
    abstain_reason: _types_pb2.AbstainReason
    confidence: float
    citations: _containers.RepeatedCompositeFieldContainer[_types_pb2.Citation]
    manifest: _types_pb2.AnswerManifest
    cached: bool
    notes: _containers.RepeatedScalarFieldContainer[_types_pb2.AnswerNote]
    def __init__(self, answer: _Optional[str] = ..., status: _Optional[_Union[_types_pb2.AnswerStatus, str]] = ..., abstain_reason: _Optional[_Union[_types_pb2.AbstainReason, str]] = ..., confidence: _Optional[float] = ..., citations: _Optional[_Iterable[_Union[_types_pb2.Citation, _Mapping]]] = ..., manifest: _Optional[_Union[_types_pb2.AnswerManifest, _Mapping]] = ..., cached: _Optional[bool] = ..., notes: _Optional[_Iterable[_Union[_types_pb2.AnswerNote, str]]] = ...) -> None: ...

class ReplayRequest(_message.Message):
    __slots__ = ("query_id",)
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    def __init__(self, query_id: _Optional[str] = ...) -> None: ...

class ReplayResponse(_message.Message):
    __slots__ = ("original", "replayed", "changes", "reasons")
    ORIGINAL_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    original: _events_pb2.QueryAudit
    replayed: AskFinal
    changes: _containers.RepeatedScalarFieldContainer[str]
    reasons: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, original: _Optional[_Union[_events_pb2.QueryAudit, _Mapping]] = ..., replayed: _Optional[_Union[AskFinal, _Mapping]] = ..., changes: _Optional[_Iterable[str]] = ..., reasons: _Optional[_Iterable[str]] = ...) -> None: ...

class FeedbackRequest(_message.Message):
    __slots__ = ("query_id", "rating", "comment")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    rating: int
    comment: str
    def __init__(self, query_id: _Optional[str] = ..., rating: _Optional[int] = ..., comment: _Optional[str] = ...) -> None: ...

class FeedbackResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AskResponse(_message.Message):
    __slots__ = ("delta", "final")
    DELTA_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    delta: str
    final: AskFinal
    def __init__(self, delta: _Optional[str] = ..., final: _Optional[_Union[AskFinal, _Mapping]] = ...) -> None: ...

class CreateApiKeyRequest(_message.Message):
    __slots__ = ("tenant", "principals", "role", "description", "ttl_seconds")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    PRINCIPALS_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    principals: _containers.RepeatedScalarFieldContainer[str]
    role: Role
    description: str
    ttl_seconds: int
    def __init__(self, tenant: _Optional[str] = ..., principals: _Optional[_Iterable[str]] = ..., role: _Optional[_Union[Role, str]] = ..., description: _Optional[str] = ..., ttl_seconds: _Optional[int] = ...) -> None: ...

class ListApiKeysRequest(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    def __init__(self, tenant: _Optional[str] = ...) -> None: ...

class ListApiKeysResponse(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[ApiKeyRecord]
    def __init__(self, keys: _Optional[_Iterable[_Union[ApiKeyRecord, _Mapping]]] = ...) -> None: ...

class RevokeApiKeyRequest(_message.Message):
    __slots__ = ("key_id",)
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    def __init__(self, key_id: _Optional[str] = ...) -> None: ...

class RevokeApiKeyResponse(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: ApiKeyRecord
    def __init__(self, key: _Optional[_Union[ApiKeyRecord, _Mapping]] = ...) -> None: ...

class UsageRecord(_message.Message):
    __slots__ = ("tenant", "period", "queries", "llm_tokens", "cost_usd", "embedding_tokens", "documents")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    LLM_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_TOKENS_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    period: str
    queries: int
    llm_tokens: int
    cost_usd: float
    embedding_tokens: int
    documents: int
    def __init__(self, tenant: _Optional[str] = ..., period: _Optional[str] = ..., queries: _Optional[int] = ..., llm_tokens: _Optional[int] = ..., cost_usd: _Optional[float] = ..., embedding_tokens: _Optional[int] = ..., documents: _Optional[int] = ...) -> None: ...

class GetUsageRequest(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    def __init__(self, tenant: _Optional[str] = ...) -> None: ...

class GetUsageResponse(_message.Message):
    __slots__ = ("today", "this_month", "limits_json")
    TODAY_FIELD_NUMBER: _ClassVar[int]
    THIS_MONTH_FIELD_NUMBER: _ClassVar[int]
    LIMITS_JSON_FIELD_NUMBER: _ClassVar[int]
    today: UsageRecord
    this_month: UsageRecord
    limits_json: str
    def __init__(self, today: _Optional[_Union[UsageRecord, _Mapping]] = ..., this_month: _Optional[_Union[UsageRecord, _Mapping]] = ..., limits_json: _Optional[str] = ...) -> None: ...

class CreateApiKeyResponse(_message.Message):
    __slots__ = ("api_key", "key_id", "tenant", "role")
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    api_key: str
    key_id: str
    tenant: str
    role: Role
    def __init__(self, api_key: _Optional[str] = ..., key_id: _Optional[str] = ..., tenant: _Optional[str] = ..., role: _Optional[_Union[Role, str]] = ...) -> None: ...

class ApiKeyRecord(_message.Message):
    __slots__ = ("key_id", "key_sha256", "tenant", "principals", "role", "description", "created_unix_ms", "revoked", "expires_unix_ms")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_SHA256_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    PRINCIPALS_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    key_sha256: str
    tenant: str
    principals: _containers.RepeatedScalarFieldContainer[str]
    role: Role
    description: str
    created_unix_ms: int
    revoked: bool
    expires_unix_ms: int
    def __init__(self, key_id: _Optional[str] = ..., key_sha256: _Optional[str] = ..., tenant: _Optional[str] = ..., principals: _Optional[_Iterable[str]] = ..., role: _Optional[_Union[Role, str]] = ..., description: _Optional[str] = ..., created_unix_ms: _Optional[int] = ..., revoked: _Optional[bool] = ..., expires_unix_ms: _Optional[int] = ...) -> None: ...

class ListIndexGenerationsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListIndexGenerationsResponse(_message.Message):
    __slots__ = ("generations", "pointer")
    GENERATIONS_FIELD_NUMBER: _ClassVar[int]
    POINTER_FIELD_NUMBER: _ClassVar[int]
    generations: _containers.RepeatedCompositeFieldContainer[_retrieve_pb2.GenerationInfo]
    pointer: _retrieve_pb2.IndexPointer
    def __init__(self, generations: _Optional[_Iterable[_Union[_retrieve_pb2.GenerationInfo, _Mapping]]] = ..., pointer: _Optional[_Union[_retrieve_pb2.IndexPointer, _Mapping]] = ...) -> None: ...

class RebuildIndexRequest(_message.Message):
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

class RebuildIndexResponse(_message.Message):
    __slots__ = ("generation", "documents_queued", "queued_later")
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_QUEUED_FIELD_NUMBER: _ClassVar[int]
    QUEUED_LATER_FIELD_NUMBER: _ClassVar[int]
    generation: _retrieve_pb2.GenerationRecord
    documents_queued: int
    queued_later: bool
    def __init__(self, generation: _Optional[_Union[_retrieve_pb2.GenerationRecord, _Mapping]] = ..., documents_queued: _Optional[int] = ..., queued_later: _Optional[bool] = ...) -> None: ...

class EvaluateIndexRequest(_message.Message):
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
    queries: _containers.RepeatedCompositeFieldContainer[_retrieve_pb2.JudgedQuery]
    modes: _containers.RepeatedScalarFieldContainer[str]
    tolerance: float
    def __init__(self, number: _Optional[int] = ..., dataset: _Optional[str] = ..., tenant: _Optional[str] = ..., principals: _Optional[_Iterable[str]] = ..., queries: _Optional[_Iterable[_Union[_retrieve_pb2.JudgedQuery, _Mapping]]] = ..., modes: _Optional[_Iterable[str]] = ..., tolerance: _Optional[float] = ...) -> None: ...

class EvaluateIndexResponse(_message.Message):
    __slots__ = ("verdict",)
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    verdict: _retrieve_pb2.Verdict
    def __init__(self, verdict: _Optional[_Union[_retrieve_pb2.Verdict, _Mapping]] = ...) -> None: ...

class PromoteIndexRequest(_message.Message):
    __slots__ = ("number", "expected_active", "note", "force")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_ACTIVE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    number: int
    expected_active: int
    note: str
    force: bool
    def __init__(self, number: _Optional[int] = ..., expected_active: _Optional[int] = ..., note: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class PromoteIndexResponse(_message.Message):
    __slots__ = ("pointer",)
    POINTER_FIELD_NUMBER: _ClassVar[int]
    pointer: _retrieve_pb2.IndexPointer
    def __init__(self, pointer: _Optional[_Union[_retrieve_pb2.IndexPointer, _Mapping]] = ...) -> None: ...

class RollbackIndexRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RollbackIndexResponse(_message.Message):
    __slots__ = ("pointer",)
    POINTER_FIELD_NUMBER: _ClassVar[int]
    pointer: _retrieve_pb2.IndexPointer
    def __init__(self, pointer: _Optional[_Union[_retrieve_pb2.IndexPointer, _Mapping]] = ...) -> None: ...

class DropIndexGenerationRequest(_message.Message):
    __slots__ = ("number",)
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    number: int
    def __init__(self, number: _Optional[int] = ...) -> None: ...

class DropIndexGenerationResponse(_message.Message):
    __slots__ = ("pointer",)
    POINTER_FIELD_NUMBER: _ClassVar[int]
    pointer: _retrieve_pb2.IndexPointer
    def __init__(self, pointer: _Optional[_Union[_retrieve_pb2.IndexPointer, _Mapping]] = ...) -> None: ...
