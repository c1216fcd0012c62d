"""Hostile tenants, principals and processes against the whole system (`ragmesh up`, real
processes): two tenants whose principals share names, writers and readers who may not read each
other's documents, an admin reaching into another tenant, a process on the machine talking to
NATS directly. Every path gets nothing, checked record by record afterwards."""

import asyncio
import json
import os
import stat
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import grpc
import nats
import nats.errors
import pytest
from helpers import free_port_block
from reflection import reflect

from rag.v1 import gateway_pb2, ingest_pb2, ingest_pb2_grpc, types_pb2
from services.cli.local import nats_passwords

from .system import System, cli

pytestmark = pytest.mark.e2e

R, W, A, OP = gateway_pb2.ROLE_READER, gateway_pb2.ROLE_WRITER, gateway_pb2.ROLE_ADMIN, gateway_pb2.ROLE_OPERATOR
LIMITS = {
    "metered": {"query_rate": 0.001, "query_burst": 3},
    "budget": {"daily_llm_tokens": 100},
    "uploads": {"max_concurrent_uploads": 1},
}
MAX_BYTES = 200_000
PLAN = b"Alice's plan: the acme merger with initech closes on the ninth of March at forty dollars a share."
BOB_NOTE = b"Bob's note: the server room door code is seven-three-one-one."
HANDBOOK = b"The acme handbook: office hours are nine to five and lunch is at noon."
GLOBEX_PLAN = b"Globex plan for alice: the volcano lair opens in the spring with a monorail."


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    s = System(
        tmp_path_factory.mktemp("hostile"),
        free_port_block(),
        env={"RAGMESH_TENANT_LIMITS": json.dumps(LIMITS), "RAGMESH_MAX_DOCUMENT_BYTES": str(MAX_BYTES)},
    ).start()
    yield s
    s.stop()


def new_key(issuer, tenant: str, role: int, principals=()) -> gateway_pb2.CreateApiKeyResponse:
    request = gateway_pb2.CreateApiKeyRequest(tenant=tenant, role=role, principals=list(principals))
    return issuer.stub.CreateApiKey(request, metadata=issuer.metadata, timeout=10)


@pytest.fixture(scope="module")
def people(system):
    operator = system.client()
    keys = {
        "acme_admin": new_key(operator, "acme", A, ["acme-admins"]),
        "alice": new_key(operator, "acme", W, ["alice"]),
        "bob": new_key(operator, "acme", W, ["bob"]),
        "mallory": new_key(operator, "acme", W, ["mallory"]),
        "eve": new_key(operator, "acme", R, ["eve"]),
        "alice_reader": new_key(operator, "acme", R, ["alice"]),
        "globex_alice": new_key(operator, "globex", W, ["alice"]),  # the same principal name, another tenant
        "globex_admin": new_key(operator, "globex", A, ["globex-admins"]),
    }
    clients = {name: system.client(made.api_key) for name, made in keys.items()}
    clients["operator"] = operator
    clients["key_ids"] = {name: made.key_id for name, made in keys.items()}
    return clients


@pytest.fixture(scope="module")
def documents(people):
    jobs = {
        "plan.md": people["alice"].ingest_and_wait("plan.md", PLAN, acl=["alice"]),
        "bob-note.md": people["bob"].ingest_and_wait("bob-note.md", BOB_NOTE, acl=["bob"]),
        "handbook.md": people["alice"].ingest_and_wait("handbook.md", HANDBOOK, acl=["public"]),
        "globex-plan.md": people["globex_alice"].ingest_and_wait("globex-plan.md", GLOBEX_PLAN, acl=["alice"]),
    }
    assert {doc: job.status for doc, job in jobs.items()} == dict.fromkeys(jobs, types_pb2.JOB_STATUS_DONE)
    return jobs


def refusal(call) -> tuple[grpc.StatusCode, str]:
    try:
        result = call()
        if hasattr(result, "__iter__") and not hasattr(result, "ListFields"):
            list(result)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as exc:
        return exc.code(), exc.details()


