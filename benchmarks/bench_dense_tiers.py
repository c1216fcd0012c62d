"""Dense engine alone, in one process as retrieve runs it (search threads, a writer thread, the
engine's own maintenance): p50/p99 of searches at 1 and 8 client threads over 100k+ points while
more keep being added, for

- `tiers`: the tiered index (dense_tiers.py) with its default settings, its preload built in the
  background (the time until everything is in a graph is reported);
- `brute`: one Qdrant Edge shard whose graph was built when it was empty, as retrieve ran before
  tiers for everything ingested while serving: every point searched by brute force;
- `built`: the same shard after a restart as retrieve ran before tiers (open, then build the
  graph in-process before serving: the time to open and the stall are reported) and, with
  nothing being added, the reference for what a search costs at best.

The summary gives the tiered index's figures as ratios against the two others of the same run:
8-client search p50, p99 and q/s while points are being added, and the time a restart takes
before the index answers (tiers: open; before: open and build).

Vectors are synthetic (embedding 100k distinct texts takes hours on two cores): by default
low-rank Gaussian ones, shaped like sentence embeddings; `--vectors random` takes uniform random
unit vectors, the worst case for a graph. Recall@10 is measured against exact search.
Also reported: the longest gap of a thread that ticks every 5 ms (a stall of the whole process,
e.g. the GIL held by Qdrant), the longest search, and the tiered index's seal, copy and load times.
"""

import argparse
import json
import logging
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from rag.v1 import types_pb2
from services.retrieve.backends.base import ChunkWrite, DocFields, SearchScope
from services.retrieve.backends.dense_tiers import TieredDenseIndex
from services.retrieve.backends.qdrant_edge import QdrantEdgeIndex

SCOPE = SearchScope("t1", ())
TEXT = " ".join(["chunk text of a realistic length"] * 20)  # about 700 bytes of payload per point
BATCH = 100


class Points:
    """Distinct unit vectors, numbered; chunk i belongs to document i // 10. `random`: uniform on
    the sphere, the hardest case for a graph (no structure at all); `lowrank`: a 48-dimensional
    Gaussian mapped into the space plus noise, closer to sentence embeddings, whose variance lies
    in a few dozen directions."""

    RANK, NOISE = 48, 0.3

    def __init__(self, dimension: int, kind: str = "lowrank", seed: int = 7) -> None:
        self.dimension, self.kind, self.rng = dimension, kind, np.random.default_rng(seed)
        self.basis = np.random.default_rng(1).normal(size=(self.RANK, dimension)).astype(np.float32)
        self.vectors = np.zeros((0, dimension), dtype=np.float32)

    def draw(self, count: int, rng: np.random.Generator) -> np.ndarray:
        v = rng.normal(size=(count, self.dimension)).astype(np.float32)
        if self.kind == "lowrank":
            v = (
                rng.normal(size=(count, self.RANK)).astype(np.float32) @ self.basis
                + self.NOISE * np.sqrt(self.RANK) * v
            )
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def writes(self, count: int) -> list[ChunkWrite]:
        start = len(self.vectors)
        fresh = self.draw(count, self.rng)
        self.vectors = np.vstack([self.vectors, fresh])
        return [self._write(start + i, v) for i, v in enumerate(fresh.tolist())]

    def _write(self, number: int, vector: list[float]) -> ChunkWrite:
        chunk = types_pb2.Chunk(
            chunk_id=str(uuid.UUID(int=number + 1)),
            tenant="t1",
            doc_id=f"doc-{number // 10}",
            version=1,
            ordinal=number % 10,
            text=TEXT,
            acl=["public"],
        )
        return ChunkWrite(chunk, DocFields(), True, tuple(vector))

    def queries(self, count: int) -> np.ndarray:
        return self.draw(count, np.random.default_rng(99))


def load(index, points: Points, count: int) -> None:
    for start in range(0, count, 1000):
        index.upsert(points.writes(min(1000, count - start)))


