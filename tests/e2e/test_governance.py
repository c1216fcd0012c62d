"""Gateway governance through the real system: roles, expiry, revocation, rate limits, budgets,
usage, and one tenant's flood not starving another (asserted by counts, not times)."""

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from helpers import free_port_block
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.v1 import gateway_pb2, types_pb2

from .system import System

pytestmark = pytest.mark.e2e

LIMITS = {
    "tight": {"query_rate": 1, "query_burst": 2, "ingest_rate": 0.2, "ingest_burst": 1, "daily_embedding_tokens": 20},
    "flood": {
        "max_concurrent_queries": 2,
        "query_rate": 1000,
        "query_burst": 1000,
        "key_query_rate": 1000,
        "key_query_burst": 1000,
    },
    "calm": {"max_concurrent_queries": 2},
}
R, W, A, OP = gateway_pb2.ROLE_READER, gateway_pb2.ROLE_WRITER, gateway_pb2.ROLE_ADMIN, gateway_pb2.ROLE_OPERATOR


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    s = System(
        tmp_path_factory.mktemp("governance"),
        free_port_block(),
        env={
            "RAGMESH_TENANT_LIMITS": json.dumps(LIMITS),
            "RAGMESH_REQUEST_TIMEOUT_SECONDS": "5",
            "RAGMESH_METHOD_DEADLINES": json.dumps({"Ask": 4}),
            "RAGMESH_TRACE_CONTENT": "true",
        },
    ).start()
    yield s
    s.stop()


def code_of(call) -> grpc.StatusCode:
    try:
        result = call()
        if hasattr(result, "__iter__") and not hasattr(result, "ListFields"):
            list(result)
        return grpc.StatusCode.OK
    except grpc.RpcError as exc:
        return exc.code()


def header_stream(doc_id: str):
    return iter([gateway_pb2.IngestDocumentRequest(header=gateway_pb2.DocumentHeader(doc_id=doc_id))])


