"""Who may do what: every public RPC is decided here, from the caller's key (tenant, principals,
role) and, for documents and logged answers, their ACL. Handlers ask; they never decide.

Roles rank reader < writer < admin < operator, each holding the rights of the ones before it.
reader, writer and admin act inside their key's tenant only; the operator is also the one role
for work across tenants (keys and usage of any tenant) and for the index generations, which hold
every tenant's documents. Roles decide which methods; ACLs decide which documents, for every role
alike: a document is readable when its ACL holds `public` or one of the caller's principals.

A document or logged answer the caller may not read does not exist for it: NOT_FOUND, with the
same message as for one that does not exist. The one thing a refusal shows is that a doc_id is
taken, when an upload would replace a document the caller cannot read (ALREADY_EXISTS).
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass

import grpc

from rag.v1 import events_pb2, gateway_pb2, types_pb2
from services.common.access import may_read
from services.common.refusal import Refused

READER, WRITER, ADMIN, OPERATOR = (
    gateway_pb2.ROLE_READER,
    gateway_pb2.ROLE_WRITER,
    gateway_pb2.ROLE_ADMIN,
    gateway_pb2.ROLE_OPERATOR,
)
RANK = {READER: 1, WRITER: 2, ADMIN: 3, OPERATOR: 4}
PRINCIPAL = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")
MAX_PRINCIPALS = 64


@dataclass(frozen=True)
class Rule:
    role: int  # the least role that may call the method
    scope: str  # what else decides, in words (the README's table)


TENANT = "its own tenant"
RULES: dict[str, Rule] = {
    "IngestDocument": Rule(WRITER, "a new doc_id; replacing a document needs read access to it (else ALREADY_EXISTS)"),
    "GetJob": Rule(READER, "read access to the job's document, or a writer key: uploaders follow their jobs"),
    "GetDocument": Rule(READER, "read access (else NOT_FOUND)"),
    "ListDocuments": Rule(READER, "only the documents the caller may read"),
    "DeleteDocument": Rule(WRITER, "read access (else NOT_FOUND)"),
    "RetryDocument": Rule(WRITER, "read access (else NOT_FOUND)"),
    "Search": Rule(READER, "hits of readable documents; a `generation` other than 0 needs an operator"),
    "Ask": Rule(READER, "answers from readable documents"),
    "Replay": Rule(READER, "read access to every document the logged answer drew on (else NOT_FOUND)"),
    "Feedback": Rule(READER, "read access to every document the logged answer drew on (else NOT_FOUND)"),
    "CreateApiKey": Rule(ADMIN, f"{TENANT}, roles up to admin; an operator: any tenant and role"),
    "ListApiKeys": Rule(ADMIN, f"{TENANT}; an operator: any tenant, or all"),
    "RevokeApiKey": Rule(ADMIN, f"keys of {TENANT} (else NOT_FOUND) up to its role; an operator: any key"),
    "GetUsage": Rule(READER, f"{TENANT}; an operator: any tenant"),
    "ListIndexGenerations": Rule(OPERATOR, "the index of every tenant"),
    "RebuildIndex": Rule(OPERATOR, "the index of every tenant"),
    "EvaluateIndex": Rule(OPERATOR, "the index of every tenant; searches the tenant the judged queries name"),
    "PromoteIndex": Rule(OPERATOR, "the index of every tenant"),
    "RollbackIndex": Rule(OPERATOR, "the index of every tenant"),
    "DropIndexGeneration": Rule(OPERATOR, "the index of every tenant"),
}


def role_name(role: int) -> str:
    return gateway_pb2.Role.Name(role).removeprefix("ROLE_").lower() if role in RANK else "unknown"


def a_key(role: int) -> str:
    name = role_name(role)
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name} key"


def at_least(caller: gateway_pb2.ApiKeyRecord, role: int) -> bool:
    return RANK.get(caller.role, 0) >= RANK[role]


def authorize(caller: gateway_pb2.ApiKeyRecord, method: str) -> None:
    """The role check of every method; a method without a rule is refused (never open by default)."""
    rule = RULES.get(method)
    if rule is None:
        raise Refused(grpc.StatusCode.PERMISSION_DENIED, f"{method} has no access rule")
    if not at_least(caller, rule.role):
        raise Refused(
            grpc.StatusCode.PERMISSION_DENIED,
            f"{method} needs {a_key(rule.role)}; this key is {role_name(caller.role)}",
        )


# -- documents -------------------------------------------------------------------------------


def no_document(doc_id: str) -> Refused:
    return Refused(grpc.StatusCode.NOT_FOUND, f"no document {doc_id!r}")


def readable(caller: gateway_pb2.ApiKeyRecord, record: types_pb2.DocumentRecord | None, doc_id: str):
    """The record when the caller may read it; otherwise NOT_FOUND, as if there were none."""
    if record is None or record.tenant != caller.tenant or not may_read(caller.principals, record.acl):
        raise no_document(doc_id)
    return record


def visible(caller: gateway_pb2.ApiKeyRecord, records: Iterable[types_pb2.DocumentRecord]) -> list:
    return [r for r in records if r.tenant == caller.tenant and may_read(caller.principals, r.acl)]


def job_needs_document(caller: gateway_pb2.ApiKeyRecord) -> bool:
    """A writer follows the jobs of its uploads, whatever ACL it gave the document (a job shows its
    progress and errors, never content); anyone else needs read access to the document. Job ids are
    random, given only to the uploader and to readers of the document."""
    return not at_least(caller, WRITER)


def job_readable(caller: gateway_pb2.ApiKeyRecord, job: types_pb2.JobRecord, record) -> None:
    hidden = job_needs_document(caller) and (record is None or not may_read(caller.principals, record.acl))
    if job.tenant != caller.tenant or hidden:
        raise Refused(grpc.StatusCode.NOT_FOUND, f"no job {job.job_id!r}")


# -- logged answers --------------------------------------------------------------------------


def answer_readable(caller: gateway_pb2.ApiKeyRecord, audit: events_pb2.QueryAudit | None, query_id: str):
    """A logged answer shows its question, answer and the chunks it drew on: readable by a caller
    of its tenant who may read every one of those chunks."""
    if (
        audit is None
        or audit.tenant != caller.tenant
        or not all(may_read(caller.principals, hit.chunk.acl) for hit in audit.manifest.hits)
    ):
        raise Refused(grpc.StatusCode.NOT_FOUND, f"no logged answer {query_id!r} for this key")
    return audit


# -- search ----------------------------------------------------------------------------------


def searchable_generation(caller: gateway_pb2.ApiKeyRecord, generation: int) -> None:
    """Generations other than the active one are compared by operators before a promotion."""
    if generation and not at_least(caller, OPERATOR):
        raise Refused(
            grpc.StatusCode.PERMISSION_DENIED,
            f"searching index generation {generation} (not the active one) needs an operator key",
        )


# -- keys and usage --------------------------------------------------------------------------


def tenant_scope(caller: gateway_pb2.ApiKeyRecord, tenant: str, what: str) -> str:
    """The tenant a request acts on: "" is the caller's own; another needs an operator."""
    if not tenant or tenant == caller.tenant:
        return caller.tenant
    if not at_least(caller, OPERATOR):
        raise Refused(grpc.StatusCode.PERMISSION_DENIED, f"{what} of another tenant needs an operator key")
    return tenant


