"""The build process of the tiered dense index: turns copies of sealed shards into one shard with
its HNSW graph.

    python -m services.retrieve.backends.hnsw_builder JOB_FOLDER PARENT_PID

Qdrant Edge holds the GIL for the whole of `optimize()`, so it runs here, in a process of its own
at a lower CPU priority, while the index keeps searching the originals. Several inputs are
merged into the first before it is optimised. `done.json` is written last, after the
built shard is flushed and closed: a job folder without it is never installed. The process dies
with the one that started it, so no orphan writes into a folder a restarted index has discarded.
Imports nothing but qdrant_edge and the layout module: no model runtime, no service code.
"""

import ctypes
import json
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

import qdrant_edge as qe

from services.retrieve.backends.edge_layout import ShardConfig, open_shard, write_atomically

NICENESS = 10
PR_SET_PDEATHSIG = 1
BATCH = 512


def die_with_parent(parent_pid: int) -> None:
    """Linux: be killed when the starting thread's process ends (it spawns from a long-lived thread)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        return
    if os.getppid() != parent_pid:  # the parent was gone before the request took effect
        sys.exit(3)


def copy_points(source: qe.EdgeShard, target: qe.EdgeShard) -> int:
    copied, offset = 0, None
    while True:
        records, offset = source.scroll(
            qe.ScrollRequest(offset=offset, limit=BATCH, with_payload=True, with_vector=True)
        )
        if records:
            points = [qe.Point(r.id, list(r.vector), r.payload) for r in records]
            target.update(qe.UpdateOperation.upsert_points(points))
            copied += len(points)
        if offset is None:
            return copied


def build(job: Path) -> dict:
    """Optimise the first input (the largest: Qdrant may extend its graph rather than start over)
    after copying the points of the others into it; into one graph when `graph` says the result
    is large enough for one."""
    spec = json.loads((job / "job.json").read_text())
    config = ShardConfig(**spec["config"])
    if spec["graph"]:
        # Qdrant leaves a segment below its indexing threshold without a graph, and never merges
        # the segment that takes writes: the points copied in would stay out of the graph.
        config = replace(config, indexing_threshold_kb=1)
    base, *others = [job / "in" / name for name in spec["inputs"]]
    started = time.monotonic()
    shard = open_shard(base, config)
    for path in others:
        source = open_shard(path, config)
        copy_points(source, shard)
        source.close()
    merged = round(time.monotonic() - started, 2)
    shard.optimize()
    info = shard.info()
    shard.flush()
    shard.close()
    os.replace(base, job / "out")
    report = {
        "points": info.points_count,
        "indexed": info.indexed_vectors_count,
        "merge_seconds": merged,
        "seconds": round(time.monotonic() - started, 2),
    }
    write_atomically(job / "done.json", json.dumps(report))
    return report


def main() -> None:
    job, parent = Path(sys.argv[1]), int(sys.argv[2])
    die_with_parent(parent)
    os.nice(NICENESS)
    print(json.dumps(build(job)))


if __name__ == "__main__":
    main()
