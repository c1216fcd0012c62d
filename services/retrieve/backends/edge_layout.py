"""How Qdrant Edge shards are configured and how a tiered dense index lies on disk. Shared by the
index and by its build process, which must stay light: this module imports only qdrant_edge.

    <index>/tiers.json          the manifest: which shards make up the index (the only truth)
    <index>/shards/<name>/      one Qdrant Edge shard each; a folder the manifest does not name is
                                left over from a crash and is removed at open
    <index>/blank/              an empty shard with its payload indexes, copied to make a hot shard
                                (creating one costs Qdrant a second of fsyncs under the GIL)
    <index>/builds/<job>/       a build in progress: job.json, in/<name>/ (copies of the sealed
                                shards), out/ (the built shard), done.json once out/ is complete
"""

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import qdrant_edge as qe

# Filters on unindexed payload fields scan every point.
KEYWORD_FIELDS = ("tenant", "doc_id", "doc_key", "acl")
INTEGER_FIELDS = ("version", "date", "live")

MANIFEST = "tiers.json"
SHARDS = "shards"
BUILDS = "builds"
BLANK = "blank"
LAYOUT = 1

# Qdrant's own HNSW defaults, needed when a full-scan threshold is given.
HNSW_M = 16
HNSW_EF_CONSTRUCT = 100
# Qdrant's default, set explicitly so the index knows which shards get a graph: a segment whose
# vectors take less is searched by brute force, as cheap as a graph there (0.4 ms at 5k x 384).
INDEXING_THRESHOLD_KB = 10_000


@dataclass(frozen=True)
class ShardConfig:
    dimension: int
    # Payload read from disk for every candidate took a third of a search (measured at 30k points).
    payload_in_memory: bool = True
    indexing_threshold_kb: int = INDEXING_THRESHOLD_KB
    # Below this size (KB of vectors matching a filter) Qdrant searches without the graph;
    # None keeps its default (10,000 KB).
    full_scan_threshold_kb: int | None = None

    @property
    def graph_points(self) -> int:
        """Points from which Qdrant builds a graph for a segment (6,666 at 384 dimensions)."""
        return self.indexing_threshold_kb * 1024 // (4 * self.dimension)

    def edge(self) -> qe.EdgeConfig:
        hnsw = None
        if self.full_scan_threshold_kb is not None:
            hnsw = qe.HnswIndexConfig(
                m=HNSW_M, ef_construct=HNSW_EF_CONSTRUCT, full_scan_threshold=self.full_scan_threshold_kb
            )
        return qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=self.dimension, distance=qe.Distance.Cosine),
            on_disk_payload=not self.payload_in_memory,
            # One segment per shard (Qdrant's default is one per core): one graph to search.
            optimizers=qe.EdgeOptimizersConfig(indexing_threshold=self.indexing_threshold_kb, default_segment_number=1),
            hnsw_config=hnsw,
        )


def holds_shard(path: Path) -> bool:
    return (path / "edge_config.json").exists() or any(path.glob("segments*"))


def open_shard(path: Path, config: ShardConfig) -> qe.EdgeShard:
    """Load the shard at `path`, or create an empty one there; with its payload indexes."""
    if holds_shard(path):
        shard = qe.EdgeShard.load(str(path), config.edge())
    else:
        path.mkdir(parents=True, exist_ok=True)
        shard = qe.EdgeShard.create(str(path), config.edge())
    for field in KEYWORD_FIELDS:
        shard.update(qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Keyword))
    for field in INTEGER_FIELDS:
        shard.update(qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Integer))
    return shard


def copy_flushed_shard(source: Path, target: Path) -> None:
    """A copy of a shard that was just flushed and is not written during the copy. The write-ahead
    log is copied too: it carries the shard's operation counter, and Qdrant ignores an operation
    numbered below the version of the point it touches (a copy without its log numbered the
    changes replayed onto it from 1, and silently dropped them)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("temp_segments"))


@dataclass(frozen=True)
class SealedShard:
    name: str
    # Its points went through a build: Qdrant made the HNSW graph wherever a segment was past the
    # indexing threshold. An unbuilt shard is searched by brute force until its build is installed.
    built: bool


@dataclass(frozen=True)
class Manifest:
    hot: str  # the shard that takes upserts
    sealed: tuple[SealedShard, ...] = ()
    next_number: int = 1  # shard and job names are never reused

    @property
    def names(self) -> tuple[str, ...]:
        return (self.hot, *(s.name for s in self.sealed))

    def to_json(self) -> str:
        body = {"layout": LAYOUT, "hot": self.hot, "sealed": [asdict(s) for s in self.sealed]}
        return json.dumps(body | {"next_number": self.next_number}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "Manifest":
        body = json.loads(text)
        if body.get("layout") != LAYOUT:
            raise ValueError(f"dense index manifest of layout {body.get('layout')}, expected {LAYOUT}")
        sealed = tuple(SealedShard(s["name"], bool(s["built"])) for s in body["sealed"])
        return cls(body["hot"], sealed, int(body["next_number"]))


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` so that a crash leaves either the old or the new content, never a mix."""
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def read_manifest(root: Path) -> Manifest | None:
    path = root / MANIFEST
    return Manifest.from_json(path.read_text()) if path.exists() else None


def write_manifest(root: Path, manifest: Manifest) -> None:
    write_atomically(root / MANIFEST, manifest.to_json())