CALLS = {  # method -> a request whose downstream answer is cheap (an error past the role check is fine)
    "Search": lambda c: c.stub.Search(gateway_pb2.SearchRequest(query=""), metadata=c.metadata),
    "Ask": lambda c: c.stub.Ask(gateway_pb2.AskRequest(question=""), metadata=c.metadata),
    "GetJob": lambda c: c.stub.GetJob(gateway_pb2.GetJobRequest(job_id="none"), metadata=c.metadata),
    "GetDocument": lambda c: c.stub.GetDocument(gateway_pb2.GetDocumentRequest(doc_id="none"), metadata=c.metadata),
    "ListDocuments": lambda c: c.stub.ListDocuments(gateway_pb2.ListDocumentsRequest(), metadata=c.metadata),
    "GetUsage": lambda c: c.stub.GetUsage(gateway_pb2.GetUsageRequest(), metadata=c.metadata),
    "IngestDocument": lambda c: c.stub.IngestDocument(header_stream(""), metadata=c.metadata),
    "DeleteDocument": lambda c: c.stub.DeleteDocument(
        gateway_pb2.DeleteDocumentRequest(doc_id="none"), metadata=c.metadata
    ),
    "RetryDocument": lambda c: c.stub.RetryDocument(
        gateway_pb2.RetryDocumentRequest(doc_id="none"), metadata=c.metadata
    ),
    "CreateApiKey": lambda c: c.stub.CreateApiKey(
        gateway_pb2.CreateApiKeyRequest(tenant="Not Valid"), metadata=c.metadata
    ),
    "ListApiKeys": lambda c: c.stub.ListApiKeys(gateway_pb2.ListApiKeysRequest(), metadata=c.metadata),
    "Replay": lambda c: c.stub.Replay(gateway_pb2.ReplayRequest(query_id="none"), metadata=c.metadata),
    "Feedback": lambda c: c.stub.Feedback(gateway_pb2.FeedbackRequest(query_id="none", rating=9), metadata=c.metadata),
    "RevokeApiKey": lambda c: c.stub.RevokeApiKey(gateway_pb2.RevokeApiKeyRequest(key_id="none"), metadata=c.metadata),
    "ListIndexGenerations": lambda c: c.stub.ListIndexGenerations(
        gateway_pb2.ListIndexGenerationsRequest(), metadata=c.metadata
    ),
    "RebuildIndex": lambda c: c.stub.RebuildIndex(  # chunks too small: refused before anything is made
        gateway_pb2.RebuildIndexRequest(chunking=types_pb2.Chunking(target_tokens=1)), metadata=c.metadata
    ),
    "EvaluateIndex": lambda c: c.stub.EvaluateIndex(gateway_pb2.EvaluateIndexRequest(number=999), metadata=c.metadata),
    "PromoteIndex": lambda c: c.stub.PromoteIndex(gateway_pb2.PromoteIndexRequest(number=999), metadata=c.metadata),
    "RollbackIndex": lambda c: c.stub.RollbackIndex(gateway_pb2.RollbackIndexRequest(), metadata=c.metadata),
    "DropIndexGeneration": lambda c: c.stub.DropIndexGeneration(
        gateway_pb2.DropIndexGenerationRequest(number=999), metadata=c.metadata
    ),
}
NEEDS = {  # the least role of each method
    "Replay": R,
    "Feedback": R,
    "Search": R,
    "Ask": R,
    "GetJob": R,
    "GetDocument": R,
    "ListDocuments": R,
    "GetUsage": R,
    "IngestDocument": W,
    "DeleteDocument": W,
    "RetryDocument": W,
    "CreateApiKey": A,
    "ListApiKeys": A,
    "RevokeApiKey": A,
    "ListIndexGenerations": OP,
    "RebuildIndex": OP,
    "EvaluateIndex": OP,
    "PromoteIndex": OP,
    "RollbackIndex": OP,
    "DropIndexGeneration": OP,
}
METHODS = [m.name for m in gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"].methods]


def test_role_matrix(system):
    """Every method of the public API (read from its descriptor: a new method without a row here
    fails) called with a key of every role."""
    assert set(CALLS) == set(NEEDS) == set(METHODS)
    admin = system.client()
    clients = {role: system.client(admin.create_key("roles", role=role)) for role in (R, W, A, OP)}
    for method in METHODS:
        for role, client in clients.items():
            code = code_of(lambda method=method, client=client: CALLS[method](client))
            if role < NEEDS[method]:
                assert code == grpc.StatusCode.PERMISSION_DENIED, (method, role, code)
            else:
                assert code not in (
                    grpc.StatusCode.PERMISSION_DENIED,
                    grpc.StatusCode.UNAUTHENTICATED,
                    grpc.StatusCode.INTERNAL,
                    grpc.StatusCode.UNKNOWN,
                ), (method, role, code)
    generations = admin.stub.ListIndexGenerations(gateway_pb2.ListIndexGenerationsRequest(), metadata=admin.metadata)
    assert [g.record.number for g in generations.generations] == [1]  # the refused rebuilds made nothing


def test_expired_and_revoked_keys(system):
    admin = system.client()
    short = admin.stub.CreateApiKey(
        gateway_pb2.CreateApiKeyRequest(tenant="keys", role=R, ttl_seconds=1), metadata=admin.metadata
    )
    client = system.client(short.api_key)
    assert (
        code_of(lambda: client.stub.ListDocuments(gateway_pb2.ListDocumentsRequest(), metadata=client.metadata))
        == grpc.StatusCode.OK
    )
    time.sleep(1.2)
    with pytest.raises(grpc.RpcError) as error:
        client.stub.ListDocuments(gateway_pb2.ListDocumentsRequest(), metadata=client.metadata)
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED and "expired" in error.value.details()
    keep = admin.stub.CreateApiKey(gateway_pb2.CreateApiKeyRequest(tenant="keys", role=R), metadata=admin.metadata)
    listed = admin.stub.ListApiKeys(gateway_pb2.ListApiKeysRequest(tenant="keys"), metadata=admin.metadata).keys
    assert {k.key_id for k in listed} == {short.key_id, keep.key_id} and not any(k.key_sha256 for k in listed)
    admin.stub.RevokeApiKey(gateway_pb2.RevokeApiKeyRequest(key_id=keep.key_id), metadata=admin.metadata)
    with pytest.raises(grpc.RpcError) as error:
        system.client(keep.api_key).search("anything")
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED and "revoked" in error.value.details()


def test_rate_limits_name_the_limit_and_when_to_retry(system):
    client = system.client(system.client().create_key("tight"))
    results = [code_of(lambda: client.search("granite")) for _ in range(4)]
    assert results[:2] == [grpc.StatusCode.OK] * 2 and grpc.StatusCode.RESOURCE_EXHAUSTED in results[2:]
    with pytest.raises(grpc.RpcError) as error:
        client.search("granite")
    assert "query rate" in error.value.details()
    assert int(dict(error.value.trailing_metadata())["retry-after-ms"]) > 0
    time.sleep(2.1)
    assert code_of(lambda: client.search("granite")) == grpc.StatusCode.OK


def test_ingestion_budget_and_rate_then_usage(system):
    client = system.client(system.client().create_key("tight"))
    job = client.ingest_and_wait("rock.txt", b"Granite is a coarse-grained igneous rock made of quartz and feldspar.")
    assert job.status == types_pb2.JOB_STATUS_DONE
    with pytest.raises(grpc.RpcError) as error:
        client.ingest("second.txt", b"Basalt is fine-grained.")
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "ingest rate" in error.value.details() or "embedding tokens budget" in error.value.details()
    time.sleep(5.2)  # the ingest bucket refills; the daily embedding budget (20 tokens) does not
    with pytest.raises(grpc.RpcError) as error:
        client.ingest("second.txt", b"Basalt is fine-grained.")
    assert "daily ingestion embedding tokens budget" in error.value.details() and "resets in" in error.value.details()
    usage = client.stub.GetUsage(gateway_pb2.GetUsageRequest(), metadata=client.metadata)
    assert usage.today.embedding_tokens >= 20 and usage.today.documents == 1 and usage.this_month.documents == 1
    assert json.loads(usage.limits_json)["daily_embedding_tokens"] == 20
    with pytest.raises(grpc.RpcError) as error:
        client.stub.GetUsage(gateway_pb2.GetUsageRequest(tenant="calm"), metadata=client.metadata)
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_a_flooding_tenant_cannot_starve_another(system):
    admin = system.client()
    flood = system.client(admin.create_key("flood", role=W))
    calm = system.client(admin.create_key("calm", role=W))
    flood.ingest_and_wait("f.txt", b"Lighthouses guide ships along rocky coasts at night.")
    calm.ingest_and_wait("c.txt", b"Orchards of apple trees bloom in spring.")

    def flood_ask(_):
        return code_of(lambda: flood.ask("What do lighthouses guide?"))

    with ThreadPoolExecutor(24) as pool:
        flooding = pool.map(flood_ask, range(96))
        calm_results = [code_of(lambda: calm.ask("When do apple orchards bloom?")) for _ in range(10)]
        flood_results = list(flooding)
    assert calm_results == [grpc.StatusCode.OK] * 10
    assert flood_results.count(grpc.StatusCode.RESOURCE_EXHAUSTED) > 0
    assert set(flood_results) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}


