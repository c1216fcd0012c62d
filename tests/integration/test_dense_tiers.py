"""The tiered dense index on real Qdrant Edge shards in temp dirs, with real build processes:
searches go on while a build runs, results match one plain shard through every seal, build, swap
and merge, changes made during a build survive it, and a killed build, a killed owner or a crash
at any step of a swap leaves every chunk exactly once."""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from rag.v1 import types_pb2
from services.common.ids import chunk_id
from services.retrieve.backends.base import ChunkWrite, DocFields, SearchScope
from services.retrieve.backends.dense_tiers import TieredDenseIndex
from services.retrieve.backends.edge_layout import BUILDS, MANIFEST, SHARDS
from services.retrieve.backends.qdrant_edge import QdrantEdgeIndex
from services.retrieve.backends.shard_set import ShardSet

DIM = 16
CHUNKS_PER_DOC = 10
# Graphs for every shard past 16 points (1 KB of 16-dimension vectors), used by searches matching
# more than 160 points (10 KB); fewer are scanned, as Qdrant does below its default 10,000 KB.
SMALL_GRAPHS = {"indexing_threshold_kb": 1, "full_scan_threshold_kb": 10}


def tiers(path: Path, **settings) -> TieredDenseIndex:
    options = {"hot_points": 200, "merge_factor": 2, "maintain_seconds": 0, "retry_seconds": 0} | SMALL_GRAPHS
    return TieredDenseIndex(path / "tiers", DIM, **(options | settings))


def reference(path: Path) -> QdrantEdgeIndex:
    """One shard without a graph: exact search, the behaviour every tiered state must match."""
    index = QdrantEdgeIndex(path / "reference", DIM)
    index.open()
    return index


class Corpus:
    """Documents of ten chunks with fixed random vectors; a chunk's text names its version and edit."""

    def __init__(self, seed: int = 3) -> None:
        self.rng = np.random.default_rng(seed)
        self.vectors: dict[str, tuple[float, ...]] = {}

    def vector(self, cid: str) -> tuple[float, ...]:
        if cid not in self.vectors:
            v = self.rng.normal(size=DIM)
            self.vectors[cid] = tuple((v / np.linalg.norm(v)).tolist())
        return self.vectors[cid]

    def writes(self, docs, version=1, live=True, edit="", acl=("public",)) -> list[ChunkWrite]:
        out = []
        for doc in docs:
            for ordinal in range(CHUNKS_PER_DOC):
                cid = chunk_id("t1", doc, version, ordinal)
                chunk = types_pb2.Chunk(
                    chunk_id=cid,
                    tenant="t1",
                    doc_id=doc,
                    version=version,
                    ordinal=ordinal,
                    text=f"{doc} v{version} #{ordinal} {edit}",
                    acl=list(acl),
                )
                out.append(ChunkWrite(chunk, DocFields.of("", acl, {}), live, self.vector(cid)))
        return out

    def queries(self, count: int = 25) -> list[list[float]]:
        q = np.random.default_rng(11).normal(size=(count, DIM))
        return (q / np.linalg.norm(q, axis=1, keepdims=True)).tolist()


def docs(first: int, count: int) -> list[str]:
    return [f"d{n}" for n in range(first, first + count)]


class Both:
    """Every change applied to the tiered index and to the reference alike."""

    def __init__(self, index, ref) -> None:
        self.index, self.ref = index, ref

    def upsert(self, writes):
        self.index.upsert(writes)
        self.ref.upsert(writes)

    def rewrite(self, *args):
        self.index.rewrite(*args)
        self.ref.rewrite(*args)

    def retire(self, *args):
        self.index.retire(*args)
        self.ref.retire(*args)


SCOPES = [SearchScope("t1", ()), SearchScope("t1", ("hr",)), SearchScope("t1", (), doc_ids=("d1", "d3", "d5"))]


