"""The whole system as separate processes (`ragmesh up`), driven through the gateway only."""

import os
import shlex
import subprocess
import time
import urllib.request

import grpc
import pytest
from helpers import free_port_block

from rag.v1 import gateway_pb2, retrieve_pb2, retrieve_pb2_grpc, types_pb2
from services.cli.welcome import EXAMPLE_FOLDER

from .system import System, cli, cli_json

pytestmark = pytest.mark.e2e

PANDAS_V1 = b"""# Red panda
The red panda is a small mammal native to the eastern Himalayas and southwestern China.

## Diet
Red pandas eat mostly bamboo leaves, but also fruit, acorns and insects.
"""
PANDAS_V2 = b"""# Red panda
The red panda is a small mammal native to the eastern Himalayas and southwestern China.

## Diet
Red pandas feed chiefly on eucalyptus shoots in captivity studies of 2026.
"""
K8S = (
    b"<html><head><title>Kubernetes</title></head><body><nav>Docs | Blog</nav><h1>Kubernetes</h1>"
    b"<p>Kubernetes schedules containers onto nodes. A pod is the smallest deployable unit.</p></body></html>"
)
VOLCANO = b"Mount Etna is an active stratovolcano on the east coast of Sicily, Italy. It erupts often."
SECRET = b"The globex launch code for project nightingale is zebra-forty-two."


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    s = System(tmp_path_factory.mktemp("ragmesh"), free_port_block()).start()
    s.welcome = s.printed(6)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def acme(system):
    client = system.client(system.client().create_key("acme", principals=["alice"]))
    for doc_id, content in [("pandas.md", PANDAS_V1), ("k8s.html", K8S), ("etna.txt", VOLCANO)]:
        assert client.ingest_and_wait(doc_id, content, source_name=doc_id).status == types_pb2.JOB_STATUS_DONE
    return client


@pytest.fixture(scope="module")
def globex(system):
    client = system.client(system.client().create_key("globex"))
    assert client.ingest_and_wait("secret.txt", SECRET).status == types_pb2.JOB_STATUS_DONE
    return client


def doc_ids(response) -> set[str]:
    return {h.chunk.doc_id for h in response.hits}


def test_ready_is_followed_by_what_to_type_next_and_those_commands_work(system, tmp_path):
    """The lines after `ready`, typed as printed in another terminal (the example folder being one
    of ours): a folder is ingested and the question answered from it."""
    intro, ingest, ask, trace, where, stop = system.welcome
    assert intro == "next, in another terminal:" and stop == "Ctrl-C stops everything."
    assert where == f"logs: {system.data / 'logs'}/<service>.log   traces: {system.data / 'traces' / 'spans.jsonl'}"
    assert (system.data / "logs" / "gateway.log").exists() and (system.data / "traces" / "spans.jsonl").parent.is_dir()
    folder = tmp_path / "handbook"
    folder.mkdir()
    (folder / "on-call.md").write_text(
        "# On-call\nWe rotate the on-call schedule every Monday at 09:00: "
        "the next engineer on the list takes the pager.\n"
    )

    def run(line: str) -> str:
        words = [folder.as_posix() if w == EXAMPLE_FOLDER else w for w in shlex.split(line.split("#")[0])]
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAGMESH_")}
        return subprocess.run(words, env=env, check=True, capture_output=True, text=True, cwd=tmp_path).stdout

    assert "submitted 1 (0 unchanged), rejected 0, left out 0, indexed 1, failed 0" in run(ingest)
    answered = run(ask)
    assert "rotate the on-call schedule every Monday" in answered and "handbook/on-call.md" in answered
    assert "GatewayService/Ask" in run(trace)