def test_every_header_field_has_a_limit(system):
    client = system.client(system.client().create_key("limits", role=W))
    too_big = [
        {"title": "t" * 1025},
        {"source_name": "s" * 1025},
        {"content_type": "c" * 257},
        {"acl": ["p"] * 65},
        {"acl": ["x" * 129]},
        {"acl": [""]},
        {"metadata": {f"k{i}": "v" for i in range(65)}},
        {"metadata": {"k" * 129: "v"}},
        {"metadata": {"k": "v" * 2049}},
    ]
    for fields in too_big:
        with pytest.raises(grpc.RpcError) as error:
            client.ingest("doc.txt", b"text", **fields)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, fields
        assert "limit" in error.value.details() or "characters" in error.value.details()


def test_a_stalled_downstream_gives_deadline_exceeded_not_a_hang(system):
    client = system.client(system.client().create_key("stall", role=W))
    client.ingest_and_wait("s.txt", b"Kilns fire clay pots at high temperature.")
    generate = json.loads((system.data / "pids.json").read_text())["generate"]
    os.kill(generate, signal.SIGSTOP)
    try:
        with pytest.raises(grpc.RpcError) as error:  # the client's deadline reaches every downstream call
            list(
                client.stub.Ask(
                    gateway_pb2.AskRequest(question="How are clay pots fired?"), metadata=client.metadata, timeout=2
                )
            )
        assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        with pytest.raises(grpc.RpcError) as error:  # no client deadline: the gateway's Ask default (4 s) applies
            list(client.stub.Ask(gateway_pb2.AskRequest(question="What do kilns fire?"), metadata=client.metadata))
        assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        os.kill(generate, signal.SIGCONT)
    _, final = client.ask("What temperature do kilns use?")
    assert final.status in (types_pb2.ANSWER_STATUS_ANSWERED, types_pb2.ANSWER_STATUS_ABSTAINED)