def assert_correct_results_of_graphs(index, ref, corpus: Corpus) -> None:
    """For shards whose graphs were built among many retired points: a graph search is approximate,
    so a true tenth hit can be missed. Every hit returned is one the exact reference finds, with the
    same score, once; and the reference's top 10 are found 97 times in 100 over all queries."""
    found = wanted = 0
    for scope in SCOPES:
        for q in corpus.queries():
            got = [(h.chunk_id, round(h.score, 4)) for h in index.search(q, scope, 10)]
            exact = [(h.chunk_id, round(h.score, 4)) for h in ref.search(q, scope, 40)]
            assert len(got) == len(exact[:10]) and len({cid for cid, _ in got}) == len(got), scope
            assert set(got) <= set(exact), scope
            assert [s for _, s in got] == sorted((s for _, s in got), reverse=True), scope
            found += len(set(got) & set(exact[:10]))
            wanted += len(exact[:10])
    assert found / wanted >= 0.97, (found, wanted)


def assert_same_results(index, ref, corpus: Corpus) -> None:
    for scope in SCOPES:
        for q in corpus.queries():
            got = [(h.chunk_id, round(h.score, 4)) for h in index.search(q, scope, 10)]
            want = [(h.chunk_id, round(h.score, 4)) for h in ref.search(q, scope, 10)]
            assert got == want, scope


def assert_same_contents(index, ref, doc_ids) -> None:
    """Record by record: every chunk once, with the same fields and liveness."""
    exported = [chunk for batch in index.export() for chunk, _, _ in batch]
    expected = [chunk for batch in ref.export() for chunk, _, _ in batch]
    assert index.count() == ref.count() == len(expected)
    assert sorted(c.chunk_id for c in exported) == sorted(c.chunk_id for c in expected)
    ids = [c.chunk_id for c in expected]
    assert index.fetch(ids) == ref.fetch(ids)
    for doc in doc_ids:
        assert sorted(index.chunks_of("t1", doc)) == sorted(ref.chunks_of("t1", doc)), doc


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def wait_for_build(index) -> int:
    index.maintain()
    [pid] = index.running_builds().values()
    return pid


@pytest.fixture
def pair(tmp_path):
    index, ref = tiers(tmp_path), reference(tmp_path)
    index.open()
    yield index, ref
    index.close()
    ref.close()


def test_searches_are_answered_while_a_build_runs(tmp_path):
    """Counted, not timed: searches completed while the build process was alive and using the CPU
    (a build inside this process would hold the GIL, and none would complete)."""
    corpus = Corpus()
    index, ref = tiers(tmp_path, hot_points=10_000), reference(tmp_path)
    index.open()
    writes = corpus.writes(docs(0, 1000))
    index.upsert(writes)
    ref.upsert(writes)
    pid = wait_for_build(index)
    cpu_before, completed = cpu_seconds(pid), 0
    cpu_during = cpu_before
    queries = corpus.queries()
    while index.running_builds():
        index.search(queries[completed % len(queries)], SCOPES[0], 10)
        completed += 1
        if alive(pid):
            cpu_during = cpu_seconds(pid)
    print(f"{completed} searches while the build used {cpu_during - cpu_before:.1f} s of CPU")
    assert completed >= 50
    assert cpu_during - cpu_before >= 0.5
    index.settle()
    [hot, built] = index.shard_stats()
    assert (hot.points, built.points, built.indexed, built.built) == (0, 10_000, 10_000, True)
    assert_same_results(index, ref, corpus)
    index.close()
    ref.close()


def test_results_match_one_shard_through_seals_builds_swaps_and_merges(pair):
    index, ref = pair
    corpus, both = Corpus(), Both(*pair)
    for first in range(0, 120, 20):
        both.upsert(corpus.writes(docs(first, 20)))
        index.maintain()  # seals, starts or installs builds: compared in whatever state it is
        assert_same_results(index, ref, corpus)
    index.settle()
    assert_same_results(index, ref, corpus)
    stats = index.shard_stats()
    sealed = [s for s in stats if not s.hot]
    assert sum(s.points for s in stats) == 1200
    assert all(s.built and s.indexed == s.points for s in sealed)
    assert len(sealed) < 1200 // 200  # merged: fewer shards than seals


def test_a_merge_puts_every_point_of_its_result_in_one_graph(tmp_path):
    """A shard with a graph, shrunk by deletions below the graph size (too few for Qdrant to
    rebuild it), merged with one too small for a graph of its own: all in one graph after."""
    corpus = Corpus()
    index = tiers(tmp_path, hot_points=420, indexing_threshold_kb=25)  # graphs from 400 points
    index.open()
    index.upsert(corpus.writes(docs(0, 42)))
    index.settle()
    assert [(s.points, s.indexed) for s in index.shard_stats() if not s.hot] == [(420, 420)]
    for doc in docs(0, 3):
        index.retire("t1", doc, 2)
    index.upsert(corpus.writes(docs(42, 10)))
    index.seal_seconds = 0  # sealed by age, at 100 points
    index.settle()
    assert [(s.points, s.indexed) for s in index.shard_stats()] == [(0, 0), (490, 490)]
    index.close()


