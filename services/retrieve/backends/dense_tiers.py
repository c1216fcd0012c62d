"""Dense index on a set of Qdrant Edge shards whose HNSW graphs are built in another process.

Qdrant Edge builds a graph only in `optimize()`, which holds the GIL throughout (seconds per 10k
points): built in the serving process it stalls every search, and left unbuilt every point added
while serving is searched by brute force. So the index is a set of shards (shard_set.py, on disk
as edge_layout.py describes):

- one *hot* shard takes every upsert and is searched by brute force; it is sealed when it holds
  `hot_points` points or its oldest point is `seal_seconds` old, so that cost stays bounded;
- *sealed* shards take no upserts, only deletes and field changes. A build process
  (hnsw_builder.py) optimises a copy of each newly sealed shard large enough for Qdrant to give
  it a graph (smaller ones are searched by brute force either way), and merges sealed shards
  into larger ones (tier_policy.py), so the number of shards stays logarithmic in the points;
- while a build runs the originals keep answering searches and taking changes; every change made
  to them is logged and replayed onto the built shard, which then replaces them in the manifest
  (one atomic file write) and in the set searches use (one reference change);
- a chunk upserted again while a copy lives in a sealed shard is written to the hot shard and
  deleted from the sealed one, so each chunk id is stored once;
- searches query every shard with the same filter and merge the top hits by score (cosine scores
  of different shards compare); every other read covers every shard.

Opening never builds: shards open as they are, and builds that were interrupted (the folder of a
job is discarded at open) are redone in the background. A crash at any point leaves the set the
manifest names, which holds every chunk exactly once; a failed build is logged and retried later,
and the originals stay until its result is installed.

Background work: `open()` starts a daemon thread that calls `maintain()` every
`maintain_seconds` (0: no thread; the owner calls `maintain()` or `settle()` itself); `close()`
stops it and kills a running build (redone at the next open). Every method is safe to call from
any thread: writes (upsert, rewrite, retire) are serialised with each other and with the short
maintenance steps that change the set (a seal, the copy that starts a build, the replay and swap
that install one); searches and other reads never wait for them. A read that races an upsert
moving a chunk out of a sealed shard may meet it twice: search, fetch, chunks_of and export
keep one copy per id, `count` may count it twice until the upsert returns.
"""

import logging
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import qdrant_edge as qe
from prometheus_client import Counter as MetricCounter
from prometheus_client import Histogram

from rag.v1 import types_pb2
from services.retrieve.backends.base import ChunkWrite, DocFields, EngineHit, SearchScope, pending_ids
from services.retrieve.backends.build_jobs import BuildJob
from services.retrieve.backends.edge_layout import BUILDS, INDEXING_THRESHOLD_KB, ShardConfig
from services.retrieve.backends.qdrant_edge import (
    QdrantEdgeIndex,
    retire_operations,
    rewrite_operations,
    search_request,
)
from services.retrieve.backends.shard_set import ShardSet
from services.retrieve.backends.tier_policy import merge_plan, seal_due

log = logging.getLogger(__name__)

BUILDS_DONE = MetricCounter(
    "ragmesh_dense_builds_total", "Dense shard builds by kind and outcome.", ["kind", "outcome"]
)
BUILD_SECONDS = Histogram(
    "ragmesh_dense_build_seconds", "Dense shard builds, from copy to install.", buckets=(1, 5, 15, 60, 300, 1200)
)

HOT_POINTS = 5_000
SEAL_SECONDS = 300.0
MERGE_FACTOR = 2
MAX_SHARD_POINTS = 200_000
RETRY_SECONDS = 30.0
MAX_RETRY_SECONDS = 600.0


@dataclass(frozen=True)
class ShardStats:
    name: str
    hot: bool
    built: bool
    building: bool
    points: int
    indexed: int  # points in an HNSW graph


def merge_hits(hits: list[EngineHit], limit: int) -> list[EngineHit]:
    """The best `limit` hits of several shards, one per chunk id."""
    best: dict[str, EngineHit] = {}
    for hit in sorted(hits, key=lambda h: -h.score):
        best.setdefault(hit.chunk_id, hit)
    return list(best.values())[:limit]


