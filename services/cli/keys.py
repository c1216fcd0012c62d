"""`ragmesh keys` and `ragmesh usage`: API keys, and what a tenant used."""

import json
from pathlib import Path

import grpc
import typer
from google.protobuf.json_format import MessageToDict

from rag.v1 import gateway_pb2
from services.cli.client import connect
from services.cli.options import DataDir, JsonOut, emit, fail, status_name

keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
ROLES = {
    "reader": gateway_pb2.ROLE_READER,
    "writer": gateway_pb2.ROLE_WRITER,
    "admin": gateway_pb2.ROLE_ADMIN,
    "operator": gateway_pb2.ROLE_OPERATOR,
}


@keys_app.command("create")
def keys_create(
    tenant: str = typer.Option("", "--tenant", help="Default: your key's tenant; another needs an operator key."),
    role: str = typer.Option("reader", help="reader, writer, admin or operator"),
    principal: list[str] = typer.Option(None, "--principal", help="Principals for document ACLs."),
    description: str = typer.Option(""),
    ttl: int = typer.Option(0, "--ttl", help="Seconds until the key expires; 0 = never."),
    data: Path = DataDir,
    as_json: bool = JsonOut,
):
    """Create an API key (needs an admin key: for its tenant, roles up to admin; an operator key:
    any tenant and role); the key is shown once."""
    if role not in ROLES:
        raise typer.BadParameter("role is reader, writer, admin or operator")
    try:
        response = connect(data).create_api_key(
            tenant, ROLES[role], principals=principal or [], description=description, ttl_seconds=ttl
        )
    except grpc.RpcError as exc:
        fail(exc)
    if as_json:
        emit({"api_key": response.api_key, "key_id": response.key_id, "tenant": response.tenant, "role": role})
    else:
        typer.echo(response.api_key)


@keys_app.command("list")
def keys_list(
    tenant: str = typer.Option("", "--tenant", help="Default: your key's tenant (an operator's: all)."),
    data: Path = DataDir,
    as_json: bool = JsonOut,
):
    """API keys (never the keys themselves): id, tenant, role, principals, state."""
    try:
        keys = connect(data).list_api_keys(tenant)
    except grpc.RpcError as exc:
        fail(exc)
    rows = [
        {
            "key_id": k.key_id,
            "tenant": k.tenant,
            "role": status_name(gateway_pb2.Role, k.role, "ROLE_"),
            "principals": list(k.principals),
            "revoked": k.revoked,
            "expires_unix_ms": k.expires_unix_ms,
            "description": k.description,
        }
        for k in keys
    ]
    if as_json:
        emit({"keys": rows})
        return
    for r in rows:
        state = "revoked" if r["revoked"] else (f"expires {r['expires_unix_ms']}" if r["expires_unix_ms"] else "active")
        typer.echo(f"{r['key_id']}\t{r['tenant']}\t{r['role']}\t{','.join(r['principals'])}\t{state}")


@keys_app.command("revoke")
def keys_revoke(key_id: str, data: Path = DataDir, as_json: bool = JsonOut):
    """Revoke an API key by its id (from `ragmesh keys list`)."""
    try:
        key = connect(data).revoke_api_key(key_id)
    except grpc.RpcError as exc:
        fail(exc)
    emit({"key_id": key.key_id, "revoked": key.revoked}) if as_json else typer.echo(f"revoked {key.key_id}")


def usage(
    tenant: str = typer.Option("", "--tenant", help="Another tenant (operator key)."),
    data: Path = DataDir,
    as_json: bool = JsonOut,
):
    """Usage today and this month (UTC), with the limits in force."""
    try:
        response = connect(data).usage(tenant)
    except grpc.RpcError as exc:
        fail(exc)
    out = {
        "today": MessageToDict(
            response.today,
            preserving_proto_field_name=True,
            always_print_fields_with_no_presence=True,
            unquote_int64_if_possible=True,
        ),
        "this_month": MessageToDict(
            response.this_month,
            preserving_proto_field_name=True,
            always_print_fields_with_no_presence=True,
            unquote_int64_if_possible=True,
        ),
        "limits": json.loads(response.limits_json),
    }
    if as_json:
        emit(out)
        return
    for label in ("today", "this_month"):
        u = out[label]
        typer.echo(
            f"{u['tenant']} {u['period']}: {u['queries']} queries, {u['llm_tokens']} LLM tokens, "
            f"${float(u['cost_usd']):.4f}, {u['embedding_tokens']} embedding tokens, {u['documents']} documents"
        )
    typer.echo("limits: " + ", ".join(f"{k}={v}" for k, v in out["limits"].items()))