def test_changes_made_during_a_build_survive_the_swap(pair):
    index, ref = pair
    corpus, both = Corpus(), Both(*pair)
    for doc in docs(0, 19):  # one update each: the shard's operation numbers pass its points' versions
        both.upsert(corpus.writes([doc]))
    both.upsert(corpus.writes(["d19"], version=2, live=False))  # a version being written
    pid = wait_for_build(index)
    os.kill(pid, signal.SIGSTOP)  # every change below lands while the build runs
    try:
        both.retire("t1", "d0", 2)  # a deletion
        both.rewrite("t1", "d1", DocFields.of("Human resources", ["hr"], {"team": "people"}, 2), 0)
        both.rewrite("t1", "d19", None, 2)  # the pending version goes live ...
        both.retire("t1", "d19", 2)  # ... and the older one is retired
        both.upsert(corpus.writes(["d3"], edit="edited"))  # chunks of the shard being built, again
        both.upsert(corpus.writes(["d4"], version=2, live=False))
        assert_same_results(index, ref, corpus)
    finally:
        os.kill(pid, signal.SIGCONT)
    index.settle()
    assert index.running_builds() == {}
    assert_same_contents(index, ref, docs(0, 20))
    assert_same_results(index, ref, corpus)
    [chunk] = index.fetch([chunk_id("t1", "d1", 1, 0)]).values()
    assert (list(chunk.acl), chunk.title, dict(chunk.metadata)) == (["hr"], "Human resources", {"team": "people"})
    assert index.fetch([chunk_id("t1", "d3", 1, 5)])[chunk_id("t1", "d3", 1, 5)].text == "d3 v1 #5 edited"
    assert index.chunks_of("t1", "d0") == []


def test_a_chunk_upserted_again_after_its_shard_was_sealed_is_stored_once(pair):
    index, ref = pair
    corpus, both = Corpus(), Both(*pair)
    both.upsert(corpus.writes(docs(0, 20)))
    index.settle()
    assert [(s.hot, s.points) for s in index.shard_stats()] == [(True, 0), (False, 200)]
    both.upsert(corpus.writes(docs(0, 5), edit="again"))
    both.upsert(corpus.writes(docs(5, 5), live=False, edit="redelivered"))  # pending: stays live
    assert_same_contents(index, ref, docs(0, 20))
    assert [(s.hot, s.points) for s in index.shard_stats()] == [(True, 100), (False, 100)]
    index.settle()
    assert_same_contents(index, ref, docs(0, 20))
    assert_same_results(index, ref, corpus)
    assert {live for _, _, live in index.chunks_of("t1", "d7")} == {True}


def test_a_killed_build_loses_nothing_and_is_redone(pair, caplog):
    index, ref = pair
    corpus, both = Corpus(), Both(*pair)
    both.upsert(corpus.writes(docs(0, 20)))
    index.maintain()
    [(job, pid)] = index.running_builds().items()
    both.retire("t1", "d2", 2)  # a change the killed build's log held
    os.kill(pid, signal.SIGKILL)
    while alive(pid):
        time.sleep(0.01)
    index.retry_seconds = 3600
    with caplog.at_level(logging.WARNING, logger="services.retrieve.backends.dense_tiers"):
        index.maintain()
    assert [r.fields["job"] for r in caplog.records if r.getMessage().startswith("dense build failed")] == [job]
    assert index.running_builds() == {}
    assert not any((index.path / BUILDS).iterdir())
    assert [(s.built, s.indexed) for s in index.shard_stats() if not s.hot] == [(False, 0)]
    assert_same_contents(index, ref, docs(0, 20))
    assert_same_results(index, ref, corpus)
    index.maintain()
    assert index.running_builds() == {}  # not before its retry time
    index.retry_seconds = 0
    index._retry_at.clear()
    index.settle()
    assert [(s.built, s.indexed) for s in index.shard_stats() if not s.hot] == [(True, 190)]
    assert_same_contents(index, ref, docs(0, 20))