ALLOWED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
}
fusions = st.builds(
    types_pb2.FusionParams,
    method=st.sampled_from(["", "rrf", "minmax", "zscore", "dense", "lexical"]) | st.text(max_size=12),
    rrf_k=st.floats(allow_nan=True, allow_infinity=True),
    candidate_depth=st.integers(0, 2**32 - 1),
    dense_weight=st.floats(allow_nan=True, allow_infinity=True),
    max_per_document=st.integers(0, 2**32 - 1),
)


@pytest.fixture(scope="module")
def fuzz_client(system):
    return system.client(system.client().create_key("fuzz", role=W))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(max_size=3000), top_k=st.integers(0, 2**32 - 1), fusion=fusions)
def test_fuzzed_searches_and_questions_never_fail_internally(fuzz_client, query, top_k, fusion):
    for call in (
        lambda: fuzz_client.stub.Search(
            gateway_pb2.SearchRequest(query=query, top_k=top_k, fusion=fusion),
            metadata=fuzz_client.metadata,
            timeout=30,
        ),
        lambda: list(
            fuzz_client.stub.Ask(
                gateway_pb2.AskRequest(question=query, top_k=top_k, fusion=fusion),
                metadata=fuzz_client.metadata,
                timeout=30,
            )
        ),
    ):
        assert code_of(call) in ALLOWED


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    doc_id=st.text(max_size=600),
    title=st.text(max_size=1100),
    acl=st.lists(st.text(max_size=140), max_size=70),
    metadata=st.dictionaries(st.text(max_size=140), st.text(max_size=100), max_size=70),
    content=st.binary(max_size=2048),
)
def test_fuzzed_uploads_never_fail_internally(fuzz_client, doc_id, title, acl, metadata, content):
    parts = iter(
        [
            gateway_pb2.IngestDocumentRequest(
                header=gateway_pb2.DocumentHeader(doc_id=doc_id, title=title, acl=acl, metadata=metadata)
            ),
            gateway_pb2.IngestDocumentRequest(data=content),
        ]
    )
    assert code_of(lambda: fuzz_client.stub.IngestDocument(parts, metadata=fuzz_client.metadata, timeout=30)) in ALLOWED


def test_services_stay_healthy_after_the_fuzzing(system, fuzz_client):
    assert code_of(lambda: fuzz_client.search("anything at all")) == grpc.StatusCode.OK
    listed = fuzz_client.stub.ListDocuments(gateway_pb2.ListDocumentsRequest(), metadata=fuzz_client.metadata)
    assert all(d.status != types_pb2.DOCUMENT_STATUS_UNSPECIFIED for d in listed.documents)


def test_content_tracing_puts_the_question_on_the_span_when_switched_on(system):
    from services.cli import traces

    client = system.client(system.client().create_key("traced", role=W))
    client.ingest_and_wait("t.txt", b"Beekeepers harvest honey in late summer.")
    question = "When do beekeepers harvest honey?"
    _, final = client.ask(question)
    for _ in range(50):
        spans = [s for s in traces.load_spans(system.data / "traces") if s["trace_id"] == final.manifest.trace_id]
        ask = [s for s in spans if s["name"].endswith("GatewayService/Ask") and s["kind"] == "server"]
        if ask:
            break
        time.sleep(0.3)
    assert ask and ask[0]["attributes"]["rag.question"] == question