def listed(client, include_deleted: bool = False) -> set[str]:
    request = gateway_pb2.ListDocumentsRequest(include_deleted=include_deleted)
    return {d.doc_id for d in client.stub.ListDocuments(request, metadata=client.metadata, timeout=10).documents}


def record(client, doc_id: str) -> types_pb2.DocumentRecord:
    request = gateway_pb2.GetDocumentRequest(doc_id=doc_id)
    return client.stub.GetDocument(request, metadata=client.metadata, timeout=10).document


def found(client, query: str) -> set[str]:
    return {h.chunk.doc_id for h in client.search(query, top_k=50).hits}


def test_searches_and_answers_draw_only_on_readable_documents(people, documents):
    query = "acme merger initech plan door code handbook volcano lair"
    assert found(people["alice"], query) == {"plan.md", "handbook.md"}
    assert found(people["bob"], query) == {"bob-note.md", "handbook.md"}
    assert found(people["mallory"], query) == {"handbook.md"}
    assert found(people["eve"], query) == {"handbook.md"}
    assert found(people["globex_alice"], query) == {"globex-plan.md"}  # same principal, other tenant: nothing
    for name in ("mallory", "globex_alice"):
        _, final = people[name].ask("When does the acme merger with initech close?")
        assert "ninth of March" not in final.answer and {c.doc_id for c in final.citations} <= {"handbook.md"}


def test_listings_and_reads_show_only_readable_documents(people, documents):
    assert listed(people["alice"]) == {"plan.md", "handbook.md"}
    assert listed(people["mallory"]) == listed(people["mallory"], include_deleted=True) == {"handbook.md"}
    assert listed(people["acme_admin"]) == {"handbook.md"}  # roles do not open documents; principals do
    assert listed(people["globex_alice"]) == {"globex-plan.md"}
    hidden = refusal(lambda: record(people["mallory"], "plan.md"))
    absent = refusal(lambda: record(people["mallory"], "no-such.md"))
    assert hidden == (grpc.StatusCode.NOT_FOUND, "no document 'plan.md'")  # exactly as for a missing one:
    assert absent == (grpc.StatusCode.NOT_FOUND, "no document 'no-such.md'")
    assert refusal(lambda: record(people["globex_alice"], "plan.md")) == hidden
    assert record(people["alice_reader"], "plan.md").acl == ["alice"]


def test_a_writer_cannot_delete_retry_or_replace_what_it_cannot_read(people, documents):
    before = record(people["alice"], "plan.md")
    mallory = people["mallory"]
    delete = gateway_pb2.DeleteDocumentRequest(doc_id="plan.md")
    retry = gateway_pb2.RetryDocumentRequest(doc_id="plan.md")
    assert refusal(lambda: mallory.stub.DeleteDocument(delete, metadata=mallory.metadata)) == (
        grpc.StatusCode.NOT_FOUND,
        "no document 'plan.md'",
    )
    assert refusal(lambda: mallory.stub.RetryDocument(retry, metadata=mallory.metadata)) == (
        grpc.StatusCode.NOT_FOUND,
        "no document 'plan.md'",
    )
    for content, acl in ((b"Mallory's version of the plan.", ["mallory"]), (PLAN, ["alice"]), (PLAN, ["public"])):
        code, message = refusal(lambda content=content, acl=acl: mallory.ingest("plan.md", content, acl=acl))
        assert code == grpc.StatusCode.ALREADY_EXISTS and "alice" not in message and "version" not in message
    globex = people["globex_alice"]
    assert refusal(lambda: globex.stub.DeleteDocument(delete, metadata=globex.metadata))[0] == (
        grpc.StatusCode.NOT_FOUND
    )
    after = record(people["alice"], "plan.md")
    assert after == before and after.status == types_pb2.DOCUMENT_STATUS_INDEXED and after.current_version == 1
    assert "plan.md" in found(people["alice"], "acme merger initech")