def test_answerable_question_is_answered_citing_the_right_document(acme):
    deltas, final = acme.ask("What do red pandas eat?")
    assert final.status == types_pb2.ANSWER_STATUS_ANSWERED
    assert "bamboo" in final.answer
    assert "".join(deltas) == final.answer
    assert final.citations and final.citations[0].doc_id == "pandas.md"
    assert final.citations[0].chunk_id in {h.chunk.chunk_id for h in final.manifest.hits}
    manifest = final.manifest
    assert manifest.index_watermark > 0 and manifest.query_id
    assert manifest.embedding_model_id.startswith("all-MiniLM-L6-v2@sha256:8199be6f")
    assert manifest.chunker_version and manifest.prompt_template_version
    assert manifest.index_generation == f"g1/all-MiniLM-L6-v2@8199be6f/{manifest.chunker_version}/schema-5"
    # What the fusion decided for this question, and what it saw, is kept for replay.
    decision = manifest.fusion.decision
    assert manifest.fusion.method == "auto" and decision.reason == "scores" and decision.query_language == "en"
    assert decision.method == "minmax" and 0.0 <= decision.dense_weight <= 0.95 and decision.dense_informative
    assert manifest.fusion.rerank.status == "off"


def test_unanswerable_question_abstains(acme):
    _, final = acme.ask("Who won the 1998 football world cup final?")
    assert final.status == types_pb2.ANSWER_STATUS_ABSTAINED
    assert final.abstain_reason != types_pb2.ABSTAIN_REASON_UNSPECIFIED
    assert not final.citations and not final.answer


def test_search_reports_every_score(acme):
    response = acme.search("smallest deployable unit of containers", top_k=5)
    top = response.hits[0]
    assert top.chunk.doc_id == "k8s.html"
    assert top.dense_matched and top.lexical_matched and top.dense_rank >= 1 and top.lexical_rank >= 1
    assert top.lexical_score > 0 and top.dense_score > 0.3
    assert response.index_watermark > 0 and response.embedding_model_id
    decision = response.fusion.decision
    assert response.fusion.method == "auto" and decision.analysed_as == ["en"] and decision.lexical_top > 0
    assert not top.reranked and response.fusion.rerank.status == "off"


def test_each_retriever_gives_as_many_candidates_as_asked(system, acme):
    fusion = types_pb2.FusionParams(method="rrf", dense_depth=1, lexical_depth=2)
    request = gateway_pb2.SearchRequest(query="red pandas, containers and a volcano", top_k=10, fusion=fusion)
    response = acme.stub.Search(request, metadata=acme.metadata, timeout=30)
    assert (response.fusion.dense_depth, response.fusion.lexical_depth, response.fusion.candidate_depth) == (1, 2, 100)
    assert sum(h.dense_matched for h in response.hits) == 1 and sum(h.lexical_matched for h in response.hits) == 2
    assert len(response.hits) >= 2
    key = acme.metadata[0][1]
    found = cli_json(
        system, "search", "red pandas and a volcano", "--lexical-depth", "1", "--fusion", "lexical", key=key
    )
    assert found["fusion"]["lexical_depth"] == 1 and found["fusion"]["method"] == "lexical" and len(found["hits"]) == 1


def test_same_bytes_are_deduplicated(acme):
    response = acme.ingest("etna.txt", VOLCANO)
    assert response.deduplicated and response.version == 1


def test_changed_document_replaces_its_old_chunks(acme):
    job = acme.ingest_and_wait("pandas.md", PANDAS_V2)
    assert job.status == types_pb2.JOB_STATUS_DONE and job.version == 2
    hits = [
        h for h in acme.search("red panda bamboo leaves acorns insects", top_k=20).hits if h.chunk.doc_id == "pandas.md"
    ]
    assert hits and all(h.chunk.version == 2 for h in hits)
    assert not any("bamboo" in h.chunk.text for h in hits)
    record = acme.stub.GetDocument(gateway_pb2.GetDocumentRequest(doc_id="pandas.md"), metadata=acme.metadata).document
    assert [v.version for v in record.versions] == [1, 2] and record.indexed_version == 2
    assert record.status == types_pb2.DOCUMENT_STATUS_INDEXED


