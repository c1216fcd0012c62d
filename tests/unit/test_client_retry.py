"""The client's retry decisions and its upload sources: what is retried, after how long, and what a
deadline or a one-way stream forbids."""

import io

import grpc
import pytest

from ragmesh_client import RetryPolicy
from ragmesh_client.requests import Source, header, pieces

EXHAUSTED, UNAVAILABLE = grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE


def test_a_rate_limit_is_retried_after_its_hint_with_jitter():
    policy = RetryPolicy(jitter=0.5)
    waits = [policy.delay(EXHAUSTED, "400", 1, remaining_s=30.0, idempotent=False) for _ in range(200)]
    assert all(0.4 <= w <= 0.6 for w in waits) and len(set(waits)) > 100  # spread: callers do not return together
    assert RetryPolicy(jitter=0).delay(EXHAUSTED, "0", 1, None, True) == 0.02  # never "now" again at once


def test_what_is_not_retried():
    policy = RetryPolicy(jitter=0)
    assert policy.delay(EXHAUSTED, None, 1, 30.0, True) is None  # no hint: a limit that will not pass soon
    assert policy.delay(EXHAUSTED, str(6 * 3600 * 1000), 1, 30.0, True) is None  # a spent budget resets in hours
    assert policy.delay(EXHAUSTED, "2000", 1, remaining_s=1.5, idempotent=True) is None  # past the deadline
    for code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INTERNAL):
        assert policy.delay(code, "10", 1, 30.0, True) is None
    assert policy.delay(UNAVAILABLE, None, 1, 30.0, idempotent=False) is None  # it may have run: not twice


def test_unavailable_backs_off_exponentially_up_to_its_attempts():
    policy = RetryPolicy(jitter=0, backoff_s=0.1, longest_backoff_s=0.5, unavailable_attempts=5)
    assert [policy.delay(UNAVAILABLE, None, n, None, True) for n in range(1, 6)] == [0.1, 0.2, 0.4, 0.5, None]


def test_a_file_is_read_afresh_for_each_attempt_and_names_the_document(tmp_path):
    path = tmp_path / "handbook.md"
    path.write_bytes(b"x" * ((1 << 20) + 5))
    source = Source(path)
    assert source.repeatable and source.name == "handbook.md"
    for _ in range(2):
        with source.open() as body:
            assert [len(p) for p in pieces(body)] == [1 << 20, 5]
    made = header(source, None, None, ["alice"], {"team": "red"}, "", None, "")
    assert (made.doc_id, made.title, made.source_name, list(made.acl)) == (
        "handbook.md",
        "handbook",
        "handbook.md",
        ["alice"],
    )
    assert dict(made.metadata) == {"team": "red"}


def test_a_seekable_stream_is_rewound_to_where_it_stood_and_a_one_way_stream_is_sent_once():
    stream = io.BytesIO(b"skipped|the document")
    stream.read(8)
    source = Source(stream)
    for _ in range(2):
        with source.open() as body:
            assert b"".join(pieces(body)) == b"the document"
    assert not stream.closed  # the caller's stream stays the caller's

    class OneWay(io.RawIOBase):
        def readable(self):
            return True

        def seekable(self):
            return False

        def readinto(self, buffer):
            return 0

    once = Source(OneWay())
    assert not once.repeatable
    with once.open():
        pass
    with pytest.raises(ValueError, match="sent once"):
        once.open()
    with pytest.raises(ValueError, match="needs a doc_id"):
        header(Source(io.BytesIO(b"x")), None, None, (), None, "", None, "")
