"""A bounded index stream with real nats-server, Qdrant Edge and Tantivy: one replica snapshots its
generation and purges what every reader passed; a new replica, and one that was away longer than
the stream kept events, start from the snapshot and end with exactly the same documents."""

import asyncio

import pytest
from nats.js.errors import NotFoundError

from services.common import natsio
from services.common.config import RetrieveSettings
from services.retrieve.generations import Generations
from services.retrieve.snapshots import snapshots_of

from .test_index_consumer import activate, narrow, publish, remove, upserts

DIMENSION = 8


def settings(tmp_path, name: str) -> RetrieveSettings:
    return RetrieveSettings(
        index_dir=tmp_path / name,
        consumer_name=name,
        snapshot_min_events=1,
        snapshot_interval_seconds=3600,
        generation_poll_seconds=0.2,
        ready_max_lag=0,
        instance=name,
    )


@pytest.fixture
async def js(nats_server):
    nc = await natsio.connect(nats_server.url, "test")
    js = nc.jetstream()
    await natsio.ensure_all(js)
    yield js
    await nc.close()


async def replica(js, tmp_path, name: str) -> Generations:
    generations = Generations(settings(tmp_path, name), tmp_path / name, DIMENSION, name)
    await generations.start(js)
    await asyncio.wait_for(generations.wait_caught_up(), 30)
    return generations


async def documents(generations: Generations) -> dict:
    """Every stored chunk of the active generation, with its version, liveness and ACL."""
    g = generations.get()
    found = {}
    for batch in g.dense.export():
        for chunk, _, live in batch:
            found[chunk.chunk_id] = (chunk.doc_id, chunk.version, live, tuple(chunk.acl))
    lexical = {
        cid: (doc, version, live) for doc in ("d1", "d2", "d3") for cid, version, live in g.lexical.chunks_of("t1", doc)
    }
    assert lexical == {cid: (doc, version, live) for cid, (doc, version, live, _) in found.items()}
    return found


async def caught_up(generations: Generations, sequence: int) -> None:
    for _ in range(300):
        if generations.get().state.watermark >= sequence:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never applied through {sequence}")


async def test_replicas_start_from_a_snapshot_once_the_stream_is_purged(js, tmp_path):
    first = await replica(js, tmp_path, "first")
    try:
        last = await publish(
            js,
            upserts(1, 2),
            activate(1, 2),
            upserts(1, 1, doc="d2"),
            activate(1, 1, doc="d2"),
            remove(1, doc="d2"),
            upserts(2, 3),
            narrow(2, ["hr"]),
            upserts(1, 1, doc="d3"),  # still being written: pending, not live
        )
        await caught_up(first, last)
        purged = await first.maintenance.run_once()
        [(watermark, _)] = await snapshots_of(first.maintenance.objects, 1)
        info = await js.stream_info(natsio.STREAM_INDEX.name)
        assert watermark == last and purged == last and info.state.first_seq == last + 1

        # A new replica: the stream holds nothing it could replay, the snapshot holds everything.
        second = await replica(js, tmp_path, "second")
        try:
            assert await documents(second) == await documents(first)
            tail = await publish(js, activate(2, 3), activate(1, 1, doc="d3"), upserts(5, 1, doc="d2"))
            await caught_up(first, tail)
            await caught_up(second, tail)
            expected = await documents(first)
            assert await documents(second) == expected
            assert sorted(v[:3] for v in expected.values()) == [("d1", 2, True)] * 3 + [
                ("d2", 5, False),
                ("d3", 1, True),
            ]
            assert {v[3] for v in expected.values() if v[0] == "d1"} == {("hr",)}
            assert (await second.get().state.load([("t1", "d2")]))[("t1", "d2")].floor == 1
        finally:
            await second.stop()
    finally:
        await first.stop()


async def test_a_replica_away_longer_than_the_stream_kept_events_starts_again_from_a_snapshot(js, tmp_path):
    away = await replica(js, tmp_path, "away")
    staying = await replica(js, tmp_path, "staying")
    try:
        last = await publish(js, upserts(1, 2), activate(1, 2))
        await caught_up(away, last)
        await caught_up(staying, last)
    finally:
        await away.stop()
    try:
        last = await publish(js, upserts(2, 1), activate(2, 1), remove(2), upserts(3, 2), activate(3, 2))
        await caught_up(staying, last)
        # The absent replica's consumer expires (inactive threshold), so nothing holds the events back.
        try:
            await js.delete_consumer(natsio.STREAM_INDEX.name, "away")
        except NotFoundError:
            pass
        assert await staying.maintenance.run_once() == last
        back = await replica(js, tmp_path, "away")
        try:
            assert back.get().state.watermark == last
            assert await documents(back) == await documents(staying)
            assert sorted(v[1:3] for v in (await documents(back)).values()) == [(3, True), (3, True)]
        finally:
            await back.stop()
    finally:
        await staying.stop()