def test_deleted_document_is_never_returned(acme, system):
    acme.stub.DeleteDocument(gateway_pb2.DeleteDocumentRequest(doc_id="k8s.html"), metadata=acme.metadata)
    for _ in range(100):
        if "k8s.html" not in doc_ids(acme.search("Kubernetes pod smallest deployable unit")):
            break
        time.sleep(0.1)  # the removal is applied from the index stream, after the call returns
    assert "k8s.html" not in doc_ids(acme.search("Kubernetes pod smallest deployable unit", top_k=50))
    record = acme.stub.GetDocument(gateway_pb2.GetDocumentRequest(doc_id="k8s.html"), metadata=acme.metadata).document
    assert record.status == types_pb2.DOCUMENT_STATUS_DELETED


def test_tenants_never_see_each_others_chunks(acme, globex):
    assert "secret.txt" in doc_ids(globex.search("globex launch code nightingale"))
    assert not any(h.chunk.tenant != "acme" for h in acme.search("globex launch code nightingale", top_k=50).hits)
    _, final = acme.ask("What is the globex launch code for project nightingale?")
    assert all(c.doc_id != "secret.txt" for c in final.citations)
    assert not any(h.chunk.tenant != "globex" for h in globex.search("red panda bamboo", top_k=50).hits)


def test_acl_hides_documents_from_other_principals(system, acme):
    bob_doc = b"Bob's private note: the quarterly budget for the aquarium is nine thousand euros."
    assert acme.ingest_and_wait("bob.txt", bob_doc, acl=["bob"]).status == types_pb2.JOB_STATUS_DONE
    assert "bob.txt" not in doc_ids(acme.search("aquarium quarterly budget", top_k=50))
    bob = system.client(system.client().create_key("acme", role=gateway_pb2.ROLE_READER, principals=["bob"]))
    assert "bob.txt" in doc_ids(bob.search("aquarium quarterly budget"))


def test_bad_keys_and_roles_are_rejected(system, acme):
    for key in ["", "rmk_not-a-real-key"]:
        with pytest.raises(grpc.RpcError) as error:
            system.client(key).search("anything")
        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
    reader = system.client(system.client().create_key("acme", role=gateway_pb2.ROLE_READER))
    with pytest.raises(grpc.RpcError) as error:
        reader.ingest("x.txt", b"text")
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as error:
        acme.create_key("acme")
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_bad_input_gets_a_precise_status_and_loses_nothing_else(acme):
    with pytest.raises(grpc.RpcError) as error:
        acme.search("", top_k=5)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as error:
        acme.search("ok", top_k=100000)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    failed = acme.ingest_and_wait("noise.bin", bytes(range(256)) * 64)
    assert failed.status == types_pb2.JOB_STATUS_FAILED and "binary" in failed.error
    record = acme.stub.GetDocument(gateway_pb2.GetDocumentRequest(doc_id="noise.bin"), metadata=acme.metadata).document
    assert record.status == types_pb2.DOCUMENT_STATUS_FAILED and "binary" in record.versions[-1].error
    after = acme.ingest_and_wait("after.txt", b"Basalt columns form when thick lava flows cool slowly.")
    assert after.status == types_pb2.JOB_STATUS_DONE


def test_cli_json_output(system, acme):
    key = acme.metadata[0][1]
    asked = cli_json(system, "ask", "Where is Mount Etna?", key=key)
    assert asked["status"] == "answered" and asked["citations"][0]["doc_id"] == "etna.txt"
    for field in ("answer", "confidence", "query_id", "index_watermark", "model_id"):
        assert field in asked
    assert {"doc_id", "chunk_id", "score"} <= set(asked["citations"][0])
    found = cli_json(system, "search", "stratovolcano Sicily", "--top-k", "3", key=key)
    assert found["hits"][0]["doc_id"] == "etna.txt"
    assert {"doc_id", "chunk_id", "score", "dense_score", "lexical_score"} <= set(found["hits"][0])