class Ticker:
    """The longest time a thread that wants to run every 5 ms waited."""

    def __init__(self) -> None:
        self.longest, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last = time.perf_counter()
        while not self._stop.wait(0.005):
            now = time.perf_counter()
            self.longest = max(self.longest, now - last - 0.005)
            last = now

    def __enter__(self) -> "Ticker":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def measure(index, points: Points, clients: int, seconds: float, rate: int) -> dict:
    """Closed-loop clients for `seconds` while a writer adds `rate` points a second (0: none)."""
    queries = points.queries(200).tolist()
    stop = threading.Event()
    latencies: list[list[float]] = [[] for _ in range(clients)]

    def client(n: int) -> None:
        i = n
        while not stop.is_set():
            started = time.perf_counter()
            index.search(queries[i % len(queries)], SCOPE, 10)
            latencies[n].append((time.perf_counter() - started) * 1000)
            i += clients

    added = [0]

    def writer() -> None:
        started = time.monotonic()
        while not stop.is_set():
            due = int((time.monotonic() - started) * rate)
            if due - added[0] >= BATCH:
                index.upsert(points.writes(BATCH))
                added[0] += BATCH
            else:
                time.sleep(0.01)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    if rate:
        threads.append(threading.Thread(target=writer))
    with Ticker() as ticker:
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join()
    every = [x for per in latencies for x in per]
    return {
        "searches": len(every),
        "p50_ms": round(float(np.percentile(every, 50)), 2),
        "p99_ms": round(float(np.percentile(every, 99)), 2),
        "max_ms": round(max(every), 1),
        "qps": round(len(every) / seconds, 1),
        "longest_stall_ms": round(ticker.longest * 1000, 1),
        "added": added[0],
    }


def recall(index, points: Points, queries: int = 50) -> float:
    """Mean share of the exact top 10 (over every point stored) the index returns."""
    found = 0
    for q in points.queries(queries):
        exact = {str(uuid.UUID(int=int(i) + 1)) for i in np.argsort(-(points.vectors @ q))[:10]}
        found += len(exact & {h.chunk_id for h in index.search(q.tolist(), SCOPE, 10)})
    return round(found / (10 * queries), 3)


