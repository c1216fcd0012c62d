"""The chat-completions client against a server speaking the wire format: a local one, or a real
endpoint when RAGMESH_TEST_LLM_URL (and RAGMESH_TEST_LLM_MODEL, RAGMESH_TEST_LLM_KEY) are set."""

import os
import time

import pytest
from chat_server import ChatServer

from services.generate.chat_completions import ChatCompletions, Delta, Finished, ProviderError

REAL_URL = os.environ.get("RAGMESH_TEST_LLM_URL", "")
MESSAGES = [
    {"role": "system", "content": "Answer from the sources only."},
    {
        "role": "user",
        "content": '<sources>\n<source id="1" title="Paris">\nParis is the capital of France. It lies on the '
        "Seine.\n</source>\n</sources>\n\nQuestion: What is the capital of France?",
    },
]


@pytest.fixture(scope="module")
def server():
    fake = ChatServer().start()
    yield fake
    fake.stop()


@pytest.fixture
def endpoint(server):
    """(url, model, key, fake or None): scripted misbehaviour needs the fake."""
    if REAL_URL:
        return REAL_URL, os.environ.get("RAGMESH_TEST_LLM_MODEL", ""), os.environ.get("RAGMESH_TEST_LLM_KEY", ""), None
    server.script.clear()
    return server.url, "fake-model", "secret-key", server


def scripted(endpoint):
    if endpoint[3] is None:
        pytest.skip("scripted misbehaviour needs the local server")
    return endpoint[3]


async def collect(client, deadline=None):
    deltas, finished = [], None
    async for event in client.complete(MESSAGES, 100, 0.0, deadline):
        if isinstance(event, Delta):
            deltas.append(event.text)
        else:
            assert isinstance(event, Finished)
            finished = event
    return "".join(deltas), finished, len(deltas)


@pytest.mark.parametrize("stream", [True, False])
async def test_answers_with_usage_streamed_or_not(endpoint, stream):
    url, model, key, fake = endpoint
    client = ChatCompletions(url, model, key, stream=stream)
    text, finished, pieces = await collect(client)
    await client.close()
    assert "Paris" in text and finished.reason in ("stop", "length")
    assert finished.prompt_tokens > 0 and finished.completion_tokens > 0
    assert pieces > 1 if stream else pieces == 1
    if fake:
        request = fake.requests[-1]
        assert request["authorization"] == "Bearer secret-key"
        assert request["body"]["stream"] is True if stream else "stream" not in request["body"]


async def test_429_and_5xx_are_retried_before_any_text(endpoint):
    fake = scripted(endpoint)
    fake.script.extend(["429", "503"])
    client = ChatCompletions(fake.url, "m", max_retries=3, backoff_seconds=0.01)
    text, _, _ = await collect(client)
    assert "Paris" in text and not fake.script


async def test_errors_that_retrying_cannot_fix_are_not_retried(endpoint):
    fake = scripted(endpoint)
    fake.script.extend(["400", "ok"])
    client = ChatCompletions(fake.url, "m", max_retries=3, backoff_seconds=0.01)
    with pytest.raises(ProviderError, match="HTTP 400"):
        await collect(client)
    assert list(fake.script) == ["ok"]


async def test_retries_end(endpoint):
    fake = scripted(endpoint)
    fake.script.extend(["500"] * 3)
    client = ChatCompletions(fake.url, "m", max_retries=2, backoff_seconds=0.01)
    with pytest.raises(ProviderError, match="HTTP 500"):
        await collect(client)
    assert not fake.script


async def test_malformed_chunk_is_a_provider_error(endpoint):
    fake = scripted(endpoint)
    fake.script.append("malformed")
    client = ChatCompletions(fake.url, "m", backoff_seconds=0.01)
    with pytest.raises(ProviderError, match="malformed chunk"):
        await collect(client)


async def test_missing_usage_is_reported_as_unknown(endpoint):
    fake = scripted(endpoint)
    fake.script.append("no-usage")
    client = ChatCompletions(fake.url, "m")
    _, finished, _ = await collect(client)
    assert finished.prompt_tokens is None and finished.completion_tokens is None


async def test_the_callers_deadline_cuts_a_slow_stream(endpoint):
    fake = scripted(endpoint)
    fake.script.append("slow")
    client = ChatCompletions(fake.url, "m")
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await collect(client, deadline=time.monotonic() + 0.5)
    assert time.monotonic() - started < 5  # a 20-second stream, cut
    await client.close()
