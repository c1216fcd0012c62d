"""Options and output shared by the `ragmesh` commands."""

import json

import grpc
import typer
from google.protobuf.json_format import MessageToDict

from rag.v1 import types_pb2

DataDir = typer.Option(None, "--data-dir", help="State folder of `ragmesh up` (env RAGMESH_DATA_DIR).")
JsonOut = typer.Option(False, "--json", help="One JSON object on stdout, for scripts.")
TenantOpt = typer.Option(None, "--tenant", help="Act for this tenant (uses the operator key of `ragmesh up`).")


def fail(exc: grpc.RpcError) -> None:
    typer.echo(f"error: {exc.code().name}: {exc.details()}", err=True)
    raise typer.Exit(2)


def emit(obj) -> None:
    typer.echo(json.dumps(obj, indent=None, sort_keys=False))


def status_name(enum, value: int, prefix: str) -> str:
    return enum.Name(value).removeprefix(prefix).lower()


def doc_dict(record: types_pb2.DocumentRecord) -> dict:
    out = MessageToDict(record, preserving_proto_field_name=True)
    out["status"] = status_name(types_pb2.DocumentStatus, record.status, "DOCUMENT_STATUS_")
    for version, entry in zip(record.versions, out.get("versions", []), strict=True):
        entry["status"] = status_name(types_pb2.DocumentStatus, version.status, "DOCUMENT_STATUS_")
    return out


class NullBar:
    """A progress bar that shows nothing (output to a pipe, or --json)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n):
        pass