def test_jobs_show_to_readers_of_their_document_and_to_writers_of_their_tenant(people, documents):
    job_id = documents["plan.md"].job_id
    request = gateway_pb2.GetJobRequest(job_id=job_id)
    for name in ("eve", "globex_admin", "globex_alice"):
        client = people[name]
        assert refusal(lambda client=client: client.stub.GetJob(request, metadata=client.metadata)) == (
            grpc.StatusCode.NOT_FOUND,
            f"no job '{job_id}'",
        ), name
    reader = people["alice_reader"]
    assert reader.stub.GetJob(request, metadata=reader.metadata).job.doc_id == "plan.md"


def test_logged_answers_replay_and_take_ratings_only_from_their_readers(people, documents):
    _, final = people["alice"].ask("When does the acme merger with initech close?", no_cache=True)
    query_id = final.manifest.query_id
    assert "plan.md" in {h.chunk.doc_id for h in final.manifest.hits}
    replay = gateway_pb2.ReplayRequest(query_id=query_id)
    rate = gateway_pb2.FeedbackRequest(query_id=query_id, rating=-1, comment="sabotage")
    for name in ("mallory", "eve", "bob", "globex_alice", "acme_admin", "operator"):
        client = people[name]
        for call in (
            lambda client=client: client.stub.Replay(replay, metadata=client.metadata, timeout=30),
            lambda client=client: client.stub.Feedback(rate, metadata=client.metadata, timeout=10),
        ):
            assert refusal(call) == (grpc.StatusCode.NOT_FOUND, f"no logged answer '{query_id}' for this key"), name
    reader = people["alice_reader"]
    shown = reader.stub.Replay(replay, metadata=reader.metadata, timeout=30)
    assert shown.original.question.startswith("When does") and shown.original.feedback_rating == 0
    reader.stub.Feedback(gateway_pb2.FeedbackRequest(query_id=query_id, rating=1), metadata=reader.metadata)
    assert reader.stub.Replay(replay, metadata=reader.metadata, timeout=30).original.feedback_rating == 1


