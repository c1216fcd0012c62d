"""Requests built from plain arguments, and documents read piece by piece for an upload; shared by
the sync and asyncio clients."""

import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from rag.v1 import gateway_pb2, types_pb2

PIECE = 1 << 20  # bytes per upload message: the gateway holds one piece of an upload at a time
TERMINAL_JOBS = frozenset({types_pb2.JOB_STATUS_DONE, types_pb2.JOB_STATUS_FAILED, types_pb2.JOB_STATUS_DEDUPLICATED})
# Deadlines of the methods that take longer than a query, unless the caller gives one.
LONGER = {"IngestDocument": 120.0, "Replay": 120.0, "EvaluateIndex": 600.0, "RebuildIndex": 120.0}


class Source:
    """What an upload reads: a file named by its path (opened afresh for each attempt), or a binary
    stream (read from where it stands; rewound for another attempt when it can seek, else sent once)."""

    def __init__(self, source: str | os.PathLike | BinaryIO) -> None:
        self.path = Path(source) if isinstance(source, str | os.PathLike) else None
        self.stream = None if self.path else source
        self.start = self.stream.tell() if self.stream is not None and self.stream.seekable() else None
        self.sent = False

    @property
    def repeatable(self) -> bool:
        return self.path is not None or self.start is not None

    @property
    def name(self) -> str:
        if self.path is not None:
            return self.path.name
        name = getattr(self.stream, "name", "")  # an open file's path; an in-memory stream has none
        return Path(name).name if isinstance(name, str) else ""

    def open(self) -> BinaryIO:
        """The bytes from the start, for one attempt."""
        if self.path is not None:
            return self.path.open("rb")
        if self.start is not None:
            self.stream.seek(self.start)
        elif self.sent:
            raise ValueError("the stream was sent once and cannot be read again")
        self.sent = True
        return _Borrowed(self.stream)


class _Borrowed:
    """The caller's stream, left open when an attempt is done with it."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def __enter__(self) -> BinaryIO:
        return self.stream

    def __exit__(self, *exc) -> None:
        return None


def pieces(stream: BinaryIO) -> Iterator[bytes]:
    while piece := stream.read(PIECE):
        yield piece


def header(
    source: Source,
    doc_id: str | None,
    title: str | None,
    acl: Iterable[str],
    metadata: Mapping[str, str] | None,
    content_type: str,
    source_name: str | None,
    password: str,
) -> gateway_pb2.DocumentHeader:
    """A file's doc_id, source name and title default to its name (and stem); a stream needs a doc_id."""
    name = source_name if source_name is not None else source.name
    doc_id = doc_id or name
    if not doc_id:
        raise ValueError("an upload from a stream needs a doc_id")
    return gateway_pb2.DocumentHeader(
        doc_id=doc_id,
        title=Path(name).stem if title is None else title,
        source_name=name,
        content_type=content_type,
        acl=list(acl),
        metadata=dict(metadata or {}),
        password=password,
    )


def search(
    query: str,
    top_k: int,
    fusion: types_pb2.FusionParams | None,
    doc_ids: Iterable[str],
    where: Mapping[str, Iterable[str]] | None,
    since: str,
    until: str,
    generation: int,
) -> gateway_pb2.SearchRequest:
    filters = [types_pb2.MetadataFilter(key=key, any_of=list(values)) for key, values in (where or {}).items()]
    return gateway_pb2.SearchRequest(
        query=query,
        top_k=top_k,
        fusion=fusion,
        doc_ids=list(doc_ids),
        metadata_filters=filters,
        date_range=types_pb2.DateRange(start=since, end=until),
        generation=generation,
    )


def ask(
    question: str,
    top_k: int,
    fusion: types_pb2.FusionParams | None,
    no_cache: bool,
    min_retrieval_score: float | None,
    conversation_id: str = "",
    history: Iterable[types_pb2.Turn] = (),
) -> gateway_pb2.AskRequest:
    """`conversation_id`: the turns ragmesh keeps; or `history`: earlier turns the caller keeps."""
    request = gateway_pb2.AskRequest(
        question=question,
        top_k=top_k,
        fusion=fusion,
        no_cache=no_cache,
        conversation_id=conversation_id,
        history=list(history),
    )
    if min_retrieval_score is not None:
        request.min_retrieval_score = min_retrieval_score
    return request