OWNER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {tests!r})
    from test_dense_tiers import Corpus, docs, tiers
    from pathlib import Path
    index = tiers(Path({folder!r}), hot_points=3000)
    index.open()
    index.upsert(Corpus().writes(docs(0, 300)))
    index.maintain()
    print(list(index.running_builds().values())[0], flush=True)
    time.sleep(600)
    """
)


def test_a_killed_owner_leaves_every_chunk_once_and_its_build_dies_with_it(tmp_path):
    script = OWNER.format(tests=str(Path(__file__).parent), folder=str(tmp_path))
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        builder = int(owner.stdout.readline())
    finally:
        owner.kill()
        owner.wait()
    deadline = time.monotonic() + 30
    while alive(builder) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(builder)
    corpus, ref = Corpus(), reference(tmp_path)
    ref.upsert(corpus.writes(docs(0, 300)))
    index = tiers(tmp_path, hot_points=3000)
    index.open()
    assert not (index.path / BUILDS).exists()
    assert [(s.hot, s.built, s.points, s.indexed) for s in index.shard_stats()] == [
        (True, False, 0, 0),
        (False, False, 3000, 0),
    ]
    assert_same_contents(index, ref, docs(0, 300))
    index.settle()
    assert_same_contents(index, ref, docs(0, 300))
    assert_same_results(index, ref, corpus)
    index.close()
    ref.close()


class Snapshots(ShardSet):
    """The folder as a kill would leave it (the page cache is what a killed process leaves), copied
    just before and just after each durable step of a seal and of a swap."""

    def __init__(self, root, config, into: Path) -> None:
        super().__init__(root, config)
        self.into, self.taken = into, []

    def snapshot(self, label: str) -> None:
        target = self.into / f"{len(self.taken):02d}-{label}"
        shutil.copytree(self.root, target, ignore=shutil.ignore_patterns(BUILDS))
        try:  # a build process may be writing there: whatever part is copied is discarded at open
            shutil.copytree(self.root / BUILDS, target / BUILDS)
        except (shutil.Error, FileNotFoundError):
            pass
        self.taken.append(target)

    def seal(self, hot, built):
        self.snapshot("before-seal")
        name = super().seal(hot, built)
        self.snapshot("after-seal")
        return name

    def replace(self, inputs, built):
        self.snapshot("before-swap")
        super().replace(inputs, built)
        self.snapshot("after-swap")

    def destroy_retired(self, force=False):
        pending = bool(self._retired)
        super().destroy_retired(force)
        if pending and not force:
            self.snapshot("after-cleanup")


def test_a_crash_at_any_step_of_a_seal_or_a_swap_leaves_every_chunk_once(tmp_path):
    corpus = Corpus()
    index = tiers(tmp_path)
    index._set = Snapshots(index.path, index.config, tmp_path / "snapshots")
    index.open()
    for first in range(0, 60, 20):
        index.upsert(corpus.writes(docs(first, 20)))
        index.settle()
    labels = [p.name.split("-", 1)[1] for p in index._set.taken]
    assert {"before-seal", "after-seal", "before-swap", "after-swap", "after-cleanup"} == set(labels)
    index.close()
    for snapshot in index._set.taken:
        manifest = json.loads((snapshot / MANIFEST).read_text())
        crashed = TieredDenseIndex(snapshot, DIM, maintain_seconds=0, **SMALL_GRAPHS)
        crashed.open()
        named = sorted([manifest["hot"], *(s["name"] for s in manifest["sealed"])])
        assert sorted(p.name for p in (snapshot / SHARDS).iterdir()) == named, snapshot.name  # leftovers gone
        assert not (snapshot / BUILDS).exists()
        # Each state holds exactly the chunks written before it, each once.
        points = crashed.count()
        exported = [c.chunk_id for batch in crashed.export() for c, _, _ in batch]
        assert len(exported) == len(set(exported)) == points and points % 200 == 0, snapshot.name
        assert set(exported) == {w.chunk.chunk_id for w in corpus.writes(docs(0, points // CHUNKS_PER_DOC))}
        if snapshot.name.endswith("before-swap"):  # the interrupted build is done again
            crashed.settle()
            assert crashed.count() == points
            assert all(s.built and s.indexed == s.points for s in crashed.shard_stats() if not s.hot)
        crashed.close()


def test_a_reopened_index_answers_before_any_build(tmp_path):
    corpus, ref = Corpus(), reference(tmp_path)
    index = tiers(tmp_path, hot_points=300)
    index.open()
    writes = corpus.writes(docs(0, 30))
    index.upsert(writes)
    ref.upsert(writes)
    wait_for_build(index)
    index.close()  # the build is killed; redone after the next open
    index = tiers(tmp_path, hot_points=300, maintain_seconds=0.5)
    index.open()
    assert index.running_builds() == {}
    assert [(s.built, s.indexed) for s in index.shard_stats() if not s.hot] == [(False, 0)]
    assert_same_results(index, ref, corpus)
    deadline = time.monotonic() + 120
    while [s.indexed for s in index.shard_stats() if not s.hot] != [300] and time.monotonic() < deadline:
        time.sleep(0.1)  # built by the index's own thread
    assert [s.indexed for s in index.shard_stats() if not s.hot] == [300]
    assert_same_results(index, ref, corpus)
    index.close()
    ref.close()


@pytest.mark.parametrize("interrupted", [False, True])
def test_an_index_of_one_shard_becomes_the_first_sealed_shard(tmp_path, interrupted):
    corpus = Corpus()
    old = QdrantEdgeIndex(tmp_path / "tiers", DIM)
    old.open()
    old.upsert(corpus.writes(docs(0, 10)))
    old.close()
    if interrupted:  # a crash after the first entry was moved
        (tmp_path / "tiers" / SHARDS / "s000000").mkdir(parents=True)
        os.replace(tmp_path / "tiers" / "segments", tmp_path / "tiers" / SHARDS / "s000000" / "segments")
    ref = reference(tmp_path)
    ref.upsert(corpus.writes(docs(0, 10)))
    index = tiers(tmp_path)
    index.open()
    assert [(s.name, s.built, s.points) for s in index.shard_stats() if not s.hot] == [("s000000", False, 100)]
    assert_same_contents(index, ref, docs(0, 10))
    index.settle()
    assert_same_contents(index, ref, docs(0, 10))
    assert_same_results(index, ref, corpus)
    index.close()
    ref.close()


def test_the_build_process_imports_no_model_runtime_and_no_service():
    probe = (
        "import sys, services.retrieve.backends.hnsw_builder; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('services', 'rag', 'onnxruntime', 'grpc', "
        "'tokenizers', 'nats', 'google', 'numpy')))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert eval(loaded) == [
        "services",
        "services.retrieve",
        "services.retrieve.backends",
        "services.retrieve.backends.edge_layout",
        "services.retrieve.backends.hnsw_builder",
    ]


def test_concurrent_writes_searches_and_maintenance_end_in_the_reference_state(tmp_path):
    """A writer (upserts, re-upserts, activations, retirements) and two searchers run while the
    index's own thread seals, builds and merges; every search succeeds and the end state is the
    reference's, chunk by chunk."""
    corpus = Corpus()
    index = tiers(tmp_path, hot_points=150, maintain_seconds=0.02)
    ref = reference(tmp_path)
    index.open()
    both, errors, searches, stop = Both(index, ref), [], [0, 0], threading.Event()

    def searcher(n: int) -> None:
        queries = corpus.queries()
        while not stop.is_set():
            try:
                index.search(queries[searches[n] % len(queries)], SCOPES[searches[n] % 3], 10)
                index.fetch([chunk_id("t1", "d1", 1, 0)])
                searches[n] += 1
            except Exception as error:  # reported below
                errors.append(error)
                return

    threads = [threading.Thread(target=searcher, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    try:
        for step in range(60):
            both.upsert(corpus.writes(docs(step, 1)))
            if step % 5 == 4:
                both.upsert(corpus.writes(docs(step - 4, 2), edit=f"again {step}"))
                both.upsert(corpus.writes([f"d{step - 3}"], version=2, live=False))
                both.rewrite("t1", f"d{step - 3}", DocFields.of("", ["hr"], {}, step), 2)
                both.retire("t1", f"d{step - 3}", 2)
            time.sleep(0.02)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert min(searches) >= 20
    index.settle()
    assert_same_contents(index, ref, docs(0, 60))
    assert_correct_results_of_graphs(index, ref, corpus)
    index.close()
    ref.close()
