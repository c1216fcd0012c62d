from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DocumentStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DOCUMENT_STATUS_UNSPECIFIED: _ClassVar[DocumentStatus]
    DOCUMENT_STATUS_QUEUED: _ClassVar[DocumentStatus]
    DOCUMENT_STATUS_PROCESSING: _ClassVar[DocumentStatus]
    DOCUMENT_STATUS_INDEXING: _ClassVar[DocumentStatus]
    DOCUMENT_STATUS_INDEXED: _ClassVar[DocumentStatus]
    DOCUMENT_STATUS_FAILED: _ClassVar[DocumentStatus]
    DOCUMENT_STATUS_DELETED: _ClassVar[DocumentStatus]

class JobStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATUS_UNSPECIFIED: _ClassVar[JobStatus]
    JOB_STATUS_QUEUED: _ClassVar[JobStatus]
    JOB_STATUS_RUNNING: _ClassVar[JobStatus]
    JOB_STATUS_INDEXING: _ClassVar[JobStatus]
    JOB_STATUS_DONE: _ClassVar[JobStatus]
    JOB_STATUS_FAILED: _ClassVar[JobStatus]
    JOB_STATUS_DEDUPLICATED: _ClassVar[JobStatus]

class AnswerStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ANSWER_STATUS_UNSPECIFIED: _ClassVar[AnswerStatus]
    ANSWER_STATUS_ANSWERED: _ClassVar[AnswerStatus]
    ANSWER_STATUS_PARTIAL: _ClassVar[AnswerStatus]
    ANSWER_STATUS_ABSTAINED: _ClassVar[AnswerStatus]

class AbstainReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ABSTAIN_REASON_UNSPECIFIED: _ClassVar[AbstainReason]
    ABSTAIN_REASON_NO_RELEVANT_SOURCES: _ClassVar[AbstainReason]
    ABSTAIN_REASON_LOW_RETRIEVAL_CONFIDENCE: _ClassVar[AbstainReason]
    ABSTAIN_REASON_UNSUPPORTED_BY_SOURCES: _ClassVar[AbstainReason]
    ABSTAIN_REASON_BUDGET_EXCEEDED: _ClassVar[AbstainReason]
    ABSTAIN_REASON_PROVIDER_ERROR: _ClassVar[AbstainReason]

