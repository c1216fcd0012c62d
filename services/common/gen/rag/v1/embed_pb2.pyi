from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EmbedLane(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EMBED_LANE_UNSPECIFIED: _ClassVar[EmbedLane]
    EMBED_LANE_INTERACTIVE: _ClassVar[EmbedLane]
    EMBED_LANE_BULK: _ClassVar[EmbedLane]
EMBED_LANE_UNSPECIFIED: EmbedLane
EMBED_LANE_INTERACTIVE: EmbedLane
EMBED_LANE_BULK: EmbedLane

class Vector(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class EmbedRequest(_message.Message):
    __slots__ = ("texts", "lane", "tenant", "model_id")
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    LANE_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    texts: _containers.RepeatedScalarFieldContainer[str]
    lane: EmbedLane
    tenant: str
    model_id: str
    def __init__(self, texts: _Optional[_Iterable[str]] = ..., lane: _Optional[_Union[EmbedLane, str]] = ..., tenant: _Optional[str] = ..., model_id: _Optional[str] = ...) -> None: ...

class EmbedResponse(_message.Message):
    __slots__ = ("vectors", "model_id", "dimension", "tokens")
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    vectors: _containers.RepeatedCompositeFieldContainer[Vector]
    model_id: str
    dimension: int
    tokens: int
    def __init__(self, vectors: _Optional[_Iterable[_Union[Vector, _Mapping]]] = ..., model_id: _Optional[str] = ..., dimension: _Optional[int] = ..., tokens: _Optional[int] = ...) -> None: ...

class GetModelInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetModelInfoResponse(_message.Message):
    __slots__ = ("model_id", "dimension", "max_tokens", "models")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    dimension: int
    max_tokens: int
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    def __init__(self, model_id: _Optional[str] = ..., dimension: _Optional[int] = ..., max_tokens: _Optional[int] = ..., models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("model_id", "dimension", "max_tokens", "name")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    dimension: int
    max_tokens: int
    name: str
    def __init__(self, model_id: _Optional[str] = ..., dimension: _Optional[int] = ..., max_tokens: _Optional[int] = ..., name: _Optional[str] = ...) -> None: ...