def test_keys_and_usage_stay_inside_their_tenant(system, people):
    admin, operator, ids = people["acme_admin"], people["operator"], people["key_ids"]
    for tenant, role in (("globex", R), ("globex", A), ("acme", OP), ("", OP)):
        assert refusal(lambda tenant=tenant, role=role: new_key(admin, tenant, role))[0] == (
            grpc.StatusCode.PERMISSION_DENIED
        ), (tenant, role)
    made = new_key(admin, "", W, ["carol"])
    assert made.tenant == "acme" and made.role == W
    mine = admin.stub.ListApiKeys(gateway_pb2.ListApiKeysRequest(), metadata=admin.metadata).keys
    assert {k.tenant for k in mine} == {"acme"} and ids["globex_admin"] not in {k.key_id for k in mine}
    theirs = gateway_pb2.ListApiKeysRequest(tenant="globex")
    assert refusal(lambda: admin.stub.ListApiKeys(theirs, metadata=admin.metadata))[0] == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    revoke = gateway_pb2.RevokeApiKeyRequest(key_id=ids["globex_admin"])
    assert refusal(lambda: admin.stub.RevokeApiKey(revoke, metadata=admin.metadata)) == (
        grpc.StatusCode.NOT_FOUND,
        f"no API key '{ids['globex_admin']}'",
    )
    assert listed(people["globex_admin"]) == set()  # still a working key
    above = new_key(operator, "acme", OP, ["ops"])
    code, message = refusal(
        lambda: admin.stub.RevokeApiKey(gateway_pb2.RevokeApiKeyRequest(key_id=above.key_id), metadata=admin.metadata)
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED and message == "an admin key cannot revoke an operator key"
    assert listed(system.client(above.api_key)) == {"handbook.md"}  # not revoked
    usage = gateway_pb2.GetUsageRequest(tenant="globex")
    assert refusal(lambda: admin.stub.GetUsage(usage, metadata=admin.metadata))[0] == grpc.StatusCode.PERMISSION_DENIED
    assert operator.stub.GetUsage(usage, metadata=operator.metadata).today.tenant == "globex"
    everyone = operator.stub.ListApiKeys(gateway_pb2.ListApiKeysRequest(), metadata=operator.metadata).keys
    assert {"acme", "globex"} <= {k.tenant for k in everyone}


def test_index_generations_and_other_generations_need_an_operator(people, documents):
    admin, operator = people["acme_admin"], people["operator"]
    calls = {
        "ListIndexGenerations": gateway_pb2.ListIndexGenerationsRequest(),
        "RebuildIndex": gateway_pb2.RebuildIndexRequest(reason="hostile"),
        "EvaluateIndex": gateway_pb2.EvaluateIndexRequest(number=1, tenant="acme"),
        "PromoteIndex": gateway_pb2.PromoteIndexRequest(number=1, force=True),
        "RollbackIndex": gateway_pb2.RollbackIndexRequest(),
        "DropIndexGeneration": gateway_pb2.DropIndexGenerationRequest(number=1),
    }
    for method, request in calls.items():
        call = getattr(admin.stub, method)
        assert refusal(lambda call=call, request=request: call(request, metadata=admin.metadata))[0] == (
            grpc.StatusCode.PERMISSION_DENIED
        ), method
    other = gateway_pb2.SearchRequest(query="acme merger", generation=1)
    for name in ("acme_admin", "alice"):
        client = people[name]
        assert refusal(lambda client=client: client.stub.Search(other, metadata=client.metadata))[0] == (
            grpc.StatusCode.PERMISSION_DENIED
        )
    listing = operator.stub.ListIndexGenerations(calls["ListIndexGenerations"], metadata=operator.metadata)
    assert [g.record.number for g in listing.generations] == [1]  # nothing was built or dropped
    assert operator.stub.Search(other, metadata=operator.metadata).generation == 1


def test_principals_cannot_carry_separators(people):
    operator, alice = people["operator"], people["alice"]
    for principals in (["x,y"], ["x y"], ["x\x1fy"], [""], ["p" * 129]):
        code, message = refusal(lambda principals=principals: new_key(operator, "acme", R, principals))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "principal" in message
        code, _ = refusal(lambda principals=principals: alice.ingest("sep.md", b"text", acl=principals))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert refusal(lambda: record(alice, "sep.md"))[0] == grpc.StatusCode.NOT_FOUND


def test_the_query_cache_of_one_tenant_tells_another_nothing(people, documents):
    """A cached query embedding costs no tokens; the same words from another tenant cost the full count."""
    question = "Which monorail opens with the volcano lair this spring?"

    def embedding_tokens(name: str) -> int:
        return people[name].ask(question, no_cache=True)[1].manifest.usage.embedding_tokens

    first = embedding_tokens("alice")
    assert first > 0
    assert embedding_tokens("globex_alice") == first  # not served from acme's cache
    assert embedding_tokens("alice") == 0  # acme's own repeat is
    assert embedding_tokens("globex_alice") == 0


def test_replay_and_feedback_are_metered_like_ask(system, people):
    client = system.client(new_key(people["operator"], "metered", W, ["m"]).api_key)
    client.ingest_and_wait("m.txt", b"Meters measure water flowing through a pipe.", acl=["public"])
    _, final = client.ask("What do meters measure?")  # 1 of the burst of 3 (no refill to speak of)
    query_id = final.manifest.query_id
    client.stub.Replay(gateway_pb2.ReplayRequest(query_id=query_id), metadata=client.metadata, timeout=30)
    client.stub.Feedback(gateway_pb2.FeedbackRequest(query_id=query_id, rating=1), metadata=client.metadata)
    for call in (
        lambda: client.stub.Replay(gateway_pb2.ReplayRequest(query_id=query_id), metadata=client.metadata),
        lambda: client.stub.Feedback(gateway_pb2.FeedbackRequest(query_id=query_id), metadata=client.metadata),
        lambda: client.ask("What do meters measure?"),
    ):
        code, message = refusal(call)
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "tenant metered query rate" in message


def test_replay_is_held_to_the_llm_budget_like_ask(system, people):
    client = system.client(new_key(people["operator"], "budget", W, ["b"]).api_key)
    client.ingest_and_wait("b.txt", b"Budgets cap what a tenant may spend on its language model.", acl=["public"])
    _, final = client.ask("What do budgets cap?")
    replay = gateway_pb2.ReplayRequest(query_id=final.manifest.query_id)
    spend_the_budget(system, "budget", llm_tokens=100)
    time.sleep(1.2)  # the gateway rereads shared usage once a flush interval
    for call in (
        lambda: client.ask("What do budgets cap?"),
        lambda: client.stub.Replay(replay, metadata=client.metadata),
    ):
        code, message = refusal(call)
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "daily LLM tokens budget of 100 is spent" in message
    feedback = gateway_pb2.FeedbackRequest(query_id=final.manifest.query_id, rating=1)
    assert refusal(lambda: client.stub.Feedback(feedback, metadata=client.metadata))[0] == grpc.StatusCode.OK
    assert refusal(lambda: client.search("budgets"))[0] == grpc.StatusCode.OK


def spend_the_budget(system, tenant: str, llm_tokens: int) -> None:
    """Usage recorded by another gateway replica: written into rag_usage as the gateway's NATS user."""

    async def write():
        nc = await nats.connect(
            f"nats://127.0.0.1:{system.port_base}",
            user="gateway",
            password=nats_passwords(system.data)["gateway"],
            inbox_prefix="_INBOX_gateway",
        )
        kv = await nc.jetstream().key_value("rag_usage")
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        used = gateway_pb2.UsageRecord(tenant=tenant, period=day, llm_tokens=llm_tokens)
        await kv.put(f"{tenant}.{day}", used.SerializeToString())
        await nc.close()

    asyncio.run(write())


def test_uploads_stream_through_a_bounded_number_of_slots(system, people):
    client = system.client(new_key(people["operator"], "uploads", W, ["u"]).api_key)
    release, sent_header = threading.Event(), threading.Event()

    def slow_parts():
        yield gateway_pb2.IngestDocumentRequest(header=gateway_pb2.DocumentHeader(doc_id="slow.txt", acl=["u"]))
        sent_header.set()
        release.wait(30)
        yield gateway_pb2.IngestDocumentRequest(data=b"A slow upload about tides and harbours.")

    outcome = {}

    def upload_slowly():
        outcome["r"] = refusal(lambda: client.stub.IngestDocument(slow_parts(), metadata=client.metadata))

    slow = threading.Thread(target=upload_slowly)
    slow.start()
    sent_header.wait(30)
    time.sleep(0.5)  # the gateway has the header: the upload holds the tenant's one slot
    code, message = refusal(lambda: client.ingest("second.txt", b"Second document.", acl=["u"]))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "1 uploads in flight" in message
    release.set()
    slow.join(30)
    assert outcome["r"][0] == grpc.StatusCode.OK
    assert client.ingest("second.txt", b"Second document.", acl=["u"]).version == 1

    def too_big():
        yield gateway_pb2.IngestDocumentRequest(header=gateway_pb2.DocumentHeader(doc_id="big.txt", acl=["u"]))
        for _ in range(5):
            yield gateway_pb2.IngestDocumentRequest(data=b"x" * 50_000)

    def header_twice():
        yield gateway_pb2.IngestDocumentRequest(header=gateway_pb2.DocumentHeader(doc_id="twice.txt", acl=["u"]))
        yield gateway_pb2.IngestDocumentRequest(data=b"some text")
        yield gateway_pb2.IngestDocumentRequest(header=gateway_pb2.DocumentHeader(doc_id="twice.txt", acl=["u"]))

    code, message = refusal(lambda: client.stub.IngestDocument(too_big(), metadata=client.metadata))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and f"limit of {MAX_BYTES} bytes" in message
    code, message = refusal(lambda: client.stub.IngestDocument(header_twice(), metadata=client.metadata))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "twice" in message
    assert ingest_directly(system, cut_short=True) == (grpc.StatusCode.INVALID_ARGUMENT, "cut short")
    assert ingest_directly(system, cut_short=False) == (grpc.StatusCode.INVALID_ARGUMENT, "incomplete")
    assert listed(client, include_deleted=True) == {"slow.txt", "second.txt"}  # nothing cut short was taken


def ingest_directly(system, cut_short: bool) -> tuple[grpc.StatusCode, str]:
    """A stream to ingest itself that ends early, or whose end message claims more than was sent."""

    def parts():
        header = ingest_pb2.SubmitRequest(tenant="uploads", doc_id="direct.txt", acl=["u"])
        yield ingest_pb2.SubmitStreamRequest(header=header)
        yield ingest_pb2.SubmitStreamRequest(data=b"half a document")
        if not cut_short:
            yield ingest_pb2.SubmitStreamRequest(end=ingest_pb2.SubmitStreamEnd(size_bytes=1000))

    with grpc.insecure_channel(f"127.0.0.1:{system.port_base + 2}") as channel:
        code, message = refusal(lambda: ingest_pb2_grpc.IngestServiceStub(channel).SubmitStream(parts(), timeout=10))
    return code, "cut short" if "cut short" in message else "incomplete" if "incomplete" in message else message


def nats_url(system) -> str:
    return f"nats://127.0.0.1:{system.port_base}"


def test_nats_refuses_strangers_and_keeps_each_service_to_its_subjects(system, people):
    operator = people["operator"]
    keys_before = operator.stub.ListApiKeys(gateway_pb2.ListApiKeysRequest(), metadata=operator.metadata).keys
    passwords = nats_passwords(system.data)

    async def attack() -> list[str]:
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(nats_url(system), allow_reconnect=False, max_reconnect_attempts=0)
        errors: list[str] = []

        async def on_error(exc):
            errors.append(str(exc))

        forged = gateway_pb2.ApiKeyRecord(key_id="forged00", tenant="globex", role=OP, key_sha256="f" * 64)
        for user, subject, payload in (
            ("ingest", "$KV.rag_keys." + "f" * 64, forged.SerializeToString()),
            ("gateway", "rag.index.globex", b"forged IndexBatch"),
            ("retrieve", "rag.jobs.globex", b"forged IngestJob"),
        ):
            nc = await nats.connect(
                nats_url(system),
                name=f"hostile-{user}",
                user=user,
                password=passwords[user],
                inbox_prefix=f"_INBOX_{user}",
                error_cb=on_error,
            )
            with pytest.raises((TimeoutError, nats.errors.TimeoutError)):
                await nc.jetstream(timeout=1).publish(subject, payload)
            await nc.close()
        return errors

    errors = asyncio.run(attack())
    assert [e.split(" to ")[1] for e in errors] == [
        '"$kv.rag_keys.' + "f" * 64 + '"',
        '"rag.index.globex"',
        '"rag.jobs.globex"',
    ]
    keys_after = operator.stub.ListApiKeys(gateway_pb2.ListApiKeysRequest(), metadata=operator.metadata).keys
    assert [k.key_id for k in keys_after] == [k.key_id for k in keys_before]
    assert listed(people["globex_alice"]) == {"globex-plan.md"}


def test_local_state_is_private(system, people):
    cli(system, "search", "handbook", "--tenant", "acme")  # makes tenant-keys.json
    data = system.data
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    secrets_ = ("admin.key", "nats-users.json", "nats.conf", "tenant-keys.json")
    assert {name: stat.S_IMODE((data / name).stat().st_mode) for name in secrets_} == dict.fromkeys(secrets_, 0o600)


@pytest.mark.parametrize(
    "offset, method",
    [
        (1, "rag.v1.GatewayService/Ask"),
        (2, "rag.v1.IngestService/SubmitStream"),
        (3, "rag.v1.EmbedService/Embed"),
        (4, "rag.v1.RetrieveService/Retrieve"),
        (5, "rag.v1.GenerateService/Generate"),
    ],
)
def test_reflection_works_on_every_service(system, offset, method):
    services, types = reflect(f"127.0.0.1:{system.port_base + offset}", method)
    assert services == {method.split("/")[0], "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}
    assert all(t.startswith("rag.v1.") for t in types)


def other_address() -> str:
    """An address that is not this machine's loopback (nothing needs to listen there)."""
    return "10.255.255.1:50051"


def said(stderr: str) -> str:
    """What the command line said, without the frame and line breaks of its error panel."""
    return " ".join(stderr.replace("│", " ").replace("╭", " ").replace("╰", " ").replace("─", " ").split())


def test_the_cli_will_not_send_a_key_in_plaintext_off_this_machine(system, people):
    env = {**os.environ, "RAGMESH_DATA_DIR": str(system.data), "RAGMESH_ADDR": other_address()}
    started = time.monotonic()
    ran = subprocess.run(
        [sys.executable, "-m", "services.cli", "search", "handbook"], env=env, capture_output=True, text=True
    )
    assert ran.returncode == 1 and "refusing to send the API key in plaintext to 10.255.255.1:50051" in said(ran.stderr)
    assert time.monotonic() - started < 30  # refused before any connection attempt, not timed out


def test_cli_ingest_stays_inside_its_folders(system, people, tmp_path):
    secret = tmp_path / "home" / ".aws" / "credentials"
    secret.parent.mkdir(parents=True)
    secret.write_text("aws_secret_access_key = hunter2-zebra")
    for root, text in (("docs", "Docs readme about tidal charts."), ("other", "Other readme about river barges.")):
        (tmp_path / "work" / root).mkdir(parents=True)
        (tmp_path / "work" / root / "README.md").write_text(text)
    docs = tmp_path / "work" / "docs"
    (docs / ".env").write_text("TOKEN=hunter2-zebra")
    (docs / ".git").mkdir()
    (docs / ".git" / "config").write_text("hunter2-zebra")
    (docs / "notes.md").symlink_to(secret)
    alice = people["alice"]
    key = alice.metadata[0][1]
    args = ["ingest", str(docs), str(tmp_path / "work" / "other")]
    refused = subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env={**os.environ, "RAGMESH_DATA_DIR": str(system.data), "RAGMESH_API_KEY": key},
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2 and "say who may read the documents: --acl PRINCIPAL" in said(refused.stderr)
    summary = json.loads(cli(system, *args, "--acl", "alice", "--meta", "team=red", "--wait", "--json", key=key))
    assert summary["indexed"] == 2 and not summary["rejected"] and not summary["failed"]
    assert {s["path"].rsplit("/", 1)[-1] for s in summary["skipped"]} == {".env", ".git", "notes.md"}
    assert {"docs/README.md", "other/README.md"} <= listed(alice)
    shown = record(alice, "docs/README.md")
    assert list(shown.acl) == ["alice"] and dict(shown.metadata) == {"team": "red"}
    assert not any("hunter2" in h.chunk.text for h in alice.search("hunter2-zebra aws secret token", top_k=50).hits)
    assert "docs/README.md" not in listed(people["mallory"])


def test_services_never_overstep_their_nats_permissions(system, people, documents):
    """After all the traffic above, the only violations NATS logged are the hostile connections'."""
    log = (system.data / "logs" / "nats.log").read_text()
    violations = [line for line in log.splitlines() if "Violation" in line]
    assert violations and all("python3:hostile-" in line for line in violations), violations