def wait_for_trace(system, predicate, timeout: float = 15.0) -> list[dict]:
    from services.cli import traces

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        spans = traces.load_spans(system.data / "traces")
        found = predicate(spans)
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError("the expected spans never arrived")


def test_one_trace_from_question_to_answer(system, acme):
    _, final = acme.ask("Which island is Mount Etna on?")  # not asked before: no cached answer
    assert not final.cached
    trace_id = final.manifest.trace_id
    assert len(trace_id) == 32 and set(trace_id) != {"0"}
    services = {"gateway", "retrieve", "embed", "generate"}

    def complete(spans):
        mine = [s for s in spans if s["trace_id"] == trace_id]
        ask_ended = any(s["name"] == "/rag.v1.GatewayService/Ask" and s["kind"] == "server" for s in mine)
        return mine if ask_ended and services <= {s["service"] for s in mine} else None  # the root ends last

    spans = wait_for_trace(system, complete)
    by_id = {s["span_id"]: s for s in spans}
    roots = [s for s in spans if s["parent_span_id"] not in by_id]
    assert [r["name"] for r in roots] == ["/rag.v1.GatewayService/Ask"]

    def parent(span):
        return by_id[span["parent_span_id"]]

    def server(name):
        return next(s for s in spans if s["name"] == name and s["kind"] == "server")

    retrieve = server("/rag.v1.RetrieveService/Retrieve")
    assert parent(retrieve)["service"] == "gateway" and parent(retrieve)["kind"] == "client"
    embed = server("/rag.v1.EmbedService/Embed")
    assert parent(embed)["service"] == "retrieve" and parent(embed)["kind"] == "client"
    generate = server("/rag.v1.GenerateService/Generate")
    assert parent(generate)["service"] == "gateway"
    steps = {s["name"] for s in spans}
    assert {"rag.retrieve.dense", "rag.retrieve.lexical", "rag.retrieve.fuse", "rag.generate.generate"} <= steps
    dense = next(s for s in spans if s["name"] == "rag.retrieve.dense")
    assert parent(dense)["span_id"] == retrieve["span_id"] or parent(parent(dense))["span_id"] == retrieve["span_id"]
    assert not any("Etna" in str(s["attributes"]) for s in spans), "question text must stay off spans"
    # OpenTelemetry's GenAI conventions beside the rag.* attributes: the query's embedding and the answer.
    embedded = next(s for s in spans if s["name"] == "rag.embed.embed")["attributes"]
    assert embedded["gen_ai.operation.name"] == "embeddings" and embedded["gen_ai.provider.name"] == "onnxruntime"
    assert embedded["gen_ai.request.model"] == "all-MiniLM-L6-v2"
    assert embedded["gen_ai.response.model"] == final.manifest.embedding_model_id
    assert embedded["gen_ai.usage.input_tokens"] == embedded["rag.tokens"] > 0
    assert embedded["gen_ai.embeddings.dimension.count"] == 384
    generated = next(s for s in spans if s["name"] == "rag.generate.generate")["attributes"]
    assert {k: v for k, v in generated.items() if k.startswith("gen_ai.")} == {
        "gen_ai.operation.name": "generate_content",
        "gen_ai.provider.name": "ragmesh",
        "gen_ai.request.model": "extractive",
        "gen_ai.usage.input_tokens": 0,
        "gen_ai.usage.output_tokens": 0,
    }

    shown = cli_json(system, "trace", trace_id)
    assert {"trace_id", "span_id", "parent_span_id", "service", "name", "start", "duration_ms", "attributes"} <= set(
        shown["spans"][0]
    )
    waterfall = cli(system, "trace", "--last")
    assert "GatewayService/Ask" in waterfall and "rag.retrieve.dense" in waterfall


