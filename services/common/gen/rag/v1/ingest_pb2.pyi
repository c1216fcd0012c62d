from rag.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubmitRequest(_message.Message):
    __slots__ = ("tenant", "doc_id", "title", "source_name", "content_type", "acl", "metadata", "content", "password", "uploader")
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
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    UPLOADER_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    doc_id: str
    title: str
    source_name: str
    content_type: str
    acl: _containers.RepeatedScalarFieldContainer[str]
    metadata: _containers.ScalarMap[str, str]
    content: bytes
    password: str
    uploader: UploaderAccess
    def __init__(self, tenant: _Optional[str] = ..., doc_id: _Optional[str] = ..., title: _Optional[str] = ..., source_name: _Optional[str] = ..., content_type: _Optional[str] = ..., acl: _Optional[_Iterable[str]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., content: _Optional[bytes] = ..., password: _Optional[str] = ..., uploader: _Optional[_Union[UploaderAccess, _Mapping]] = ...) -> None: ...

class UploaderAccess(_message.Message):
    __slots__ = ("principals",)
    PRINCIPALS_FIELD_NUMBER: _ClassVar[int]
    principals: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, principals: _Optional[_Iterable[str]] = ...) -> None: ...

class SubmitStreamRequest(_message.Message):
    __slots__ = ("header", "data", "end")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    header: SubmitRequest
    data: bytes
    end: SubmitStreamEnd
    def __init__(self, header: _Optional[_Union[SubmitRequest, _Mapping]] = ..., data: _Optional[bytes] = ..., end: _Optional[_Union[SubmitStreamEnd, _Mapping]] = ...) -> None: ...

class SubmitStreamEnd(_message.Message):
    __slots__ = ("size_bytes",)
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    size_bytes: int
    def __init__(self, size_bytes: _Optional[int] = ...) -> None: ...

class SubmitStreamResponse(_message.Message):
    __slots__ = ("response",)
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    response: SubmitResponse
    def __init__(self, response: _Optional[_Union[SubmitResponse, _Mapping]] = ...) -> None: ...

class SubmitResponse(_message.Message):
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

class RetryIngestRequest(_message.Message):
    __slots__ = ("tenant", "doc_id")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    doc_id: str
    def __init__(self, tenant: _Optional[str] = ..., doc_id: _Optional[str] = ...) -> None: ...

class RetryIngestResponse(_message.Message):
    __slots__ = ("job_id", "version")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    version: int
    def __init__(self, job_id: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetIngestJobRequest(_message.Message):
    __slots__ = ("tenant", "job_id")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    job_id: str
    def __init__(self, tenant: _Optional[str] = ..., job_id: _Optional[str] = ...) -> None: ...

class GetIngestJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _types_pb2.JobRecord
    def __init__(self, job: _Optional[_Union[_types_pb2.JobRecord, _Mapping]] = ...) -> None: ...

class GetDocumentRecordRequest(_message.Message):
    __slots__ = ("tenant", "doc_id")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    doc_id: str
    def __init__(self, tenant: _Optional[str] = ..., doc_id: _Optional[str] = ...) -> None: ...

class GetDocumentRecordResponse(_message.Message):
    __slots__ = ("document",)
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    document: _types_pb2.DocumentRecord
    def __init__(self, document: _Optional[_Union[_types_pb2.DocumentRecord, _Mapping]] = ...) -> None: ...

class ListDocumentRecordsRequest(_message.Message):
    __slots__ = ("tenant", "include_deleted")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_DELETED_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    include_deleted: bool
    def __init__(self, tenant: _Optional[str] = ..., include_deleted: _Optional[bool] = ...) -> None: ...

class ListDocumentRecordsResponse(_message.Message):
    __slots__ = ("documents",)
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    documents: _containers.RepeatedCompositeFieldContainer[_types_pb2.DocumentRecord]
    def __init__(self, documents: _Optional[_Iterable[_Union[_types_pb2.DocumentRecord, _Mapping]]] = ...) -> None: ...

class RemoveDocumentRequest(_message.Message):
    __slots__ = ("tenant", "doc_id")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    doc_id: str
    def __init__(self, tenant: _Optional[str] = ..., doc_id: _Optional[str] = ...) -> None: ...

class RemoveDocumentResponse(_message.Message):
    __slots__ = ("document",)
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    document: _types_pb2.DocumentRecord
    def __init__(self, document: _Optional[_Union[_types_pb2.DocumentRecord, _Mapping]] = ...) -> None: ...

class RechunkRequest(_message.Message):
    __slots__ = ("generation", "chunking", "validate_only")
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    CHUNKING_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    generation: int
    chunking: _types_pb2.Chunking
    validate_only: bool
    def __init__(self, generation: _Optional[int] = ..., chunking: _Optional[_Union[_types_pb2.Chunking, _Mapping]] = ..., validate_only: _Optional[bool] = ...) -> None: ...

class RechunkResponse(_message.Message):
    __slots__ = ("documents_queued",)
    DOCUMENTS_QUEUED_FIELD_NUMBER: _ClassVar[int]
    documents_queued: int
    def __init__(self, documents_queued: _Optional[int] = ...) -> None: ...
