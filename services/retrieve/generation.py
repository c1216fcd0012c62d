"""One index generation as this replica holds it (its engines, state and writer), the engines
it is made of, and where they live on this replica's disk."""

import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path

import grpc

from rag.v1 import retrieve_pb2
from services.common.config import RetrieveSettings
from services.retrieve.backends.dense_tiers import TieredDenseIndex
from services.retrieve.backends.opensearch_index import OpenSearchIndex
from services.retrieve.backends.qdrant_server import QdrantServerIndex
from services.retrieve.backends.tantivy_index import TantivyIndex
from services.retrieve.consumer import IndexConsumer
from services.retrieve.shared_state import SharedState
from services.retrieve.state import LocalState


class GenerationError(Exception):
    """A generation request that cannot be carried out, with the gRPC status it deserves."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Generation:
    record: retrieve_pb2.GenerationRecord
    dense: object
    lexical: object
    state: LocalState | SharedState
    consumer: IndexConsumer | None = None  # where this replica writes the generation
    stream_last: int | None = None  # the index stream's last sequence, as last seen by this replica
    ready_lag: int = 64
    filling: asyncio.Task | None = None  # re-embedding the active generation's chunks into this one

    @property
    def number(self) -> int:
        return self.record.number

    @property
    def model_id(self) -> str:
        """The embedding model of its vectors (and so of its queries): the one it was made with, or
        else the one its events brought."""
        return self.record.embedding_model_id or self.state.model_id

    @property
    def lag(self) -> int | None:
        if self.consumer is not None:
            return self.consumer.lag
        return None if self.stream_last is None else max(0, self.stream_last - self.state.watermark)

    @property
    def caught_up(self) -> bool:
        """Searches see what the stream says: it applied everything that existed when it was
        created and trails the stream by at most the readiness bound."""
        lag = self.lag
        return lag is not None and lag <= self.ready_lag and self.state.watermark >= self.record.replay_until

    def progress(self) -> str:
        return f"{self.state.watermark} of {max(self.record.replay_until, self.stream_last or 0)} events applied"


def suffixed(name: str, number: int, separator: str) -> str:
    """Generation 1 keeps the configured name, so an index built before generations stays in use."""
    return name if number == 1 else f"{name}{separator}g{number}"


def folder(index_dir: Path, number: int) -> Path:
    return index_dir if number == 1 else index_dir / f"g{number}"


def engines(
    s: RetrieveSettings, local: Path, record: retrieve_pb2.GenerationRecord, dimensions: dict, default_dimension: int
):
    """The dense and lexical engines of a generation: on servers when their URLs are set (shared
    by every replica), else embedded under `local`."""
    number = record.number
    dimension = dimensions.get(record.embedding_model_id, default_dimension)
    if s.dense_url:
        collection = suffixed(s.dense_collection, number, "_")
        dense = QdrantServerIndex(dimension, url=s.dense_url, collection=collection, api_key=s.dense_api_key)
    else:
        dense = TieredDenseIndex(
            local / "dense",
            dimension,
            s.dense_payload_in_memory,
            hot_points=s.dense_hot_points,
            seal_seconds=s.dense_seal_seconds,
            merge_factor=s.dense_merge_factor,
            max_shard_points=s.dense_max_shard_points,
        )
    if s.lexical_url:
        lexical = OpenSearchIndex(s.lexical_url, suffixed(s.lexical_index, number, "-"))
    else:
        lexical = TantivyIndex(local / "lexical")
    return dense, lexical


def remove_local(local: Path) -> None:
    """Everything a generation keeps on this replica's disk: engines and state."""
    for part in ("dense", "lexical", "state.db", "state.db-wal", "state.db-shm"):
        path = local / part
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
