"""The index apply logic (services/retrieve/plan.py, executor.py) over random interleavings,
redeliveries and reorderings of what ingestion can write, against a model engine that keeps the
engine contract (the conformance suite holds the real engines to the same contract).

Whatever the order of the stream, however it is cut into batches, and however often it is applied
again: a removed version never comes back, the newest activated version that is not removed is the
one live, the fields with the newest revision are on every chunk, and at no instant between two
engine writes does a document that stays visible have no live chunk."""

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from rag.v1 import events_pb2, types_pb2
from services.common.ids import chunk_id
from services.retrieve.backends.base import DocFields
from services.retrieve.executor import execute
from services.retrieve.plan import Activate, DocState, Remove, SetFields, Upsert, decode, plan

DOCS = ("a", "b")


@dataclass
class Stored:
    doc: str
    version: int
    live: bool
    fields: DocFields


class ModelEngine:
    """The engine contract in memory; `probe` runs after every write."""

    def __init__(self, probe=lambda: None) -> None:
        self.chunks: dict[str, Stored] = {}
        self.probe = probe

    def rewrite(self, tenant, doc_id, fields, live_version):
        for c in self.chunks.values():
            if c.doc == doc_id:
                c.fields = fields or c.fields
                c.live = c.live or c.version == live_version
        self.probe()

    def upsert(self, writes):
        for w in writes:
            before = self.chunks.get(w.chunk.chunk_id)
            self.chunks[w.chunk.chunk_id] = Stored(
                w.chunk.doc_id, w.chunk.version, w.live or bool(before and before.live), w.fields
            )
            self.probe()

    def retire(self, tenant, doc_id, below_version):
        self.chunks = {k: c for k, c in self.chunks.items() if c.doc != doc_id or c.version >= below_version}
        self.probe()

    def commit(self):
        pass

    def live_versions(self, doc: str) -> set[int]:
        return {c.version for c in self.chunks.values() if c.doc == doc and c.live}


def fields(revision: int) -> DocFields:
    return DocFields.of("", [f"team{revision}"], {"rev": str(revision)}, revision)


def chunks(doc: str, version: int, count: int) -> tuple:
    return tuple(
        types_pb2.Chunk(chunk_id=chunk_id("t", doc, version, i), tenant="t", doc_id=doc, version=version, ordinal=i)
        for i in range(count)
    )


@st.composite
def streams(draw):
    """What ingestion writes for two documents: jobs whose events interleave (a slow job's
    activation after a newer one's), field changes whose revisions reach the stream out of order,
    removals through the newest version at that moment, re-uploads after them, and events written
    twice (a redelivered job, a publish retried after the duplicate window)."""
    stream = []
    for doc in DOCS:
        version, revision = 0, 1
        jobs = []
        for _ in range(draw(st.integers(1, 5))):
            action = draw(st.sampled_from(["upload", "upload", "fields", "remove"]))
            if action == "upload":
                version += 1
                size = draw(st.integers(1, 3))
                job = [("t", doc), Upsert(version, chunks(doc, version, size), ((0.0,),) * size, fields(revision))]
                job_events = [(("t", doc), job[1])]
                if draw(st.booleans()):
                    job_events.append((("t", doc), Activate(version, size, f"{doc}{version}")))
                jobs.append(job_events)
            elif action == "fields":
                revision += 1
                jobs.append([(("t", doc), SetFields(fields(revision)))])
            elif version:  # the registry refuses to delete a document it does not hold
                jobs.append([(("t", doc), Remove(version))])
        stream += [e for job in jobs for e in job]
    # Interleave: move some events later (a job that finished late), never before their own
    # job's upserts (an activation follows its upserts), and write some twice.
    order = list(range(len(stream)))
    for _ in range(draw(st.integers(0, 6)) if order else 0):
        i = draw(st.integers(0, len(order) - 1))
        j = draw(st.integers(i, len(order) - 1))
        event = stream[order[i]]
        if isinstance(event[1], Upsert):
            continue  # upserts stay ahead of their activation
        order.insert(j, order.pop(i))
    reordered = [stream[i] for i in order]
    for _ in range(draw(st.integers(0, 3)) if reordered else 0):
        original = draw(st.integers(0, len(reordered) - 1))  # written again later, never earlier
        reordered.insert(draw(st.integers(original + 1, len(reordered))), reordered[original])
    cuts = sorted(draw(st.lists(st.integers(1, max(1, len(reordered) - 1)), max_size=4)))
    return reordered, cuts