class BuildEvents(logging.Handler):
    """The tiered index's own timings, from its log records."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, dict]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.events.append((record.getMessage(), dict(getattr(record, "fields", {}))))

    def longest(self, message: str, key: str) -> float:
        return max((f.get(key, 0.0) for m, f in self.events if m == message), default=0.0)


def windows(index, points: Points, args, rate: int) -> dict:
    return {str(c): measure(index, points, c, args.seconds, rate) for c in (1, 8)}


def run_tiers(folder: Path, args) -> dict:
    events = BuildEvents()
    logger = logging.getLogger("services.retrieve.backends.dense_tiers")
    logger.addHandler(events)
    logger.setLevel(logging.INFO)
    points = Points(args.dimension, args.vectors)
    settings = {"hot_points": args.hot_points, "merge_factor": args.merge_factor}
    index = TieredDenseIndex(folder, args.dimension, **{k: v for k, v in settings.items() if v})
    started = time.monotonic()
    index.open()
    opened = time.monotonic() - started
    with Ticker() as preload_ticker:
        load(index, points, args.points)
        loaded = time.monotonic() - started
        index.settle(timeout=3600)
    built = time.monotonic() - started
    result = {
        "open_s": round(opened, 2),
        "preload_upsert_s": round(loaded, 1),
        "preload_in_graphs_s": round(built, 1),
        "preload_longest_stall_ms": round(preload_ticker.longest * 1000, 1),
        "adding": windows(index, points, args, args.rate),
    }
    started = time.monotonic()
    index.settle(timeout=3600)
    result["last_added_in_graphs_s"] = round(time.monotonic() - started, 1)
    result["static"] = windows(index, points, args, 0)
    result["recall_at_10"] = recall(index, points)
    result["shards"] = [(s.points, s.indexed) for s in index.shard_stats()]
    result["longest_seal_s"] = events.longest("dense hot shard sealed", "seconds")
    result["longest_copy_s"] = events.longest("dense build started", "copy_seconds")
    result["longest_load_s"] = events.longest("dense build installed", "load_seconds")
    result["builds"] = sum(1 for m, _ in events.events if m == "dense build installed")
    index.close()
    started = time.monotonic()
    index = TieredDenseIndex(folder, args.dimension, maintain_seconds=0)
    index.open()
    result["reopen_s"] = round(time.monotonic() - started, 2)
    index.close()
    logger.removeHandler(events)
    return result


def run_single(folder: Path, args, build: bool) -> dict:
    points = Points(args.dimension, args.vectors)
    index = QdrantEdgeIndex(folder, args.dimension)
    index.open()
    load(index, points, args.points)
    result = {}
    if build:
        # A restart of retrieve before tiers: open, then build every graph before serving.
        index.close()
        with Ticker() as ticker:
            started = time.monotonic()
            index.open()
            index.optimize()
        result["restart_s"] = round(time.monotonic() - started, 1)
        result["build_longest_stall_ms"] = round(ticker.longest * 1000, 1)
        result["static"] = windows(index, points, args, 0)
    result["adding"] = windows(index, points, args, args.rate)
    result["recall_at_10"] = recall(index, points)
    index.close()
    return result


def line(name: str, m: dict) -> str:
    return (
        f"{name:<34} p50 {m['p50_ms']:7.2f} ms  p99 {m['p99_ms']:7.2f} ms  max {m['max_ms']:7.1f} ms  "
        f"{m['qps']:6.1f} q/s  longest stall {m['longest_stall_ms']:6.1f} ms  (+{m['added']} points)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=100_000, help="points loaded before measuring")
    parser.add_argument("--rate", type=int, default=500, help="points added per second while measuring")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each measurement window")
    parser.add_argument("--dimension", type=int, default=384)
    parser.add_argument("--vectors", choices=["lowrank", "random"], default="lowrank")
    parser.add_argument("--hot-points", type=int, default=0, help="tiers: instead of the default")
    parser.add_argument("--merge-factor", type=int, default=0, help="tiers: instead of the default")
    parser.add_argument("--only", choices=["tiers", "brute", "built"], action="append", help="run only these")
    args = parser.parse_args()
    chosen = args.only or ["tiers", "brute", "built"]
    results = {}
    root = Path(tempfile.mkdtemp(prefix="bench-dense-"))
    try:
        for name in chosen:
            if name == "tiers":
                results[name] = run_tiers(root / name, args)
            else:
                results[name] = run_single(root / name, args, build=name == "built")
            print(f"{name}: {json.dumps(results[name])}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"\n{args.points} {args.vectors} unit vectors of {args.dimension} dimensions; "
        f"{args.rate} more a second while adding"
    )
    for name in chosen:
        r = results[name]
        for phase in ("adding", "static"):
            for c in ("1", "8"):
                if phase in r:
                    print(line(f"{name}, {phase}, {c} client(s)", r[phase][c]))
    if "tiers" in results:
        t = results["tiers"]
        print(
            f"tiers: preload upserted in {t['preload_upsert_s']} s, all in graphs after {t['preload_in_graphs_s']} s; "
            f"last added in graphs {t['last_added_in_graphs_s']} s after adding stopped; {t['builds']} builds; "
            f"longest seal {t['longest_seal_s']} s, copy {t['longest_copy_s']} s, load {t['longest_load_s']} s; "
            f"reopen {t['reopen_s']} s; shards (points, in graph) {t['shards']}"
        )
    if "built" in results:
        print(
            f"built: restart (open, then build in-process) {results['built']['restart_s']} s, stalling the process "
            f"for {results['built']['build_longest_stall_ms']} ms"
        )
    for name in chosen:
        print(f"{name}: recall@10 {results[name]['recall_at_10']}")
    if "tiers" in results:
        print()
        for line_ in ratios(results):
            print(line_)
    print(json.dumps(results))


def ratios(results: dict) -> list[str]:
    """The tiered index while adding, against each baseline of the same run."""
    tiers, lines = results["tiers"]["adding"], []
    for c in ("8", "1"):
        for base, phase in (("brute", "adding"), ("built", "adding"), ("built", "static")):
            if phase not in results.get(base, {}):
                continue
            b = results[base][phase][c]
            lines.append(
                f"{c} client(s), tiers while adding ÷ {base} {phase}: p50 {tiers[c]['p50_ms'] / b['p50_ms']:.2f}x, "
                f"p99 {tiers[c]['p99_ms'] / b['p99_ms']:.2f}x, q/s {tiers[c]['qps'] / b['qps']:.2f}x"
            )
    if "built" in results:
        before, now = results["built"]["restart_s"], results["tiers"]["reopen_s"]
        lines.append(f"restart until the index answers: tiers {now} s, before {before} s (÷ {now / before:.3f})")
    return lines


if __name__ == "__main__":
    main()
