from rag.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RetrieveRequest(_message.Message):
    __slots__ = ("tenant", "principals", "query", "top_k", "fusion", "doc_ids", "metadata_filters", "date_range")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    PRINCIPALS_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    FUSION_FIELD_NUMBER: _ClassVar[int]
    DOC_IDS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FILTERS_FIELD_NUMBER: _ClassVar[int]
    DATE_RANGE_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    principals: _containers.RepeatedScalarFieldContainer[str]
    query: str
    top_k: int
    fusion: _types_pb2.FusionParams
    doc_ids: _containers.RepeatedScalarFieldContainer[str]
    metadata_filters: _containers.RepeatedCompositeFieldContainer[_types_pb2.MetadataFilter]
    date_range: _types_pb2.DateRange
    def __init__(self, tenant: _Optional[str] = ..., principals: _Optional[_Iterable[str]] = ..., query: _Optional[str] = ..., top_k: _Optional[int] = ..., fusion: _Optional[_Union[_types_pb2.FusionParams, _Mapping]] = ..., doc_ids: _Optional[_Iterable[str]] = ..., metadata_filters: _Optional[_Iterable[_Union[_types_pb2.MetadataFilter, _Mapping]]] = ..., date_range: _Optional[_Union[_types_pb2.DateRange, _Mapping]] = ...) -> None: ...

class RetrieveResponse(_message.Message):
    __slots__ = ("hits", "index_watermark", "embedding_model_id", "fusion", "query_tokens", "index_generation")
    HITS_FIELD_NUMBER: _ClassVar[int]
    INDEX_WATERMARK_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    FUSION_FIELD_NUMBER: _ClassVar[int]
    QUERY_TOKENS_FIELD_NUMBER: _ClassVar[int]
    INDEX_GENERATION_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[_types_pb2.Hit]
    index_watermark: int
    embedding_model_id: str
    fusion: _types_pb2.FusionParams
    query_tokens: int
    index_generation: str
    def __init__(self, hits: _Optional[_Iterable[_Union[_types_pb2.Hit, _Mapping]]] = ..., index_watermark: _Optional[int] = ..., embedding_model_id: _Optional[str] = ..., fusion: _Optional[_Union[_types_pb2.FusionParams, _Mapping]] = ..., query_tokens: _Optional[int] = ..., index_generation: _Optional[str] = ...) -> None: ...

class GetIndexInfoRequest(_message.Message):
    __slots__ = ("tenant", "doc_id")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    doc_id: str
    def __init__(self, tenant: _Optional[str] = ..., doc_id: _Optional[str] = ...) -> None: ...

class GetIndexInfoResponse(_message.Message):
    __slots__ = ("index_watermark", "embedding_model_id", "dense_points", "lexical_documents", "index_generation")
    INDEX_WATERMARK_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DENSE_POINTS_FIELD_NUMBER: _ClassVar[int]
    LEXICAL_DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    INDEX_GENERATION_FIELD_NUMBER: _ClassVar[int]
    index_watermark: int
    embedding_model_id: str
    dense_points: int
    lexical_documents: int
    index_generation: str
    def __init__(self, index_watermark: _Optional[int] = ..., embedding_model_id: _Optional[str] = ..., dense_points: _Optional[int] = ..., lexical_documents: _Optional[int] = ..., index_generation: _Optional[str] = ...) -> None: ...