def expected(stream, doc: str):
    floor = max([op.through for key, op in stream if key[1] == doc and isinstance(op, Remove)], default=0)
    activated = [op.version for key, op in stream if key[1] == doc and isinstance(op, Activate)]
    active = max([v for v in activated if v > floor], default=0)
    revisions = [op.fields for key, op in stream if key[1] == doc and isinstance(op, Upsert | SetFields)]
    newest = max(revisions, key=lambda f: f.revision) if revisions else DocFields()
    return floor, active, newest


def batches(stream, cuts):
    edges = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in zip(edges, edges[1:], strict=False) if b > a]


def apply_all(engine, states, stream, cuts, probe_states=None):
    for batch in batches(stream, cuts):
        result = plan(states, batch)
        if probe_states is not None:
            probe_states[:] = [dict(states), {**states, **result.states}]
        execute(result.writes, engine, engine)
        states = {**states, **result.states}
        for doc in DOCS:  # between batches: one live version at most, the active one
            active = states.get(("t", doc), DocState()).active
            assert engine.live_versions(doc) <= ({active} if active else set())
    return states


@settings(max_examples=1000, deadline=None)
@given(streams())
def test_any_order_and_batching_ends_in_the_state_the_versions_and_revisions_say(case):
    stream, cuts = case
    window: list = []

    def never_missing():
        if not window:
            return
        before, after = window
        for doc in DOCS:
            was, will = before.get(("t", doc), DocState()).active, after.get(("t", doc), DocState()).active
            if was and will:
                assert engine.live_versions(doc), f"{doc} had no live chunk between two writes"

    engine = ModelEngine(never_missing)
    states = apply_all(engine, {}, stream, cuts, window)
    window.clear()
    for doc in DOCS:
        floor, active, newest = expected(stream, doc)
        state = states.get(("t", doc), DocState())
        assert (state.active, state.floor >= floor, state.fields) == (active, True, newest)
        stored = [c for c in engine.chunks.values() if c.doc == doc]
        assert all(c.version > floor for c in stored), "a removed version came back"
        assert {c.version for c in stored if c.live} == ({active} if active else set())
        assert all(c.version >= active for c in stored), "an older version was left behind"
        assert all(c.fields == newest for c in stored), "a chunk kept older fields"
        if active:
            upserted = {
                c.chunk_id
                for key, op in stream
                if key[1] == doc and isinstance(op, Upsert) and op.version == active
                for c in op.chunks
            }
            assert {k for k, c in engine.chunks.items() if c.doc == doc and c.live} == upserted

    # Delivered again (a crash between the commit and the acks): nothing changes.
    snapshot = {k: (c.doc, c.version, c.live, c.fields) for k, c in engine.chunks.items()}
    again = apply_all(engine, states, stream, [])
    assert again == states
    assert {k: (c.doc, c.version, c.live, c.fields) for k, c in engine.chunks.items()} == snapshot


def test_activation_retires_older_versions_only():
    v1, v2, v3 = (Upsert(v, chunks("a", v, 1), ((0.0,),), fields(1)) for v in (1, 2, 3))
    engine = ModelEngine()
    states = apply_all(
        engine, {}, [(("t", "a"), v1), (("t", "a"), Activate(1)), (("t", "a"), v2), (("t", "a"), v3)], []
    )
    states = apply_all(engine, states, [(("t", "a"), Activate(2))], [])
    assert sorted((c.version, c.live) for c in engine.chunks.values()) == [(2, True), (3, False)]
    states = apply_all(engine, states, [(("t", "a"), Activate(1))], [])  # a late activation of v1
    assert states[("t", "a")].active == 2 and engine.live_versions("a") == {2}


