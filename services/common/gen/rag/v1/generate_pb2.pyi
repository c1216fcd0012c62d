from rag.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GenerateRequest(_message.Message):
    __slots__ = ("query_id", "question", "hits", "max_answer_sentences", "min_retrieval_score", "tenant", "history", "rewritten_query", "condensed_by", "dense_skipped")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    HITS_FIELD_NUMBER: _ClassVar[int]
    MAX_ANSWER_SENTENCES_FIELD_NUMBER: _ClassVar[int]
    MIN_RETRIEVAL_SCORE_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    REWRITTEN_QUERY_FIELD_NUMBER: _ClassVar[int]
    CONDENSED_BY_FIELD_NUMBER: _ClassVar[int]
    DENSE_SKIPPED_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    question: str
    hits: _containers.RepeatedCompositeFieldContainer[_types_pb2.Hit]
    max_answer_sentences: int
    min_retrieval_score: float
    tenant: str
    history: _containers.RepeatedCompositeFieldContainer[_types_pb2.Turn]
    rewritten_query: str
    condensed_by: str
    dense_skipped: bool
    def __init__(self, query_id: _Optional[str] = ..., question: _Optional[str] = ..., hits: _Optional[_Iterable[_Union[_types_pb2.Hit, _Mapping]]] = ..., max_answer_sentences: _Optional[int] = ..., min_retrieval_score: _Optional[float] = ..., tenant: _Optional[str] = ..., history: _Optional[_Iterable[_Union[_types_pb2.Turn, _Mapping]]] = ..., rewritten_query: _Optional[str] = ..., condensed_by: _Optional[str] = ..., dense_skipped: _Optional[bool] = ...) -> None: ...

class GenerateFinal(_message.Message):
    __slots__ = ("answer", "status", "abstain_reason", "confidence", "citations", "usage", "provider", "provider_model", "prompt_template_version", "parameters", "grounding", "notes", "conflicts", "signals")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ABSTAIN_REASON_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TEMPLATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    GROUNDING_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    CONFLICTS_FIELD_NUMBER: _ClassVar[int]
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    answer: str
    status: _types_pb2.AnswerStatus
    abstain_reason: _types_pb2.AbstainReason
    confidence: float
    citations: _containers.RepeatedCompositeFieldContainer[_types_pb2.Citation]
    usage: _types_pb2.TokenUsage
    provider: str
    provider_model: str
    prompt_template_version: str
    parameters: _containers.ScalarMap[str, str]
    grounding: _types_pb2.GroundingReport
    notes: _containers.RepeatedScalarFieldContainer[_types_pb2.AnswerNote]
    conflicts: _containers.RepeatedCompositeFieldContainer[_types_pb2.Conflict]
    signals: _types_pb2.RetrievalSignals
    def __init__(self, answer: _Optional[str] = ..., status: _Optional[_Union[_types_pb2.AnswerStatus, str]] = ..., abstain_reason: _Optional[_Union[_types_pb2.AbstainReason, str]] = ..., confidence: _Optional[float] = ..., citations: _Optional[_Iterable[_Union[_types_pb2.Citation, _Mapping]]] = ..., usage: _Optional[_Union[_types_pb2.TokenUsage, _Mapping]] = ..., provider: _Optional[str] = ..., provider_model: _Optional[str] = ..., prompt_template_version: _Optional[str] = ..., parameters: _Optional[_Mapping[str, str]] = ..., grounding: _Optional[_Union[_types_pb2.GroundingReport, _Mapping]] = ..., notes: _Optional[_Iterable[_Union[_types_pb2.AnswerNote, str]]] = ..., conflicts: _Optional[_Iterable[_Union[_types_pb2.Conflict, _Mapping]]] = ..., signals: _Optional[_Union[_types_pb2.RetrievalSignals, _Mapping]] = ...) -> None: ...

class GenerateResponse(_message.Message):
    __slots__ = ("delta", "final")
    DELTA_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    delta: str
    final: GenerateFinal
    def __init__(self, delta: _Optional[str] = ..., final: _Optional[_Union[GenerateFinal, _Mapping]] = ...) -> None: ...

class CondenseRequest(_message.Message):
    __slots__ = ("history", "question", "tenant")
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    history: _containers.RepeatedCompositeFieldContainer[_types_pb2.Turn]
    question: str
    tenant: str
    def __init__(self, history: _Optional[_Iterable[_Union[_types_pb2.Turn, _Mapping]]] = ..., question: _Optional[str] = ..., tenant: _Optional[str] = ...) -> None: ...

class CondenseResponse(_message.Message):
    __slots__ = ("query", "method", "usage")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    query: str
    method: str
    usage: _types_pb2.TokenUsage
    def __init__(self, query: _Optional[str] = ..., method: _Optional[str] = ..., usage: _Optional[_Union[_types_pb2.TokenUsage, _Mapping]] = ...) -> None: ...
