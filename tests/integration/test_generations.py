"""Index generations with a real nats-server, Qdrant Edge and Tantivy: a generation still applying the
stream refuses searches, evaluations and promotions (documents deleted or narrowed since would
still show in it) until it has caught up; a promotion needs the server's own passing verdict
against the generation active at that moment, or a force that is recorded as such."""

import asyncio

import grpc
import pytest

from rag.v1 import retrieve_pb2
from services.common import natsio
from services.common.config import RetrieveSettings
from services.retrieve.control import GenerationControl
from services.retrieve.generations import GenerationError, Generations

from .test_index_consumer import activate, publish, upserts

DIMENSION = 8


@pytest.fixture
async def control(nats_server, tmp_path):
    nc = await natsio.connect(nats_server.url, "test")
    js = nc.jetstream()
    await natsio.ensure_all(js)
    settings = RetrieveSettings(index_dir=tmp_path, ready_max_lag=0, generation_poll_seconds=0.2, instance="r1")
    generations = Generations(settings, tmp_path, DIMENSION, "r1")
    await generations.start(js)
    yield js, GenerationControl(generations)
    await generations.stop()
    await nc.close()


def refused(call) -> GenerationError:
    with pytest.raises(GenerationError) as error:
        call()
    return error.value


async def test_a_generation_catching_up_answers_nothing_until_it_has(control):
    js, ctl = control
    last = await publish(
        js, *[e for d in range(150) for e in (upserts(1, 1, doc=f"d{d}"), activate(1, 1, doc=f"d{d}"))]
    )
    await asyncio.wait_for(ctl.g.wait_caught_up(), 60)
    record = await ctl.create("a rebuild")
    error = refused(lambda: ctl.g.searchable(record.number))
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION and "still applying the index stream" in str(error)
    with pytest.raises(GenerationError) as early:
        await ctl.promote(record.number, 1, "", force=True, actor="key k1")
    assert early.value.code == grpc.StatusCode.FAILED_PRECONDITION  # not even forced
    for _ in range(400):
        if ctl.g.get(record.number).state.watermark >= last:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # the stream's length is looked at once in a while
    assert ctl.g.searchable(record.number).number == record.number


async def test_a_promotion_needs_a_passing_verdict_against_the_active_generation_or_a_recorded_force(control):
    js, ctl = control
    await publish(js, upserts(1, 1), activate(1, 1))
    await asyncio.wait_for(ctl.g.wait_caught_up(), 60)
    record = await ctl.create("candidate")
    for _ in range(400):
        if ctl.g.get(record.number).caught_up:
            break
        await asyncio.sleep(0.05)
    with pytest.raises(GenerationError, match="no evaluation against the active generation 1"):
        await ctl.promote(record.number, 1, "the client says it is better")
    failing = retrieve_pb2.Verdict(
        candidate=record.number, baseline=1, passed=False, created_unix_ms=1, summary="hybrid worse"
    )
    await ctl.record_verdict(record.number, failing)
    with pytest.raises(GenerationError, match="failed its evaluation: hybrid worse"):
        await ctl.promote(record.number, 1, "")
    stale = retrieve_pb2.Verdict(candidate=record.number, baseline=7, passed=True, created_unix_ms=1, summary="ok")
    await ctl.record_verdict(record.number, stale)  # measured against another generation
    with pytest.raises(GenerationError, match="no evaluation against the active generation 1"):
        await ctl.promote(record.number, 1, "")
    passing = retrieve_pb2.Verdict(candidate=record.number, baseline=1, passed=True, created_unix_ms=1, summary="ok")
    await ctl.record_verdict(record.number, passing)
    pointer = await ctl.promote(record.number, 1, "scheduled")
    assert (pointer.active, pointer.note) == (record.number, "evaluation passed: ok; scheduled")
    forced = await ctl.promote(1, record.number, "", force=True, actor="key k9")
    assert forced.active == 1 and forced.note == "forced by key k9 without a passing evaluation"


async def test_a_dropped_generations_number_is_never_given_again(control):
    js, ctl = control
    second = await ctl.create("a rebuild")
    third = await ctl.create("another")
    await ctl.drop(third.number)
    await ctl.drop(second.number)
    again = await ctl.create("after the drops")
    assert (second.number, third.number, again.number) == (2, 3, 4)
    assert [r.number for r in ctl.g.pointer.generations] == [1, 4]