class TieredDenseIndex:
    def __init__(
        self,
        path: Path,
        dimension: int,
        payload_in_memory: bool = True,
        *,
        hot_points: int = HOT_POINTS,
        seal_seconds: float = SEAL_SECONDS,
        merge_factor: int = MERGE_FACTOR,
        max_shard_points: int = MAX_SHARD_POINTS,
        maintain_seconds: float = 1.0,
        retry_seconds: float = RETRY_SECONDS,
        indexing_threshold_kb: int = INDEXING_THRESHOLD_KB,
        full_scan_threshold_kb: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.dimension = dimension
        self.config = ShardConfig(dimension, payload_in_memory, indexing_threshold_kb, full_scan_threshold_kb)
        self.hot_points, self.seal_seconds, self.merge_factor = hot_points, seal_seconds, merge_factor
        self.max_shard_points = max_shard_points
        self.maintain_seconds, self.retry_seconds = maintain_seconds, retry_seconds
        self._set = ShardSet(self.path, self.config)
        self._write = threading.RLock()  # writes, and the maintenance steps that change the set
        self._maintaining = threading.Lock()
        self._jobs: dict[str, BuildJob] = {}  # by kind: at most one fresh build and one merge
        self._failures: Counter[str] = Counter()
        self._retry_at: dict[str, float] = {}
        self._hot_since: float | None = None
        self._open = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        self._set.open()
        self._open = True
        self._hot_since = time.monotonic() if self._set.view.hot.count() else None
        self._stop.clear()
        if self.maintain_seconds > 0:
            self._thread = threading.Thread(target=self._run, name="dense-tiers", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._maintaining, self._write:
            if not self._open:
                return
            for job in self._jobs.values():
                job.discard()
            self._jobs.clear()
            self._set.close()
            self._open = False

    def destroy(self) -> None:
        self.close()
        shutil.rmtree(self.path, ignore_errors=True)

    # -- writes ----------------------------------------------------------------------------------

    def _apply(self, shard: QdrantEdgeIndex, operation) -> None:
        """A change of a sealed shard, logged for the build that has it as an input."""
        shard.apply(operation)
        for job in self._jobs.values():
            if shard.path.name in job.inputs:
                job.log.append(operation)

    def upsert(self, writes: list[ChunkWrite]) -> None:
        if not writes:
            return
        chunk_ids = [w.chunk.chunk_id for w in writes]
        pending = pending_ids(writes)
        with self._write:
            view = self._set.view
            stored = view.hot.stored_liveness(pending) if pending else {}
            copies: dict[QdrantEdgeIndex, list[str]] = {}
            for shard in view.sealed:
                found = shard.stored_liveness(chunk_ids)
                if found:
                    copies[shard] = list(found)
                    for chunk_id, live in found.items():
                        stored[chunk_id] = stored.get(chunk_id, False) or live
            keep_live = {chunk_id for chunk_id, live in stored.items() if live}
            view.hot.apply(qe.UpdateOperation.upsert_points(view.hot.points(writes, keep_live)))
            # The hot copy first: a search in between meets two copies (and keeps one), never none.
            for shard, found in copies.items():
                self._apply(shard, qe.UpdateOperation.delete_points(found))
            if self._hot_since is None:
                self._hot_since = time.monotonic()

    def _apply_everywhere(self, operations: list) -> None:
        with self._write:
            view = self._set.view
            for operation in operations:
                view.hot.apply(operation)
                for shard in view.sealed:
                    self._apply(shard, operation)

    def rewrite(self, tenant: str, doc_id: str, fields: DocFields | None, live_version: int) -> None:
        self._apply_everywhere(rewrite_operations(tenant, doc_id, fields, live_version))

    def retire(self, tenant: str, doc_id: str, below_version: int) -> None:
        self._apply_everywhere(retire_operations(tenant, doc_id, below_version))

    def commit(self) -> None:
        """Durable through each shard's WAL already."""

    # -- reads -------------------------------------------------------------------------------------

    def search(self, vector: list[float], scope: SearchScope, limit: int) -> list[EngineHit]:
        request = search_request(vector, scope, limit)
        with self._set.reading() as view:
            hits = [hit for shard in view.shards for hit in shard.query(request)]
        return merge_hits(hits, limit)

    def fetch(self, chunk_ids: list[str]) -> dict[str, types_pb2.Chunk]:
        found: dict[str, types_pb2.Chunk] = {}
        with self._set.reading() as view:
            for shard in view.shards:
                missing = [c for c in chunk_ids if c not in found]
                if not missing:
                    break
                found |= shard.fetch(missing)
        return found

    def chunks_of(self, tenant: str, doc_id: str) -> list[tuple[str, int, bool]]:
        chunks: dict[str, tuple[str, int, bool]] = {}
        with self._set.reading() as view:
            for shard in view.shards:
                for chunk in shard.chunks_of(tenant, doc_id):
                    chunks.setdefault(chunk[0], chunk)
        return list(chunks.values())

    def count(self, tenant: str | None = None, doc_id: str | None = None) -> int:
        with self._set.reading() as view:
            return sum(shard.count(tenant, doc_id) for shard in view.shards)

    def export(self, batch: int = 512) -> Iterator[list[tuple[types_pb2.Chunk, list[float], bool]]]:
        seen: set[str] = set()
        with self._set.reading() as view:
            for shard in view.shards:
                for entries in shard.export(batch):
                    fresh = [e for e in entries if e[0].chunk_id not in seen]
                    seen.update(e[0].chunk_id for e in fresh)
                    if fresh:
                        yield fresh

    def shard_stats(self) -> list[ShardStats]:
        """Every shard of the set: the hot one first, then the sealed ones, oldest first."""
        with self._write:
            building = self._busy()
            built = {entry.name: entry.built for entry in self._set.manifest.sealed}
            view = self._set.view
            stats = []
            for shard in view.shards:
                name, info = shard.path.name, shard.info()
                stats.append(
                    ShardStats(
                        name,
                        shard is view.hot,
                        built.get(name, False),
                        name in building,
                        info.points_count,
                        info.indexed_vectors_count,
                    )
                )
            return stats

    def running_builds(self) -> dict[str, int]:
        """The build processes running now: job name -> process id."""
        with self._write:
            return {job.name: job.process.pid for job in self._jobs.values() if job.process and not job.finished()}

    # -- background work ---------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.wait(self.maintain_seconds):
            try:
                self.maintain()
            except Exception:
                log.exception("dense index maintenance failed; retried at the next round")

    def maintain(self) -> None:
        """One round of background work: install finished builds, seal the hot shard when due,
        drop emptied shards, start the builds that are due. Returns at once: builds run in their
        own process and are installed by a later round."""
        with self._maintaining:
            if not self._open:
                return
            for job in list(self._jobs.values()):
                if job.finished():
                    self._finish(job)
            if self._seal_due():
                self._seal()
            self._drop_empty()
            for kind, inputs in (("fresh", self._fresh_inputs()), ("merge", self._merge_inputs())):
                if inputs:
                    self._start(kind, inputs)
            self._set.destroy_retired()

    def settle(self, timeout: float = 600.0, poll: float = 0.05) -> None:
        """Run maintenance until nothing is due: no seal, no build or merge waiting or running."""
        deadline = time.monotonic() + timeout
        while True:
            self.maintain()
            if not self._jobs and not self._seal_due() and not self._fresh_inputs() and not self._merge_inputs():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"dense index maintenance still busy after {timeout} s")
            time.sleep(poll)

    def _seal_due(self) -> bool:
        age = None if self._hot_since is None else time.monotonic() - self._hot_since
        return seal_due(self._set.view.hot.count(), age, self.hot_points, self.seal_seconds)

    def _seal(self) -> None:
        started = time.monotonic()
        hot = self._set.new_hot()  # made before the lock: writes wait only for the switch
        try:
            with self._write:
                # Too small for Qdrant to build a graph: nothing to build until merged.
                small = self._set.view.hot.count() < self.config.graph_points
                sealed = self._set.seal(hot, built=small)
                self._hot_since = None
        except Exception:
            self._set.discard(hot)
            raise
        fields = {"sealed": sealed, "hot": hot.path.name, "seconds": round(time.monotonic() - started, 3)}
        log.info("dense hot shard sealed", extra={"fields": fields})

    def _drop_empty(self) -> None:
        """Sealed shards all of whose points were deleted."""
        with self._write:
            busy = self._busy()
            names = [e.name for e in self._set.manifest.sealed if e.name not in busy]
            empty = tuple(name for name in names if not self._set.shard(name).count())
            if empty:
                self._set.drop(empty)

    def _busy(self) -> set[str]:
        return {name for job in self._jobs.values() for name in job.inputs}

    def _ready(self, kind: str) -> bool:
        return kind not in self._jobs and self._retry_at.get(kind, 0.0) <= time.monotonic()

    def _fresh_inputs(self) -> tuple[str, ...]:
        """Every sealed shard never built: one build takes them all, so a backlog shrinks at once."""
        if not self._ready("fresh"):
            return ()
        busy = self._busy()
        return tuple(e.name for e in self._set.manifest.sealed if not e.built and e.name not in busy)

    def _merge_inputs(self) -> tuple[str, ...]:
        if not self._ready("merge"):
            return ()
        busy = self._busy()
        built = [e.name for e in self._set.manifest.sealed if e.built and e.name not in busy]
        sizes = {name: self._set.shard(name).count() for name in built}
        return merge_plan(sizes, self.hot_points, self.merge_factor, self.max_shard_points, self.config.graph_points)

    def _start(self, kind: str, inputs: tuple[str, ...]) -> None:
        sizes = {n: self._set.shard(n).count() for n in inputs}
        inputs = tuple(sorted(inputs, key=lambda n: -sizes[n]))  # the largest is the base
        name = f"b{self._set.allocate():06d}"
        job = BuildJob(name, kind, inputs, self.path / BUILDS / name)
        copied = 0.0
        try:
            job.begin(self.config, graph=sum(sizes.values()) >= self.config.graph_points)
            with self._write:
                self._jobs[kind] = job  # from here on, changes to the inputs are logged
            for shard_name in inputs:  # one at a time: writes wait for one copy, not all
                shard = self._set.shard(shard_name)
                with self._write:  # a copy must not change while it is made
                    started = time.monotonic()
                    shard.flush()
                    job.copy_input(shard_name, shard.path)
                    copied = max(copied, round(time.monotonic() - started, 3))
            job.spawn()
        except Exception:
            self._abandon(job)
            raise
        fields = {"job": name, "kind": kind, "inputs": list(inputs), "copy_seconds": copied}
        log.info("dense build started", extra={"fields": fields})

    def _abandon(self, job: BuildJob) -> None:
        """A build that failed: its inputs stay as they are, and the build is retried later."""
        with self._write:
            if self._jobs.get(job.kind) is job:
                del self._jobs[job.kind]
        job.discard()
        self._failures[job.kind] += 1
        delay = min(self.retry_seconds * 2 ** (self._failures[job.kind] - 1), MAX_RETRY_SECONDS)
        self._retry_at[job.kind] = time.monotonic() + delay
        BUILDS_DONE.labels(job.kind, "failed").inc()

    def _finish(self, job: BuildJob) -> None:
        if not job.succeeded:
            log.warning(
                "dense build failed; its shards stay as they are and it is retried later",
                extra={"fields": {"job": job.name, "inputs": list(job.inputs), "error": job.failure()}},
            )
            self._abandon(job)
            return
        report = job.report()
        shard = None
        try:
            started = time.monotonic()
            shard = self._set.adopt(job.output())
            report["load_seconds"] = round(time.monotonic() - started, 3)
            with self._write:
                for operation in job.log:  # what changed since the copies were made
                    shard.apply(operation)
                shard.flush()
                self._set.replace(job.inputs, shard)
                del self._jobs[job.kind]
        except Exception:
            if shard is not None:
                self._set.discard(shard)
            self._abandon(job)
            raise
        job.discard()
        self._failures.pop(job.kind, None)
        BUILDS_DONE.labels(job.kind, "installed").inc()
        BUILD_SECONDS.observe(time.monotonic() - job.started)
        fields = {"job": job.name, "shard": shard.path.name, "inputs": list(job.inputs), "replayed": len(job.log)}
        log.info("dense build installed", extra={"fields": fields | report})