def test_a_removal_is_a_tombstone_a_late_job_cannot_undo():
    v1, v2 = (Upsert(v, chunks("a", v, 2), ((0.0,),) * 2, fields(1)) for v in (1, 2))
    engine = ModelEngine()
    states = apply_all(engine, {}, [(("t", "a"), v1), (("t", "a"), Activate(1)), (("t", "a"), Remove(2))], [])
    states = apply_all(engine, states, [(("t", "a"), v2), (("t", "a"), Activate(2))], [])  # v2's job, still running
    assert states[("t", "a")] == DocState(active=0, floor=2, highest=2, fields=fields(1)) and engine.chunks == {}
    v3 = Upsert(3, chunks("a", 3, 1), ((0.0,),), fields(1))
    states = apply_all(engine, states, [(("t", "a"), v3), (("t", "a"), Activate(3))], [])  # uploaded again
    assert engine.live_versions("a") == {3}


def test_fields_changed_while_a_version_is_written_hold_for_that_version():
    narrowed = fields(2)
    engine = ModelEngine()
    v1 = Upsert(1, chunks("a", 1, 1), ((0.0,),), fields(1))
    states = apply_all(engine, {}, [(("t", "a"), v1), (("t", "a"), Activate(1))], [])
    v2 = Upsert(2, chunks("a", 2, 1), ((0.0,),), fields(1))  # the job read the record before the change
    states = apply_all(engine, states, [(("t", "a"), SetFields(narrowed)), (("t", "a"), v2)], [])
    states = apply_all(engine, states, [(("t", "a"), Activate(2))], [])
    assert [c.fields for c in engine.chunks.values()] == [narrowed] and states[("t", "a")].fields == narrowed


def upserts_event(version: int, count: int, activate: bool) -> events_pb2.IndexBatch:
    event = events_pb2.IndexBatch(tenant="t", doc_id="a", job_id=f"a{version}")
    event.upserts.chunks.extend(chunks("a", version, count))
    event.upserts.vectors.extend([0.5, 0.25] * count)
    event.upserts.dimension, event.upserts.version = 2, version
    event.upserts.fields.CopyFrom(events_pb2.DocumentFields(acl=["team1"], metadata={"rev": "1"}, revision=1))
    if activate:
        event.upserts.activate.CopyFrom(events_pb2.ActivateVersion(version=version, chunk_count=count))
    return event


def test_an_upsert_that_activates_is_the_upsert_then_the_activation():
    alone = events_pb2.IndexBatch(tenant="t", doc_id="a", job_id="a2")
    alone.activate.CopyFrom(events_pb2.ActivateVersion(version=2, chunk_count=3))
    assert decode(upserts_event(2, 3, activate=True)) == decode(upserts_event(2, 3, activate=False)) + decode(alone)
    ops = [op for _, op in decode(upserts_event(2, 3, activate=True))]
    assert [type(op) for op in ops] == [Upsert, Activate]
    assert (ops[1].version, ops[1].chunk_count, ops[1].job_id, ops[1].records) == (2, 3, "a2", None)


def test_an_upsert_that_activates_keeps_the_tombstone_and_retires_older_versions_only():
    engine = ModelEngine()
    states = apply_all(engine, {}, decode(upserts_event(1, 2, activate=True)), [])
    assert (states[("t", "a")].active, engine.live_versions("a")) == (1, {1})
    states = apply_all(engine, states, decode(upserts_event(3, 1, activate=True)), [])
    states = apply_all(engine, states, decode(upserts_event(2, 2, activate=True)), [])  # a late job of v2
    assert (states[("t", "a")].active, engine.live_versions("a"), len(engine.chunks)) == (3, {3}, 1)
    states = apply_all(engine, states, [(("t", "a"), Remove(4))], [])
    states = apply_all(engine, states, decode(upserts_event(4, 1, activate=True)), [])  # v4's job, after the delete
    assert (states[("t", "a")].active, engine.chunks) == (0, {})