def test_one_trace_from_upload_to_index(system, acme):
    assert (
        acme.ingest_and_wait("traced.txt", b"Tidal pools host anemones and small crabs.").status
        == types_pb2.JOB_STATUS_DONE
    )

    def ingestion(spans):
        job = [s for s in spans if s["name"] == "rag.ingest.job" and s["attributes"].get("rag.doc_id") == "traced.txt"]
        if not job:
            return None
        trace_id = job[0]["trace_id"]
        mine = [s for s in spans if s["trace_id"] == trace_id]
        applied = [
            s
            for s in spans
            if s["name"] == "rag.retrieve.apply_index_batch" and (s["trace_id"] == trace_id or trace_id in s["links"])
        ]
        return mine + applied if applied and {"gateway", "ingest", "embed"} <= {s["service"] for s in mine} else None

    spans = wait_for_trace(system, ingestion)
    names = {(s["service"], s["name"], s["kind"]) for s in spans}
    assert ("gateway", "/rag.v1.GatewayService/IngestDocument", "server") in names
    assert ("ingest", "rag.ingest.enqueue", "producer") in names
    assert ("ingest", "rag.ingest.job", "consumer") in names
    assert ("embed", "/rag.v1.EmbedService/Embed", "server") in names
    assert any(s["service"] == "retrieve" and s["kind"] == "consumer" for s in spans)
    job = next(s for s in spans if s["name"] == "rag.ingest.job")
    enqueue = next(s for s in spans if s["name"] == "rag.ingest.enqueue")
    assert job["parent_span_id"] == enqueue["span_id"], "the worker continues the submit's trace across NATS"
    # OpenTelemetry's messaging conventions on both sides of NATS, beside the rag.* attributes.
    sent, taken = enqueue["attributes"], job["attributes"]
    assert sent["messaging.system"] == taken["messaging.system"] == "nats"
    assert sent["messaging.destination.name"] == taken["messaging.destination.name"] == "rag.jobs.acme"
    assert (sent["messaging.operation.type"], taken["messaging.operation.type"]) == ("send", "process")
    assert sent["messaging.message.id"] == taken["messaging.message.id"]
    assert sent["messaging.nats.stream_sequence"] == taken["messaging.nats.stream_sequence"]
    assert taken["messaging.consumer.group.name"] == "ingest-acme" and taken["rag.doc_id"] == "traced.txt"
    applied = next(s for s in spans if s["name"] == "rag.retrieve.apply_index_batch")["attributes"]
    assert applied["messaging.operation.type"] == "process"
    assert applied["messaging.destination.name"].startswith("rag.index.")
    trace_id = job["trace_id"]

    def lifecycle(all_spans):
        found = [x for x in all_spans if x["trace_id"] == trace_id and x["name"] == "rag.ingest.lifecycle"]
        return found or None

    # DocumentIndexed is published in the document's own ingestion trace, and ingest's follower continues it.
    assert wait_for_trace(system, lifecycle)[0]["service"] == "ingest"


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def metric(text: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


def test_metrics_endpoints_move_after_traffic(system, acme):
    base = system.port_base + 10
    ports = {"gateway": base + 1, "ingest": base + 2, "embed": base + 3, "retrieve": base + 4, "generate": base + 5}
    time.sleep(1.5)  # index sizes are counted at most once a second: let them catch up with earlier tests
    before = {name: scrape(port) for name, port in ports.items()}
    job = acme.ingest_and_wait("metrics.txt", b"Kelp forests shelter sea otters along the Pacific coast.")
    acme.ask("What shelters sea otters?", no_cache=True)
    time.sleep(1.5)  # index sizes are counted at most once a second
    after = {name: scrape(port) for name, port in ports.items()}

    def delta(service: str, name: str) -> float:
        return metric(after[service], name) - metric(before[service], name)

    assert delta("gateway", "ragmesh_queries_total") == 1
    assert delta("gateway", 'ragmesh_rpc_latency_seconds_count{code="OK",method="Ask"') == 1
    assert delta("gateway", 'ragmesh_tokens_total{kind="embedding"') > 0
    assert delta("ingest", "ragmesh_ingest_chunks_total") == job.chunks_total == 1
    assert delta("ingest", 'ragmesh_ingest_jobs_total{outcome="indexing"}') == 1
    assert delta("embed", "ragmesh_embed_batch_size_count") >= 2  # the chunk (bulk) and the question
    assert metric(after["embed"], 'ragmesh_embed_queue_depth{lane="bulk"}') == 0
    assert delta("retrieve", 'ragmesh_index_events_applied_total{op="upsert"}') == 1
    assert delta("retrieve", 'ragmesh_index_events_applied_total{op="activate"}') == 1
    assert delta("retrieve", 'ragmesh_index_watermark{generation="1"}') > 0
    assert delta("retrieve", 'ragmesh_index_points{engine="dense",generation="1"}') == 1
    assert delta("retrieve", 'ragmesh_index_points{engine="lexical",generation="1"}') == 1
    assert metric(after["retrieve"], 'ragmesh_index_watermark_lag{generation="1"}') == 0
    assert metric(after["retrieve"], "ragmesh_index_active_generation ") == 1
    assert delta("generate", 'ragmesh_rpc_latency_seconds_count{code="OK",method="Generate"') == 1
    assert "ragmesh_cost_usd_total" in after["gateway"] and "ragmesh_embed_cache_requests_total" in after["embed"]
    # What the dashboard and the alerts read beside these: the batch budget, NATS's storage and streams.
    assert metric(after["embed"], "ragmesh_embed_batch_token_budget ") == 1024
    assert metric(after["ingest"], "ragmesh_nats_storage_bytes ") > 0
    # Nothing failed or dead-lettered (counted as it happens; the stream's size is read every 5 s).
    assert delta("ingest", 'ragmesh_ingest_jobs_total{outcome="failed"}') == 0
    assert delta("ingest", 'ragmesh_ingest_jobs_total{outcome="dead_lettered"}') == 0
    assert 'ragmesh_nats_stream_messages{stream="RAG_DLQ"}' in after["ingest"]
    assert "ragmesh_ingest_oldest_job_timestamp_seconds " in after["ingest"]


def test_searches_and_answers_make_only_the_calls_they_need(system, acme, globex):
    """Counted at the services' own metrics: an Ask asks retrieve for its search alone (no index
    info besides; the answer cache is keyed by what the search saw), a query is embedded once per
    tenant, and a lexical-only search is never embedded."""
    base = system.port_base + 10
    ports = {"embed": base + 3, "retrieve": base + 4}

    def calls() -> dict[str, float]:
        seen = {name: scrape(port) for name, port in ports.items()}
        return {
            method: metric(seen[service], f'ragmesh_rpc_latency_seconds_count{{code="OK",method="{method}"')
            for service, method in (("retrieve", "Retrieve"), ("retrieve", "GetIndexInfo"), ("embed", "Embed"))
        }

    def made(before: dict[str, float]) -> dict[str, float]:
        after = calls()
        return {method: after[method] - before[method] for method in after}

    before = calls()
    _, first = acme.ask("Which coast of Sicily is Mount Etna on?")
    _, again = acme.ask("Which coast of Sicily is Mount Etna on?")
    assert not first.cached and again.cached
    assert made(before) == {"Retrieve": 2, "GetIndexInfo": 0, "Embed": 1}

    before = calls()
    acme.search("Is Mount Etna an active volcano?")
    acme.search("Is Mount Etna an active volcano?")
    globex.search("Is Mount Etna an active volcano?")  # another tenant: embedded for it, not served acme's vector
    assert made(before) == {"Retrieve": 3, "GetIndexInfo": 0, "Embed": 2}

    before = calls()
    lexical = gateway_pb2.SearchRequest(
        query="Mount Etna volcano", top_k=3, fusion=types_pb2.FusionParams(method="lexical")
    )
    found = acme.stub.Search(lexical, metadata=acme.metadata, timeout=30)
    assert doc_ids(found) == {"etna.txt"}
    assert made(before) == {"Retrieve": 1, "GetIndexInfo": 0, "Embed": 0}
    # Said in the response, so the answer's gate knows there is no cosine to judge by.
    assert found.dense_skipped and not acme.search("Is Mount Etna an active volcano?").dense_skipped


def test_an_upload_is_one_call_to_ingest_with_no_record_read_before_it(system, acme):
    """Whether the caller may replace a document is decided by ingest on the record its upload
    writes over: the gateway reads no record first (counted at ingest's own metrics)."""
    port, methods = system.port_base + 12, ("SubmitStream", "GetDocumentRecord")

    def calls() -> dict[str, float]:
        lines = [line for line in scrape(port).splitlines() if line.startswith("ragmesh_rpc_latency_seconds_count{")]
        return {m: sum(float(line.rsplit(" ", 1)[1]) for line in lines if f'method="{m}"' in line) for m in methods}

    before = calls()
    acme.ingest("one-call.txt", b"Lake Baikal is the deepest lake in the world.")
    acme.ingest("one-call.txt", b"Lake Baikal is the deepest and oldest lake in the world.")
    after = calls()
    assert {m: after[m] - before[m] for m in methods} == {"SubmitStream": 2, "GetDocumentRecord": 0}


def test_a_query_the_embed_service_refuses_is_invalid_argument_not_a_missing_model(system):
    """Retrieve called directly (the gateway caps questions at 2,000 characters): the embed
    service's refusal of the text is the caller's error, not a model the generation lacks."""
    request = retrieve_pb2.RetrieveRequest(tenant="acme", query="volcano " * 3000, top_k=3)  # 24,000 characters
    with grpc.insecure_channel(f"127.0.0.1:{system.port_base + 4}") as channel:
        with pytest.raises(grpc.RpcError) as refused:
            retrieve_pb2_grpc.RetrieveServiceStub(channel).Retrieve(request, timeout=30)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details().startswith("the query cannot be embedded: text 0 has 23999 characters")


def test_answer_cache_never_serves_stale_or_foreign_answers(system, acme):
    question = "What kind of volcano is Mount Etna?"
    _, first = acme.ask(question)
    _, again = acme.ask("  what kind of VOLCANO is mount etna? ")
    assert not first.cached and again.cached and again.answer == first.answer
    assert again.manifest.query_id != first.manifest.query_id
    bob = system.client(system.client().create_key("acme", role=gateway_pb2.ROLE_READER, principals=["bob"]))
    _, other_scope = bob.ask(question)
    assert not other_scope.cached
    acme.ingest_and_wait("moved.txt", b"Glaciers carve U-shaped valleys over thousands of years.")
    _, after_change = acme.ask(question)
    assert not after_change.cached
    assert after_change.manifest.index_watermark > first.manifest.index_watermark


def test_replay_says_what_changed_and_why(system, acme, globex):
    _, final = acme.ask("When do red pandas eat eucalyptus?")
    query_id = final.manifest.query_id
    same = acme.stub.Replay(gateway_pb2.ReplayRequest(query_id=query_id), metadata=acme.metadata)
    assert list(same.changes) == [] and list(same.reasons) == [] and same.original.question.startswith("When do")
    assert same.replayed.manifest.query_id != query_id
    acme.ingest_and_wait("pandas.md", PANDAS_V2 + b"\nRed pandas also eat eucalyptus leaves when bamboo is scarce.\n")
    moved = acme.stub.Replay(gateway_pb2.ReplayRequest(query_id=query_id), metadata=acme.metadata)
    assert moved.changes and any("index watermark moved" in r for r in moved.reasons)
    with pytest.raises(grpc.RpcError) as error:
        globex.stub.Replay(gateway_pb2.ReplayRequest(query_id=query_id), metadata=globex.metadata)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    acme.stub.Feedback(
        gateway_pb2.FeedbackRequest(query_id=query_id, rating=1, comment="useful"), metadata=acme.metadata
    )
    for rating, query, code in [
        (5, query_id, grpc.StatusCode.INVALID_ARGUMENT),
        (1, "nope", grpc.StatusCode.NOT_FOUND),
    ]:
        with pytest.raises(grpc.RpcError) as error:
            acme.stub.Feedback(gateway_pb2.FeedbackRequest(query_id=query, rating=rating), metadata=acme.metadata)
        assert error.value.code() == code
    shown = cli_json(system, "replay", query_id, key=acme.metadata[0][1])
    assert shown["question"].startswith("When do") and "changes" in shown and "reasons" in shown


def test_cli_acts_for_another_tenant(system, acme, tmp_path):
    note = tmp_path / "harbour.md"
    note.write_text("# Harbour\n\nThe harbour master logs every ferry departure at dawn.\n")
    ingested = cli_json(system, "ingest", str(note), "--public", "--tenant", "cli-tenant", "--wait")
    assert ingested["indexed"] == 1 and not ingested["failed"]
    assert ingested["embedding_tokens"] >= len("The harbour master logs every ferry departure at dawn.".split())
    found = cli_json(system, "search", "ferry departure", "--tenant", "cli-tenant")
    assert found["hits"][0]["doc_id"] == "harbour.md"
    assert "harbour.md" not in doc_ids(acme.search("harbour master ferry departure", top_k=50))


def test_metadata_filters(system, acme):
    for doc_id, team, day in [("plan-a.txt", "alpha", "2025-01-10"), ("plan-b.txt", "beta", "2026-05-20")]:
        job = acme.ingest_and_wait(
            doc_id,
            f"The {team} roadmap ships the river barrage sensors.".encode(),
            metadata={"team": team, "date": day},
        )
        assert job.status == types_pb2.JOB_STATUS_DONE

    def search(*filters, start="", end=""):
        request = gateway_pb2.SearchRequest(
            query="roadmap river barrage sensors",
            top_k=20,
            metadata_filters=list(filters),
            date_range=types_pb2.DateRange(start=start, end=end),
        )
        return {h.chunk.doc_id for h in acme.stub.Search(request, metadata=acme.metadata).hits}

    assert search(types_pb2.MetadataFilter(key="team", any_of=["beta"])) == {"plan-b.txt"}
    assert search(types_pb2.MetadataFilter(key="team", any_of=["alpha", "beta"])) == {"plan-a.txt", "plan-b.txt"}
    with pytest.raises(grpc.RpcError) as error:
        search(types_pb2.MetadataFilter(key="bad key!", any_of=["x"]))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert search(start="2026-01-01") == {"plan-b.txt"}
    assert search(start="2025-01-01", end="2025-12-31") == {"plan-a.txt"}
    assert search(types_pb2.MetadataFilter(key="team", any_of=["alpha"]), start="2026-01-01") == set()
    for start, end in [("next week", ""), ("2026-02-01", "2026-01-01")]:
        with pytest.raises(grpc.RpcError) as error:
            search(start=start, end=end)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "date_range" in error.value.details()
    found = cli_json(system, "search", "roadmap river barrage", "--tenant", "acme", "--since", "2026-01-01")
    assert {h["doc_id"] for h in found["hits"]} == {"plan-b.txt"}
    found = cli_json(system, "search", "roadmap river barrage", "--tenant", "acme", "--where", "team=alpha,beta")
    assert {h["doc_id"] for h in found["hits"]} == {"plan-a.txt", "plan-b.txt"}


def test_data_survives_a_restart(system, acme):
    before = acme.search("stratovolcano Sicily").index_watermark
    assert system.stop() == 0
    system.start()
    _, final = acme.ask("Where is Mount Etna?")
    assert final.status == types_pb2.ANSWER_STATUS_ANSWERED and final.citations[0].doc_id == "etna.txt"
    assert final.manifest.index_watermark == before
    listed = acme.stub.ListDocuments(gateway_pb2.ListDocumentsRequest(), metadata=acme.metadata).documents
    assert {"pandas.md", "etna.txt"} <= {d.doc_id for d in listed}
