"""The policy module decides every public method: role per method (a new method without a rule
fails here), document and answer ACLs, tenant scope of keys and usage, principals' syntax."""

from pathlib import Path

import grpc
import pytest

from rag.v1 import events_pb2, gateway_pb2, types_pb2
from services.common.refusal import Refused
from services.gateway import policy
from services.gateway.policy import ADMIN, OPERATOR, READER, WRITER

ROLES = (READER, WRITER, ADMIN, OPERATOR)
METHODS = [m.name for m in gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"].methods]
README = (Path(__file__).resolve().parents[2] / "README.md").read_text()

# The least role of every method, written out here and not read from the module under test.
LEAST = {
    "IngestDocument": WRITER,
    "GetJob": READER,
    "GetDocument": READER,
    "ListDocuments": READER,
    "DeleteDocument": WRITER,
    "RetryDocument": WRITER,
    "Search": READER,
    "Ask": READER,
    "Replay": READER,
    "Feedback": READER,
    "CreateApiKey": ADMIN,
    "ListApiKeys": ADMIN,
    "RevokeApiKey": ADMIN,
    "GetUsage": READER,
    "ListIndexGenerations": OPERATOR,
    "RebuildIndex": OPERATOR,
    "EvaluateIndex": OPERATOR,
    "PromoteIndex": OPERATOR,
    "RollbackIndex": OPERATOR,
    "DropIndexGeneration": OPERATOR,
}


def key(role=READER, tenant="acme", principals=("alice",)) -> gateway_pb2.ApiKeyRecord:
    return gateway_pb2.ApiKeyRecord(key_id="k", tenant=tenant, principals=list(principals), role=role)


def refusal(call) -> grpc.StatusCode | None:
    try:
        call()
    except Refused as exc:
        return exc.code
    return None


def test_every_method_of_the_public_api_has_a_rule_and_an_expected_role():
    assert set(policy.RULES) == set(METHODS)
    assert set(LEAST) == set(METHODS), "a new method needs its row here and in the end-to-end matrix"


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(method, role):
    expected = None if ROLES.index(role) >= ROLES.index(LEAST[method]) else grpc.StatusCode.PERMISSION_DENIED
    assert refusal(lambda: policy.authorize(key(role), method)) == expected


def test_a_method_without_a_rule_and_a_key_without_a_role_are_refused():
    assert refusal(lambda: policy.authorize(key(OPERATOR), "SomethingNew")) == grpc.StatusCode.PERMISSION_DENIED
    assert refusal(lambda: policy.authorize(key(gateway_pb2.ROLE_UNSPECIFIED), "Search")) == (
        grpc.StatusCode.PERMISSION_DENIED
    )


def doc(acl, tenant="acme") -> types_pb2.DocumentRecord:
    return types_pb2.DocumentRecord(tenant=tenant, doc_id="d", acl=acl)


@pytest.mark.parametrize("role", ROLES)
def test_documents_are_read_by_acl_whatever_the_role(role):
    caller = key(role, principals=["alice", "eng"])
    assert policy.readable(caller, doc(["eng"]), "d").doc_id == "d"
    assert policy.readable(caller, doc(["public"]), "d").doc_id == "d"
    for record in (doc(["bob"]), doc([]), doc(["eng"], tenant="globex"), None):
        with pytest.raises(Refused) as absent:
            policy.readable(caller, record, "d")
        assert absent.value.code == grpc.StatusCode.NOT_FOUND and absent.value.message == "no document 'd'"
    listed = policy.visible(caller, [doc(["eng"]), doc(["bob"]), doc(["public"]), doc(["eng"], tenant="globex")])
    assert [list(r.acl) for r in listed] == [["eng"], ["public"]]


def test_a_job_shows_to_readers_of_its_document_and_to_writers():
    job = types_pb2.JobRecord(job_id="j", tenant="acme", doc_id="d")
    for role in (WRITER, ADMIN, OPERATOR):
        policy.job_readable(key(role), job, None)  # the uploader follows its upload, whatever its ACL
    policy.job_readable(key(READER), job, doc(["alice"]))
    for caller, record in ((key(READER), doc(["bob"])), (key(READER), None), (key(WRITER, tenant="globex"), None)):
        assert refusal(lambda caller=caller, record=record: policy.job_readable(caller, job, record)) == (
            grpc.StatusCode.NOT_FOUND
        )


def test_a_logged_answer_needs_read_access_to_every_chunk_it_drew_on():
    def audit(*acls, tenant="acme"):
        hits = [types_pb2.Hit(chunk=types_pb2.Chunk(acl=acl)) for acl in acls]
        return events_pb2.QueryAudit(query_id="q", tenant=tenant, manifest=types_pb2.AnswerManifest(hits=hits))

    alice = key(principals=["alice"])
    assert policy.answer_readable(alice, audit(["alice"], ["public"]), "q").query_id == "q"
    assert policy.answer_readable(alice, audit(), "q").query_id == "q"
    for hidden in (audit(["alice"], ["bob"]), audit(["alice"], tenant="globex"), None):
        assert refusal(lambda hidden=hidden: policy.answer_readable(alice, hidden, "q")) == grpc.StatusCode.NOT_FOUND


def test_only_an_operator_searches_another_generation():
    for role in (READER, WRITER, ADMIN):
        assert refusal(lambda role=role: policy.searchable_generation(key(role), 2)) == (
            grpc.StatusCode.PERMISSION_DENIED
        )
        assert refusal(lambda role=role: policy.searchable_generation(key(role), 0)) is None
    assert refusal(lambda: policy.searchable_generation(key(OPERATOR), 2)) is None


def test_an_admin_acts_on_its_own_tenant_only():
    admin = key(ADMIN)
    assert policy.new_key(admin, gateway_pb2.CreateApiKeyRequest(tenant="acme", role=WRITER)) == ("acme", WRITER)
    assert policy.new_key(admin, gateway_pb2.CreateApiKeyRequest(role=ADMIN)) == ("acme", ADMIN)
    for request in (
        gateway_pb2.CreateApiKeyRequest(tenant="globex", role=READER),
        gateway_pb2.CreateApiKeyRequest(tenant="acme", role=OPERATOR),
    ):
        assert refusal(lambda request=request: policy.new_key(admin, request)) == grpc.StatusCode.PERMISSION_DENIED
    assert policy.key_listing_scope(admin, "") == "acme"
    assert refusal(lambda: policy.key_listing_scope(admin, "globex")) == grpc.StatusCode.PERMISSION_DENIED
    assert refusal(lambda: policy.tenant_scope(key(READER), "globex", "usage")) == grpc.StatusCode.PERMISSION_DENIED
    theirs = gateway_pb2.ApiKeyRecord(key_id="g1", tenant="globex", role=READER)
    assert refusal(lambda: policy.revocable(admin, theirs, "g1")) == grpc.StatusCode.NOT_FOUND
    assert refusal(lambda: policy.revocable(admin, None, "g1")) == grpc.StatusCode.NOT_FOUND
    ours = gateway_pb2.ApiKeyRecord(key_id="a1", tenant="acme", role=ADMIN)
    assert policy.revocable(admin, ours, "a1") is ours
    above = gateway_pb2.ApiKeyRecord(key_id="o1", tenant="acme", role=OPERATOR)
    assert refusal(lambda: policy.revocable(admin, above, "o1")) == grpc.StatusCode.PERMISSION_DENIED


def test_an_operator_acts_across_tenants():
    operator = key(OPERATOR, tenant="default")
    request = gateway_pb2.CreateApiKeyRequest(tenant="globex", role=OPERATOR)
    assert policy.new_key(operator, request) == ("globex", OPERATOR)
    assert policy.key_listing_scope(operator, "") == "" and policy.key_listing_scope(operator, "acme") == "acme"
    assert policy.tenant_scope(operator, "acme", "usage") == "acme"
    theirs = gateway_pb2.ApiKeyRecord(key_id="g1", tenant="globex")
    assert policy.revocable(operator, theirs, "g1") is theirs


@pytest.mark.parametrize(
    "principals, problem",
    [
        (["alice", "group:eng", "a.b@example.com", "x_y-z"], ""),
        (["x,y"], "principal 'x,y' must be"),
        (["two words"], "must be"),
        (["tab\there"], "must be"),
        (["unit\x1fsep"], "must be"),
        ([""], "must be"),
        (["p" * 129], "must be"),
        (["é"], "must be"),
        ([f"p{i}" for i in range(65)], "65 principals; the limit is 64"),
    ],
)
def test_principals_are_single_tokens_within_limits(principals, problem):
    found = policy.principals_problem(principals, "principals")
    assert (problem in found) if problem else found == ""
    request = gateway_pb2.CreateApiKeyRequest(principals=principals)
    expected = grpc.StatusCode.INVALID_ARGUMENT if problem else None
    assert refusal(lambda: policy.new_key(key(ADMIN), request)) == expected


def test_the_readme_shows_the_policy_table():
    from scripts.policy_table import table

    assert table() in README