class AnswerNote(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ANSWER_NOTE_UNSPECIFIED: _ClassVar[AnswerNote]
    ANSWER_NOTE_CONFLICTING_SOURCES: _ClassVar[AnswerNote]
DOCUMENT_STATUS_UNSPECIFIED: DocumentStatus
DOCUMENT_STATUS_QUEUED: DocumentStatus
DOCUMENT_STATUS_PROCESSING: DocumentStatus
DOCUMENT_STATUS_INDEXING: DocumentStatus
DOCUMENT_STATUS_INDEXED: DocumentStatus
DOCUMENT_STATUS_FAILED: DocumentStatus
DOCUMENT_STATUS_DELETED: DocumentStatus
JOB_STATUS_UNSPECIFIED: JobStatus
JOB_STATUS_QUEUED: JobStatus
JOB_STATUS_RUNNING: JobStatus
JOB_STATUS_INDEXING: JobStatus
JOB_STATUS_DONE: JobStatus
JOB_STATUS_FAILED: JobStatus
JOB_STATUS_DEDUPLICATED: JobStatus
ANSWER_STATUS_UNSPECIFIED: AnswerStatus
ANSWER_STATUS_ANSWERED: AnswerStatus
ANSWER_STATUS_PARTIAL: AnswerStatus
ANSWER_STATUS_ABSTAINED: AnswerStatus
ABSTAIN_REASON_UNSPECIFIED: AbstainReason
ABSTAIN_REASON_NO_RELEVANT_SOURCES: AbstainReason
ABSTAIN_REASON_LOW_RETRIEVAL_CONFIDENCE: AbstainReason
ABSTAIN_REASON_UNSUPPORTED_BY_SOURCES: AbstainReason
ABSTAIN_REASON_BUDGET_EXCEEDED: AbstainReason
ABSTAIN_REASON_PROVIDER_ERROR: AbstainReason
ANSWER_NOTE_UNSPECIFIED: AnswerNote
ANSWER_NOTE_CONFLICTING_SOURCES: AnswerNote

class DocumentVersion(_message.Message):
    __slots__ = ("version", "content_sha256", "size_bytes", "status", "chunk_count", "error", "job_id", "created_unix_ms", "warnings", "sealed_password", "inflated_bytes")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CONTENT_SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CHUNK_COUNT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    SEALED_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    INFLATED_BYTES_FIELD_NUMBER: _ClassVar[int]
    version: int
    content_sha256: str
    size_bytes: int
    status: DocumentStatus
    chunk_count: int
    error: str
    job_id: str
    created_unix_ms: int
    warnings: _containers.RepeatedScalarFieldContainer[str]
    sealed_password: bytes
    inflated_bytes: int
    def __init__(self, version: _Optional[int] = ..., content_sha256: _Optional[str] = ..., size_bytes: _Optional[int] = ..., status: _Optional[_Union[DocumentStatus, str]] = ..., chunk_count: _Optional[int] = ..., error: _Optional[str] = ..., job_id: _Optional[str] = ..., created_unix_ms: _Optional[int] = ..., warnings: _Optional[_Iterable[str]] = ..., sealed_password: _Optional[bytes] = ..., inflated_bytes: _Optional[int] = ...) -> None: ...

class DocumentRecord(_message.Message):
    __slots__ = ("tenant", "doc_id", "title", "source_name", "content_type", "acl", "metadata", "current_version", "indexed_version", "status", "versions", "updated_unix_ms", "metadata_revision")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TENANT_FIELD_NUMBER: _ClassVar[int]
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    ACL_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CURRENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    INDEXED_VERSION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    METADATA_REVISION_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    doc_id: str
    title: str
    source_name: str
    content_type: str
    acl: _containers.RepeatedScalarFieldContainer[str]
    metadata: _containers.ScalarMap[str, str]
    current_version: int
    indexed_version: int
    status: DocumentStatus
    versions: _containers.RepeatedCompositeFieldContainer[DocumentVersion]
    updated_unix_ms: int
    metadata_revision: int
    def __init__(self, tenant: _Optional[str] = ..., doc_id: _Optional[str] = ..., title: _Optional[str] = ..., source_name: _Optional[str] = ..., content_type: _Optional[str] = ..., acl: _Optional[_Iterable[str]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., current_version: _Optional[int] = ..., indexed_version: _Optional[int] = ..., status: _Optional[_Union[DocumentStatus, str]] = ..., versions: _Optional[_Iterable[_Union[DocumentVersion, _Mapping]]] = ..., updated_unix_ms: _Optional[int] = ..., metadata_revision: _Optional[int] = ...) -> None: ...

class JobRecord(_message.Message):
    __slots__ = ("job_id", "tenant", "doc_id", "version", "status", "chunks_total", "chunks_embedded", "error", "created_unix_ms", "updated_unix_ms", "embedding_tokens", "chunkings")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_EMBEDDED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CHUNKINGS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    tenant: str
    doc_id: str
    version: int
    status: JobStatus
    chunks_total: int
    chunks_embedded: int
    error: str
    created_unix_ms: int
    updated_unix_ms: int
    embedding_tokens: int
    chunkings: str
    def __init__(self, job_id: _Optional[str] = ..., tenant: _Optional[str] = ..., doc_id: _Optional[str] = ..., version: _Optional[int] = ..., status: _Optional[_Union[JobStatus, str]] = ..., chunks_total: _Optional[int] = ..., chunks_embedded: _Optional[int] = ..., error: _Optional[str] = ..., created_unix_ms: _Optional[int] = ..., updated_unix_ms: _Optional[int] = ..., embedding_tokens: _Optional[int] = ..., chunkings: _Optional[str] = ...) -> None: ...

class Chunking(_message.Message):
    __slots__ = ("target_tokens", "overlap_tokens", "chunker_version")
    TARGET_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CHUNKER_VERSION_FIELD_NUMBER: _ClassVar[int]
    target_tokens: int
    overlap_tokens: int
    chunker_version: str
    def __init__(self, target_tokens: _Optional[int] = ..., overlap_tokens: _Optional[int] = ..., chunker_version: _Optional[str] = ...) -> None: ...

class Chunk(_message.Message):
    __slots__ = ("chunk_id", "tenant", "doc_id", "version", "ordinal", "text", "title", "section", "acl", "char_start", "char_end", "chunker_version", "page_start", "page_end", "content_kind", "metadata", "language")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ORDINAL_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    SECTION_FIELD_NUMBER: _ClassVar[int]
    ACL_FIELD_NUMBER: _ClassVar[int]
    CHAR_START_FIELD_NUMBER: _ClassVar[int]
    CHAR_END_FIELD_NUMBER: _ClassVar[int]
    CHUNKER_VERSION_FIELD_NUMBER: _ClassVar[int]
    PAGE_START_FIELD_NUMBER: _ClassVar[int]
    PAGE_END_FIELD_NUMBER: _ClassVar[int]
    CONTENT_KIND_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    chunk_id: str
    tenant: str
    doc_id: str
    version: int
    ordinal: int
    text: str
    title: str
    section: str
    acl: _containers.RepeatedScalarFieldContainer[str]
    char_start: int
    char_end: int
    chunker_version: str
    page_start: int
    page_end: int
    content_kind: str
    metadata: _containers.ScalarMap[str, str]
    language: str
    def __init__(self, chunk_id: _Optional[str] = ..., tenant: _Optional[str] = ..., doc_id: _Optional[str] = ..., version: _Optional[int] = ..., ordinal: _Optional[int] = ..., text: _Optional[str] = ..., title: _Optional[str] = ..., section: _Optional[str] = ..., acl: _Optional[_Iterable[str]] = ..., char_start: _Optional[int] = ..., char_end: _Optional[int] = ..., chunker_version: _Optional[str] = ..., page_start: _Optional[int] = ..., page_end: _Optional[int] = ..., content_kind: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., language: _Optional[str] = ...) -> None: ...

class DateRange(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: str
    end: str
    def __init__(self, start: _Optional[str] = ..., end: _Optional[str] = ...) -> None: ...

class MetadataFilter(_message.Message):
    __slots__ = ("key", "any_of")
    KEY_FIELD_NUMBER: _ClassVar[int]
    ANY_OF_FIELD_NUMBER: _ClassVar[int]
    key: str
    any_of: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, key: _Optional[str] = ..., any_of: _Optional[_Iterable[str]] = ...) -> None: ...

class Hit(_message.Message):
    __slots__ = ("chunk", "score", "dense_score", "dense_rank", "lexical_score", "lexical_rank", "rank", "dense_matched", "lexical_matched", "rerank_score", "rerank_rank", "reranked")
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    DENSE_SCORE_FIELD_NUMBER: _ClassVar[int]
    DENSE_RANK_FIELD_NUMBER: _ClassVar[int]
    LEXICAL_SCORE_FIELD_NUMBER: _ClassVar[int]
    LEXICAL_RANK_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    DENSE_MATCHED_FIELD_NUMBER: _ClassVar[int]
    LEXICAL_MATCHED_FIELD_NUMBER: _ClassVar[int]
    RERANK_SCORE_FIELD_NUMBER: _ClassVar[int]
    RERANK_RANK_FIELD_NUMBER: _ClassVar[int]
    RERANKED_FIELD_NUMBER: _ClassVar[int]
    chunk: Chunk
    score: float
    dense_score: float
    dense_rank: int
    lexical_score: float
    lexical_rank: int
    rank: int
    dense_matched: bool
    lexical_matched: bool
    rerank_score: float
    rerank_rank: int
    reranked: bool
    def __init__(self, chunk: _Optional[_Union[Chunk, _Mapping]] = ..., score: _Optional[float] = ..., dense_score: _Optional[float] = ..., dense_rank: _Optional[int] = ..., lexical_score: _Optional[float] = ..., lexical_rank: _Optional[int] = ..., rank: _Optional[int] = ..., dense_matched: _Optional[bool] = ..., lexical_matched: _Optional[bool] = ..., rerank_score: _Optional[float] = ..., rerank_rank: _Optional[int] = ..., reranked: _Optional[bool] = ...) -> None: ...

class Citation(_message.Message):
    __slots__ = ("source_number", "chunk_id", "doc_id", "score", "answer_start", "answer_end", "quote")
    SOURCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    ANSWER_START_FIELD_NUMBER: _ClassVar[int]
    ANSWER_END_FIELD_NUMBER: _ClassVar[int]
    QUOTE_FIELD_NUMBER: _ClassVar[int]
    source_number: int
    chunk_id: str
    doc_id: str
    score: float
    answer_start: int
    answer_end: int
    quote: str
    def __init__(self, source_number: _Optional[int] = ..., chunk_id: _Optional[str] = ..., doc_id: _Optional[str] = ..., score: _Optional[float] = ..., answer_start: _Optional[int] = ..., answer_end: _Optional[int] = ..., quote: _Optional[str] = ...) -> None: ...

class ConflictingClaim(_message.Message):
    __slots__ = ("value", "source_number", "doc_id", "chunk_id", "quote", "document_date", "newest")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    QUOTE_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_DATE_FIELD_NUMBER: _ClassVar[int]
    NEWEST_FIELD_NUMBER: _ClassVar[int]
    value: str
    source_number: int
    doc_id: str
    chunk_id: str
    quote: str
    document_date: str
    newest: bool
    def __init__(self, value: _Optional[str] = ..., source_number: _Optional[int] = ..., doc_id: _Optional[str] = ..., chunk_id: _Optional[str] = ..., quote: _Optional[str] = ..., document_date: _Optional[str] = ..., newest: _Optional[bool] = ...) -> None: ...

class Conflict(_message.Message):
    __slots__ = ("subject", "kind", "claims")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CLAIMS_FIELD_NUMBER: _ClassVar[int]
    subject: str
    kind: str
    claims: _containers.RepeatedCompositeFieldContainer[ConflictingClaim]
    def __init__(self, subject: _Optional[str] = ..., kind: _Optional[str] = ..., claims: _Optional[_Iterable[_Union[ConflictingClaim, _Mapping]]] = ...) -> None: ...

class TokenUsage(_message.Message):
    __slots__ = ("prompt_tokens", "completion_tokens", "embedding_tokens", "cost_usd")
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    prompt_tokens: int
    completion_tokens: int
    embedding_tokens: int
    cost_usd: float
    def __init__(self, prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., embedding_tokens: _Optional[int] = ..., cost_usd: _Optional[float] = ...) -> None: ...

class GroundingReport(_message.Message):
    __slots__ = ("removed_citations", "dropped_sentences", "checked_sentences", "reattributed_citations")
    REMOVED_CITATIONS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_SENTENCES_FIELD_NUMBER: _ClassVar[int]
    CHECKED_SENTENCES_FIELD_NUMBER: _ClassVar[int]
    REATTRIBUTED_CITATIONS_FIELD_NUMBER: _ClassVar[int]
    removed_citations: int
    dropped_sentences: int
    checked_sentences: int
    reattributed_citations: int
    def __init__(self, removed_citations: _Optional[int] = ..., dropped_sentences: _Optional[int] = ..., checked_sentences: _Optional[int] = ..., reattributed_citations: _Optional[int] = ...) -> None: ...

class FusionParams(_message.Message):
    __slots__ = ("method", "rrf_k", "candidate_depth", "dense_weight", "max_per_document", "dense_depth", "lexical_depth", "decision", "rerank", "no_rerank")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    RRF_K_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    DENSE_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    MAX_PER_DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    DENSE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    LEXICAL_DEPTH_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    RERANK_FIELD_NUMBER: _ClassVar[int]
    NO_RERANK_FIELD_NUMBER: _ClassVar[int]
    method: str
    rrf_k: float
    candidate_depth: int
    dense_weight: float
    max_per_document: int
    dense_depth: int
    lexical_depth: int
    decision: FusionDecision
    rerank: RerankReport
    no_rerank: bool
    def __init__(self, method: _Optional[str] = ..., rrf_k: _Optional[float] = ..., candidate_depth: _Optional[int] = ..., dense_weight: _Optional[float] = ..., max_per_document: _Optional[int] = ..., dense_depth: _Optional[int] = ..., lexical_depth: _Optional[int] = ..., decision: _Optional[_Union[FusionDecision, _Mapping]] = ..., rerank: _Optional[_Union[RerankReport, _Mapping]] = ..., no_rerank: _Optional[bool] = ...) -> None: ...

class FusionDecision(_message.Message):
    __slots__ = ("method", "dense_weight", "rrf_k", "reason", "query_language", "analysed_as", "dense_informative", "dense_top", "dense_margin", "lexical_top", "lexical_margin", "overlap_at_10", "identifiers", "exact_chunk_ids")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    DENSE_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    RRF_K_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    QUERY_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    ANALYSED_AS_FIELD_NUMBER: _ClassVar[int]
    DENSE_INFORMATIVE_FIELD_NUMBER: _ClassVar[int]
    DENSE_TOP_FIELD_NUMBER: _ClassVar[int]
    DENSE_MARGIN_FIELD_NUMBER: _ClassVar[int]
    LEXICAL_TOP_FIELD_NUMBER: _ClassVar[int]
    LEXICAL_MARGIN_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_AT_10_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    EXACT_CHUNK_IDS_FIELD_NUMBER: _ClassVar[int]
    method: str
    dense_weight: float
    rrf_k: float
    reason: str
    query_language: str
    analysed_as: _containers.RepeatedScalarFieldContainer[str]
    dense_informative: bool
    dense_top: float
    dense_margin: float
    lexical_top: float
    lexical_margin: float
    overlap_at_10: float
    identifiers: _containers.RepeatedScalarFieldContainer[str]
    exact_chunk_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, method: _Optional[str] = ..., dense_weight: _Optional[float] = ..., rrf_k: _Optional[float] = ..., reason: _Optional[str] = ..., query_language: _Optional[str] = ..., analysed_as: _Optional[_Iterable[str]] = ..., dense_informative: _Optional[bool] = ..., dense_top: _Optional[float] = ..., dense_margin: _Optional[float] = ..., lexical_top: _Optional[float] = ..., lexical_margin: _Optional[float] = ..., overlap_at_10: _Optional[float] = ..., identifiers: _Optional[_Iterable[str]] = ..., exact_chunk_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class RerankReport(_message.Message):
    __slots__ = ("status", "model", "api", "candidates", "latency_ms", "error")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    API_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    status: str
    model: str
    api: str
    candidates: int
    latency_ms: float
    error: str
    def __init__(self, status: _Optional[str] = ..., model: _Optional[str] = ..., api: _Optional[str] = ..., candidates: _Optional[int] = ..., latency_ms: _Optional[float] = ..., error: _Optional[str] = ...) -> None: ...

class RetrievalSignals(_message.Message):
    __slots__ = ("best_dense", "agreement", "lexical_coverage", "answer_support", "dense_skipped")
    BEST_DENSE_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    LEXICAL_COVERAGE_FIELD_NUMBER: _ClassVar[int]
    ANSWER_SUPPORT_FIELD_NUMBER: _ClassVar[int]
    DENSE_SKIPPED_FIELD_NUMBER: _ClassVar[int]
    best_dense: float
    agreement: bool
    lexical_coverage: float
    answer_support: float
    dense_skipped: bool
    def __init__(self, best_dense: _Optional[float] = ..., agreement: _Optional[bool] = ..., lexical_coverage: _Optional[float] = ..., answer_support: _Optional[float] = ..., dense_skipped: _Optional[bool] = ...) -> None: ...

class Turn(_message.Message):
    __slots__ = ("question", "answer", "query", "cited_doc_ids")
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    CITED_DOC_IDS_FIELD_NUMBER: _ClassVar[int]
    question: str
    answer: str
    query: str
    cited_doc_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, question: _Optional[str] = ..., answer: _Optional[str] = ..., query: _Optional[str] = ..., cited_doc_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class Conversation(_message.Message):
    __slots__ = ("turns", "updated_unix_ms")
    TURNS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    turns: _containers.RepeatedCompositeFieldContainer[Turn]
    updated_unix_ms: int
    def __init__(self, turns: _Optional[_Iterable[_Union[Turn, _Mapping]]] = ..., updated_unix_ms: _Optional[int] = ...) -> None: ...

class AnswerManifest(_message.Message):
    __slots__ = ("query_id", "trace_id", "index_watermark", "embedding_model_id", "chunker_version", "prompt_template_version", "provider", "provider_model", "fusion", "top_k", "hits", "usage", "stage_latency_ms", "generation_parameters", "grounding", "index_generation", "rewritten_query", "condensed_by", "conversation_id", "history_turns", "notes", "conflicts", "signals")
    class StageLatencyMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class GenerationParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_WATERMARK_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    CHUNKER_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TEMPLATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_MODEL_FIELD_NUMBER: _ClassVar[int]
    FUSION_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    HITS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    STAGE_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    GENERATION_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    GROUNDING_FIELD_NUMBER: _ClassVar[int]
    INDEX_GENERATION_FIELD_NUMBER: _ClassVar[int]
    REWRITTEN_QUERY_FIELD_NUMBER: _ClassVar[int]
    CONDENSED_BY_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    HISTORY_TURNS_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    CONFLICTS_FIELD_NUMBER: _ClassVar[int]
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    trace_id: str
    index_watermark: int
    embedding_model_id: str
    chunker_version: str
    prompt_template_version: str
    provider: str
    provider_model: str
    fusion: FusionParams
    top_k: int
    hits: _containers.RepeatedCompositeFieldContainer[Hit]
    usage: TokenUsage
    stage_latency_ms: _containers.ScalarMap[str, float]
    generation_parameters: _containers.ScalarMap[str, str]
    grounding: GroundingReport
    index_generation: str
    rewritten_query: str
    condensed_by: str
    conversation_id: str
    history_turns: int
    notes: _containers.RepeatedScalarFieldContainer[AnswerNote]
    conflicts: _containers.RepeatedCompositeFieldContainer[Conflict]
    signals: RetrievalSignals
    def __init__(self, query_id: _Optional[str] = ..., trace_id: _Optional[str] = ..., index_watermark: _Optional[int] = ..., embedding_model_id: _Optional[str] = ..., chunker_version: _Optional[str] = ..., prompt_template_version: _Optional[str] = ..., provider: _Optional[str] = ..., provider_model: _Optional[str] = ..., fusion: _Optional[_Union[FusionParams, _Mapping]] = ..., top_k: _Optional[int] = ..., hits: _Optional[_Iterable[_Union[Hit, _Mapping]]] = ..., usage: _Optional[_Union[TokenUsage, _Mapping]] = ..., stage_latency_ms: _Optional[_Mapping[str, float]] = ..., generation_parameters: _Optional[_Mapping[str, str]] = ..., grounding: _Optional[_Union[GroundingReport, _Mapping]] = ..., index_generation: _Optional[str] = ..., rewritten_query: _Optional[str] = ..., condensed_by: _Optional[str] = ..., conversation_id: _Optional[str] = ..., history_turns: _Optional[int] = ..., notes: _Optional[_Iterable[_Union[AnswerNote, str]]] = ..., conflicts: _Optional[_Iterable[_Union[Conflict, _Mapping]]] = ..., signals: _Optional[_Union[RetrievalSignals, _Mapping]] = ...) -> None: ...
