"""The query audit against a real nats-server with a cluster's 1 MiB max_payload: an event too large
for one message is kept whole by reference, none is lost; a rating leaves the answer's entry alone."""

import pytest
from helpers import NatsServer

from rag.v1 import events_pb2, gateway_pb2, types_pb2
from services.common import natsio
from services.gateway.audit import REFERENCE_HEADER, AuditLog

MIB = 1024 * 1024


@pytest.fixture
async def audit(tmp_path):
    server = NatsServer(tmp_path / "nats", config="max_payload: 1MB").start()
    nc = await natsio.connect(server.url, "test")
    js = nc.jetstream()
    log = await AuditLog.open(js, nc.max_payload, retention_days=1, replicas=1)
    yield js, log
    await natsio.close(nc)
    server.stop()


def event(query_id: str, size: int) -> events_pb2.QueryAudit:
    """An answer whose serialised event is exactly `size` bytes (its retrieved chunk carries the bulk)."""
    made = events_pb2.QueryAudit(
        query_id=query_id,
        tenant="acme",
        question="What is in the big document?",
        answer="Everything.",
        manifest=types_pb2.AnswerManifest(
            query_id=query_id, hits=[types_pb2.Hit(chunk=types_pb2.Chunk(chunk_id="c1", acl=["alice"], text=""))]
        ),
    )
    chunk = made.manifest.hits[0].chunk
    chunk.text = "x" * (size - made.ByteSize())
    chunk.text = "x" * (len(chunk.text) - (made.ByteSize() - size))  # less the length prefixes it grew
    assert made.ByteSize() == size
    return made


async def stream_messages(js) -> list:
    sub = await js.pull_subscribe("rag.audit.acme", stream="RAG_AUDIT")
    messages = await sub.fetch(10, timeout=2)
    await sub.unsubscribe()
    return messages


async def test_events_up_to_and_past_the_payload_limit_are_all_kept_whole(audit):
    js, log = audit
    assert log.inline_limit == MIB - 16 * 1024
    events = [event("fits", log.inline_limit), event("over", log.inline_limit + 1), event("huge", 3 * MIB)]
    for each in events:
        await log.record(each)
    for each in events:
        assert (await log.logged(each.query_id)) == each  # byte for byte, from wherever it is kept
    messages = {m.header.get("Nats-Msg-Id"): m for m in await stream_messages(js)}
    assert sorted(messages) == ["fits", "huge", "over"]
    assert events_pb2.QueryAudit.FromString(messages["fits"].data) == events[0]
    assert REFERENCE_HEADER not in messages["fits"].header
    for name in ("over", "huge"):
        published = events_pb2.QueryAudit.FromString(messages[name].data)
        assert messages[name].header[REFERENCE_HEADER] == name
        assert not published.HasField("manifest") and published.question == "What is in the big document?"
        assert len(messages[name].data) < 1024


async def test_a_rating_is_its_own_record_and_leaves_the_answer_entry_alone(audit):
    js, log = audit
    answer = event("q1", 2000)
    await log.record(answer)
    entry = await log.answers.get("q1")
    rater = gateway_pb2.ApiKeyRecord(key_id="k2", tenant="acme", principals=["bob"])
    await log.rate(answer, rater, -1, "wrong year")
    assert (await log.answers.get("q1")).revision == entry.revision  # not rewritten: its age runs on
    logged = await log.logged("q1")
    assert (logged.feedback_rating, logged.feedback_comment) == (-1, "wrong year")
    await log.rate(answer, rater, 1, "fixed")
    assert (await log.logged("q1")).feedback_rating == 1
    sub = await js.pull_subscribe("rag.audit.feedback.acme", stream="RAG_AUDIT")
    notes = [events_pb2.QueryAudit.FromString(m.data) for m in await sub.fetch(5, timeout=2)]
    assert [(n.query_id, n.key_id, n.feedback_rating) for n in notes] == [("q1", "k2", -1), ("q1", "k2", 1)]


async def test_unknown_and_malformed_query_ids_are_none(audit):
    _, log = audit
    for query_id in ("", "nope", "../x", "a.b", "a" * 65, "q1.feedback"):
        assert await log.logged(query_id) is None