def key_listing_scope(caller: gateway_pb2.ApiKeyRecord, tenant: str) -> str:
    """Which tenant's keys to list; "" (every tenant) only for an operator that asked for none."""
    if not tenant and at_least(caller, OPERATOR):
        return ""
    return tenant_scope(caller, tenant, "the API keys")


def new_key(caller: gateway_pb2.ApiKeyRecord, request: gateway_pb2.CreateApiKeyRequest) -> tuple[str, int]:
    """(tenant, role) of a key the caller asks for: no role above its own, no other tenant unless operator."""
    tenant = tenant_scope(caller, request.tenant, "a key")
    role = request.role or READER
    if role not in RANK:
        raise Refused(grpc.StatusCode.INVALID_ARGUMENT, f"role {role} is not one of reader, writer, admin, operator")
    if RANK[role] > RANK.get(caller.role, 0):
        raise Refused(
            grpc.StatusCode.PERMISSION_DENIED,
            f"{a_key(caller.role)} cannot create {a_key(role)}",
        )
    problem = principals_problem(request.principals, "principals")
    if problem:
        raise Refused(grpc.StatusCode.INVALID_ARGUMENT, problem)
    return tenant, role


def revocable(caller: gateway_pb2.ApiKeyRecord, record: gateway_pb2.ApiKeyRecord | None, key_id: str):
    """A key of the caller's tenant (any, for an operator), of a role no higher than the caller's."""
    if record is None or (record.tenant != caller.tenant and not at_least(caller, OPERATOR)):
        raise Refused(grpc.StatusCode.NOT_FOUND, f"no API key {key_id!r}")
    if RANK.get(record.role, 0) > RANK.get(caller.role, 0):
        raise Refused(
            grpc.StatusCode.PERMISSION_DENIED,
            f"{a_key(caller.role)} cannot revoke {a_key(record.role)}",
        )
    return record


# -- principals ------------------------------------------------------------------------------


def principals_problem(principals: Iterable[str], field: str) -> str:
    """What is wrong with a list of principals (a key's, or a document's ACL), or "". No separators,
    spaces or control characters: a principal is one token everywhere it is written."""
    principals = list(principals)
    if len(principals) > MAX_PRINCIPALS:
        return f"{field} has {len(principals)} principals; the limit is {MAX_PRINCIPALS}"
    for principal in principals:
        if not PRINCIPAL.match(principal):
            return f"{field}: principal {principal[:40]!r} must be 1-128 characters of a-z, A-Z, 0-9 and '_.:@-'"
    return ""
