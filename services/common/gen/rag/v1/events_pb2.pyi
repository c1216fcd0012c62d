from rag.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IngestJob(_message.Message):
    __slots__ = ("job_id", "tenant", "doc_id", "version", "content_sha256", "object_name", "content_type", "source_name", "title", "acl", "metadata", "rechunk_generation", "chunking", "content", "size_bytes", "sealed_password", "records")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CONTENT_SHA256_FIELD_NUMBER: _ClassVar[int]
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_NAME_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    ACL_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    RECHUNK_GENERATION_FIELD_NUMBER: _ClassVar[int]
    CHUNKING_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SEALED_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    tenant: str
    doc_id: str
    version: int
    content_sha256: str
    object_name: str
    content_type: str
    source_name: str
    title: str
    acl: _containers.RepeatedScalarFieldContainer[str]
    metadata: _containers.ScalarMap[str, str]
    rechunk_generation: int
    chunking: _types_pb2.Chunking
    content: bytes
    size_bytes: int
    sealed_password: bytes
    records: IngestRecords
    def __init__(self, job_id: _Optional[str] = ..., tenant: _Optional[str] = ..., doc_id: _Optional[str] = ..., version: _Optional[int] = ..., content_sha256: _Optional[str] = ..., object_name: _Optional[str] = ..., content_type: _Optional[str] = ..., source_name: _Optional[str] = ..., title: _Optional[str] = ..., acl: _Optional[_Iterable[str]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., rechunk_generation: _Optional[int] = ..., chunking: _Optional[_Union[_types_pb2.Chunking, _Mapping]] = ..., content: _Optional[bytes] = ..., size_bytes: _Optional[int] = ..., sealed_password: _Optional[bytes] = ..., records: _Optional[_Union[IngestRecords, _Mapping]] = ...) -> None: ...

class IngestRecords(_message.Message):
    __slots__ = ("job", "job_revision", "document", "document_revision")
    JOB_FIELD_NUMBER: _ClassVar[int]
    JOB_REVISION_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_REVISION_FIELD_NUMBER: _ClassVar[int]
    job: _types_pb2.JobRecord
    job_revision: int
    document: _types_pb2.DocumentRecord
    document_revision: int
    def __init__(self, job: _Optional[_Union[_types_pb2.JobRecord, _Mapping]] = ..., job_revision: _Optional[int] = ..., document: _Optional[_Union[_types_pb2.DocumentRecord, _Mapping]] = ..., document_revision: _Optional[int] = ...) -> None: ...

class DocumentFields(_message.Message):
    __slots__ = ("title", "acl", "metadata", "revision")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TITLE_FIELD_NUMBER: _ClassVar[int]
    ACL_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    title: str
    acl: _containers.RepeatedScalarFieldContainer[str]
    metadata: _containers.ScalarMap[str, str]
    revision: int
    def __init__(self, title: _Optional[str] = ..., acl: _Optional[_Iterable[str]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., revision: _Optional[int] = ...) -> None: ...

class ChunkUpserts(_message.Message):
    __slots__ = ("chunks", "vectors", "dimension", "version", "fields", "activate")
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    ACTIVATE_FIELD_NUMBER: _ClassVar[int]
    chunks: _containers.RepeatedCompositeFieldContainer[_types_pb2.Chunk]
    vectors: _containers.RepeatedScalarFieldContainer[float]
    dimension: int
    version: int
    fields: DocumentFields
    activate: ActivateVersion
    def __init__(self, chunks: _Optional[_Iterable[_Union[_types_pb2.Chunk, _Mapping]]] = ..., vectors: _Optional[_Iterable[float]] = ..., dimension: _Optional[int] = ..., version: _Optional[int] = ..., fields: _Optional[_Union[DocumentFields, _Mapping]] = ..., activate: _Optional[_Union[ActivateVersion, _Mapping]] = ...) -> None: ...

class ActivateVersion(_message.Message):
    __slots__ = ("version", "chunk_count", "rechunk", "records")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CHUNK_COUNT_FIELD_NUMBER: _ClassVar[int]
    RECHUNK_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    version: int
    chunk_count: int
    rechunk: bool
    records: IngestRecords
    def __init__(self, version: _Optional[int] = ..., chunk_count: _Optional[int] = ..., rechunk: _Optional[bool] = ..., records: _Optional[_Union[IngestRecords, _Mapping]] = ...) -> None: ...

class RemoveDocumentChunks(_message.Message):
    __slots__ = ("through_version",)
    THROUGH_VERSION_FIELD_NUMBER: _ClassVar[int]
    through_version: int
    def __init__(self, through_version: _Optional[int] = ...) -> None: ...

class UpdateMetadata(_message.Message):
    __slots__ = ("title", "acl", "metadata", "revision")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TITLE_FIELD_NUMBER: _ClassVar[int]
    ACL_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    title: str
    acl: _containers.RepeatedScalarFieldContainer[str]
    metadata: _containers.ScalarMap[str, str]
    revision: int
    def __init__(self, title: _Optional[str] = ..., acl: _Optional[_Iterable[str]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., revision: _Optional[int] = ...) -> None: ...

class IndexBatch(_message.Message):
    __slots__ = ("tenant", "doc_id", "embedding_model_id", "job_id", "upserts", "activate", "remove", "update_metadata", "chunking", "configured_chunking")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    UPSERTS_FIELD_NUMBER: _ClassVar[int]
    ACTIVATE_FIELD_NUMBER: _ClassVar[int]
    REMOVE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_METADATA_FIELD_NUMBER: _ClassVar[int]
    CHUNKING_FIELD_NUMBER: _ClassVar[int]
    CONFIGURED_CHUNKING_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    doc_id: str
    embedding_model_id: str
    job_id: str
    upserts: ChunkUpserts
    activate: ActivateVersion
    remove: RemoveDocumentChunks
    update_metadata: UpdateMetadata
    chunking: _types_pb2.Chunking
    configured_chunking: bool
    def __init__(self, tenant: _Optional[str] = ..., doc_id: _Optional[str] = ..., embedding_model_id: _Optional[str] = ..., job_id: _Optional[str] = ..., upserts: _Optional[_Union[ChunkUpserts, _Mapping]] = ..., activate: _Optional[_Union[ActivateVersion, _Mapping]] = ..., remove: _Optional[_Union[RemoveDocumentChunks, _Mapping]] = ..., update_metadata: _Optional[_Union[UpdateMetadata, _Mapping]] = ..., chunking: _Optional[_Union[_types_pb2.Chunking, _Mapping]] = ..., configured_chunking: _Optional[bool] = ...) -> None: ...

class DocumentIndexed(_message.Message):
    __slots__ = ("tenant", "doc_id", "version", "chunk_count", "index_watermark", "job_id", "records")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CHUNK_COUNT_FIELD_NUMBER: _ClassVar[int]
    INDEX_WATERMARK_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    doc_id: str
    version: int
    chunk_count: int
    index_watermark: int
    job_id: str
    records: IngestRecords
    def __init__(self, tenant: _Optional[str] = ..., doc_id: _Optional[str] = ..., version: _Optional[int] = ..., chunk_count: _Optional[int] = ..., index_watermark: _Optional[int] = ..., job_id: _Optional[str] = ..., records: _Optional[_Union[IngestRecords, _Mapping]] = ...) -> None: ...

class DocumentFailed(_message.Message):
    __slots__ = ("tenant", "doc_id", "version", "job_id", "error", "deliveries")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    doc_id: str
    version: int
    job_id: str
    error: str
    deliveries: int
    def __init__(self, tenant: _Optional[str] = ..., doc_id: _Optional[str] = ..., version: _Optional[int] = ..., job_id: _Optional[str] = ..., error: _Optional[str] = ..., deliveries: _Optional[int] = ...) -> None: ...

class QueryAudit(_message.Message):
    __slots__ = ("query_id", "tenant", "key_id", "question", "method", "manifest", "answer", "status", "abstain_reason", "confidence", "latency_ms", "created_unix_ms", "principals", "cached", "feedback_rating", "feedback_comment")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ABSTAIN_REASON_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    PRINCIPALS_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_RATING_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_COMMENT_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    tenant: str
    key_id: str
    question: str
    method: str
    manifest: _types_pb2.AnswerManifest
    answer: str
    status: _types_pb2.AnswerStatus
    abstain_reason: _types_pb2.AbstainReason
    confidence: float
    latency_ms: float
    created_unix_ms: int
    principals: _containers.RepeatedScalarFieldContainer[str]
    cached: bool
    feedback_rating: int
    feedback_comment: str
    def __init__(self, query_id: _Optional[str] = ..., tenant: _Optional[str] = ..., key_id: _Optional[str] = ..., question: _Optional[str] = ..., method: _Optional[str] = ..., manifest: _Optional[_Union[_types_pb2.AnswerManifest, _Mapping]] = ..., answer: _Optional[str] = ..., status: _Optional[_Union[_types_pb2.AnswerStatus, str]] = ..., abstain_reason: _Optional[_Union[_types_pb2.AbstainReason, str]] = ..., confidence: _Optional[float] = ..., latency_ms: _Optional[float] = ..., created_unix_ms: _Optional[int] = ..., principals: _Optional[_Iterable[str]] = ..., cached: _Optional[bool] = ..., feedback_rating: _Optional[int] = ..., feedback_comment: _Optional[str] = ...) -> None: ...
